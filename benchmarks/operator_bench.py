"""Scale benchmark: N SekoiaIntelSync resources (default 500) against the local control plane.

Prints, and writes as JSON, the time from the first create until every resource is Ready and the
operator's peak RSS (VmHWM of the operator process). Targets: all Ready within 120 s, RSS <= 250 MB.

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


def _peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of a live process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


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
            {"metadata": {"name": "creds"}, "stringData": {"opencti-token": "t", "sekoia-api-key": "k"}},
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
            deadline = started + timeout
            while time.monotonic() < deadline:
                peak = max(peak, _peak_rss_mb(operator.pid))
                ready = _ready_count(custom, namespace)
                if ready == count:
                    break
                time.sleep(1)
            elapsed = time.monotonic() - started
            peak = max(peak, _peak_rss_mb(operator.pid))
        finally:
            operator.stop()
    result = {
        "resources": count,
        "all_ready": ready == count,
        "ready": ready,
        "seconds_to_create": round(created, 1),
        "seconds_until_all_ready": round(elapsed, 1) if ready == count else None,
        "operator_peak_rss_mb": round(peak, 1),
        "targets": {"seconds": TARGET_SECONDS, "rss_mb": TARGET_RSS_MB},
        "meets_targets": ready == count and elapsed <= TARGET_SECONDS and peak <= TARGET_RSS_MB,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks" / "operator.json")
    args = parser.parse_args()
    result = run(args.count, args.output, args.timeout)
    print(json.dumps(result, indent=2))
    return 0 if result["all_ready"] else 1


if __name__ == "__main__":
    sys.exit(main())
