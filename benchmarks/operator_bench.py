"""Scale benchmark: N SekoiaIntelSync resources (default 500) against the local control plane.

Prints, and writes as JSON, the time from the first create until every resource is Ready and the
operator's peak RSS (VmHWM of the operator process). Targets: all Ready within 120 s, RSS <= 250 MB.
The JSON also holds the whole timeline (Deployments, running Pods, Ready resources and the
operator's RSS about once a second), which ``benchmarks/run_all.py`` draws.

    make bench-operator   (or: .venv/bin/python benchmarks/operator_bench.py [--count 500])
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client
from sekoia_intel_operator import naming

from testbed.controlplane.cluster import LocalCluster
from testbed.processes import ManagedProcess, free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]

TARGET_SECONDS, TARGET_RSS_MB = 120.0, 250.0


def _status_mb(pid: int, field: str) -> float:
    """A memory figure of /proc/<pid>/status (VmHWM: peak resident set, VmRSS: current), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _peak_rss_mb(pid: int) -> float:
    """Peak resident set size of a live process, in MB."""
    return _status_mb(pid, "VmHWM")


def _memory_mb() -> int | None:
    """The machine's memory (MemTotal), in MB."""
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        return None
    total = next((ln for ln in meminfo.read_text().splitlines() if ln.startswith("MemTotal:")), "")
    return round(int(total.split()[1]) / 1024) if total else None


def _manifest(i: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{naming.API_GROUP}/{naming.API_VERSION}",
        "kind": naming.KIND,
        "metadata": {"name": f"bench-{i:04d}"},
        "spec": {
            "opencti": {"url": "https://opencti.example.org", "streamId": "live"},
            "sekoia": {"collectionId": str(uuid.uuid4())},
            "credentialsSecretRef": {"name": "creds"},
        },
    }


def _ready_count(custom: client.CustomObjectsApi, namespace: str) -> int:
    items = custom.list_namespaced_custom_object(
        naming.API_GROUP, naming.API_VERSION, namespace, naming.PLURAL
    )["items"]
    ready = 0
    for obj in items:
        status = obj.get("status") or {}
        conds = {c["type"]: c["status"] for c in status.get("conditions") or []}
        if conds.get("Ready") == "True" and status.get("observedGeneration") == obj["metadata"]["generation"]:
            ready += 1
    return ready


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _count(api_client: client.ApiClient, path: str, ready: Any) -> int:
    """How many listed objects satisfy `ready` (raw JSON: the typed models cost more than the list)."""
    response = api_client.call_api(
        path, "GET", auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True
    )
    return sum(1 for obj in json.loads(response.data)["items"] if ready(obj))


def _running(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") == "Running"


def _first_reached(timeline: list[dict[str, float]], key: str, count: int) -> float | None:
    return next((row["t"] for row in timeline if row[key] >= count), None)


def run(count: int, output: Path, timeout: float) -> dict[str, Any]:
    """Bring a cluster up, run the benchmark, return the measurements."""
    with LocalCluster() as cluster:
        api_client = cluster.api_client()
        core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
        cluster.kubectl(
            "apply", "--server-side", "-f", str(ROOT / "deploy" / "crds" / "sekoiaintelsyncs.yaml")
        )
        cluster.kubectl("wait", "--for=condition=Established", "crd/sekoiaintelsyncs.sync.sekoia-intel.dev")
        namespace = "bench"
        cluster.kubectl("create", "namespace", namespace)
        core.create_namespaced_secret(
            namespace,
            {
                "metadata": {"name": "creds", "labels": {"sync.sekoia-intel.dev/credentials": "true"}},
                "stringData": {"opencti-token": "t", "sekoia-api-key": "k"},
            },
        )
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "NO_PROXY": "127.0.0.1,localhost"}
        liveness = free_port()
        operator = ManagedProcess(
            "operator",
            [
                str(Path(sys.executable).parent / "sekoia-intel-operator"),
                "--namespace",
                namespace,
                "--claims-namespace",
                namespace,
                "--standalone",
                "--liveness-port",
                str(liveness),
                "--metrics-port",
                "0",
                "--bind-address",
                "127.0.0.1",
            ],
            cluster.run_dir / "operator.log",
            env=env,
        ).start()
        try:
            wait_until(
                lambda: cluster.kubectl("get", "--raw", "/readyz", check=False).returncode == 0, 30, "API"
            )
            time.sleep(3)  # let the operator finish its initial listing
            rss_at_start = _status_mb(operator.pid, "VmRSS")
            started = time.monotonic()
            with ThreadPoolExecutor(16) as pool:
                list(
                    pool.map(
                        lambda i: custom.create_namespaced_custom_object(
                            naming.API_GROUP, naming.API_VERSION, namespace, naming.PLURAL, _manifest(i)
                        ),
                        range(count),
                    )
                )
            created = time.monotonic() - started
            peak = 0.0
            ready = 0
            procs = {"operator": operator.pid, **{n: p.pid for n, p in cluster.processes.items()}}
            cpu_before = {name: _cpu_seconds(pid) for name, pid in procs.items()}
            # Where the time goes: the operator's Deployments, the control plane's running Pods (kwok
            # plays the kubelet), then the operator's Ready verdicts.
            timeline: list[dict[str, float]] = []
            deadline = started + timeout
            while time.monotonic() < deadline:
                peak = max(peak, _peak_rss_mb(operator.pid))
                ready = _ready_count(custom, namespace)
                timeline.append(
                    {
                        "t": round(time.monotonic() - started, 1),
                        "deployments": _count(
                            api_client, f"/apis/apps/v1/namespaces/{namespace}/deployments", bool
                        ),
                        "pods_running": _count(api_client, f"/api/v1/namespaces/{namespace}/pods", _running),
                        "ready": ready,
                        "operator_rss_mb": round(_status_mb(operator.pid, "VmRSS")),
                    }
                )
                if ready == count:
                    break
                time.sleep(1)
            elapsed = time.monotonic() - started
            peak = max(peak, _peak_rss_mb(operator.pid))
            cpu_used = {name: round(_cpu_seconds(pid) - cpu_before[name], 1) for name, pid in procs.items()}
        finally:
            operator.stop()
    result = {
        "resources": count,
        "all_ready": ready == count,
        "ready": ready,
        "seconds_to_create": round(created, 1),
        "seconds_until_all_ready": round(elapsed, 1) if ready == count else None,
        "operator_peak_rss_mb": round(peak, 1),
        "cpu_seconds_by_process": cpu_used,
        "seconds_until_all_deployments": _first_reached(timeline, "deployments", count),
        "seconds_until_all_pods_running": _first_reached(timeline, "pods_running", count),
        "timeline_every_10th_sample": timeline[::10],
        "operator_rss_mb_before_creates": round(rss_at_start, 1),
        "timeline": timeline,
        "targets": {"seconds": TARGET_SECONDS, "rss_mb": TARGET_RSS_MB},
        "meets_targets": ready == count and elapsed <= TARGET_SECONDS and peak <= TARGET_RSS_MB,
        "cpus": os.cpu_count(),
        "memory_mb": _memory_mb(),
        "python": platform.python_version(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks" / "operator.json")
    args = parser.parse_args(argv)
    result = run(args.count, args.output, args.timeout)
    # The full timeline is for the charts; the console gets the sampled one already in the result.
    print(json.dumps({k: v for k, v in result.items() if k != "timeline"}, indent=2))
    return 0 if result["all_ready"] else 1


if __name__ == "__main__":
    sys.exit(main())
