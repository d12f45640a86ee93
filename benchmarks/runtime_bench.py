"""``make bench-runtime``: replay N indicators through both emulators with Sekoia's budget.

Prints and writes (``docs/benchmarks/runtime.json``): values/s against the budget (100 values x
5 requests/s), API requests per value, CPU seconds per 1,000 events, peak RSS, time to ready, and
the converter's capacity on one core; plus a timeline (values acknowledged, API requests, RSS and
CPU of the runtime every ``--sample-interval`` seconds) and the sizes of the push requests, which
``benchmarks/run_all.py`` draws. The Sekoia emulator enforces 5 requests/s itself and adds
a realistic latency, so a client that overshoots pays with 429s in the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from connector_runtime.conversion import convert_indicator
from connector_runtime.stream.events import parse_event
from testbed.emulators.opencti.emulator import OpenCTIEmulator
from testbed.emulators.sekoia.remote import RemoteEmulator
from testbed.processes import ManagedProcess, wait_until
from testbed.runtime_process import RuntimeProcess, runtime_env
from testbed.workload import FEED, build_workload

ROOT = Path(__file__).resolve().parents[1]
TOKEN, KEY, STREAM = "bench-opencti-token", "bench-sekoia-key", "live-bench"
COLLECTION = "ioc-collection--5f0c7a39-1d2e-4c3b-9a8f-7e6d5c4b3a21"
BUDGET_VALUES_PER_SECOND = 100 * 5


# What the runtime must achieve (issue 3), as written into the JSON for the report to check.
TARGETS = {
    "share_of_budget": ">= 0.95",
    "api_requests_per_value": "<= 0.011",
    "conversion_events_per_second_one_core": ">= 5000",
    "peak_rss_mb": "<= 120",
    "time_to_ready_seconds": "<= 3",
}


def conversion_capacity(events: int) -> float:
    """Stream events parsed and converted per second, pinned to one core."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    payloads = [
        json.dumps({"version": "4", "type": "create", "data": op.obj})
        for op in build_workload(events, seed=3, churn=0).operations
    ]
    began = time.perf_counter()
    for index, payload in enumerate(payloads):
        event = parse_event("create", f"{index + 1}-0", payload)
        convert_indicator(event.indicator or {})
    rate = len(payloads) / (time.perf_counter() - began)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    return rate


def _proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds, peak RSS in bytes) of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
    return cpu, peak


def _rss_mb(pid: int) -> float:
    """Current resident set (VmRSS) of a live process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine() -> dict[str, Any]:
    """What the figures were measured on: cores, memory, CPU model, Python, OS."""
    memory_mb = model = None
    meminfo, cpuinfo = Path("/proc/meminfo"), Path("/proc/cpuinfo")
    if meminfo.exists():
        total = next((ln for ln in meminfo.read_text().splitlines() if ln.startswith("MemTotal:")), "")
        memory_mb = round(int(total.split()[1]) / 1024) if total else None
    if cpuinfo.exists():
        name = next((ln for ln in cpuinfo.read_text().splitlines() if ln.startswith("model name")), "")
        model = name.partition(":")[2].strip() or None
    return {
        "cpus": os.cpu_count(),
        "memory_mb": memory_mb,
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


class _Sampler(threading.Thread):
    """Samples a process's RSS and CPU time every ``interval`` seconds, on the wall clock.

    The wall clock (not the monotonic one) because the Sekoia emulator stamps its request log with
    it in another process: the two series are then put on one time axis after the run.
    """

    def __init__(self, pid: int, started_wall: float, interval: float) -> None:
        super().__init__(name="runtime-sampler", daemon=True)
        self.pid, self.started_wall, self.interval = pid, started_wall, interval
        self.samples: list[dict[str, float]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        while True:
            try:
                cpu, _ = _proc_stats(self.pid)
                rss = _rss_mb(self.pid)
            except (FileNotFoundError, ProcessLookupError):
                return  # the runtime exited: nothing more to sample
            self.samples.append({"wall": time.time(), "rss_mb": rss, "cpu_seconds": cpu})
            if self._stop_event.wait(self.interval):
                return

    def stop(self) -> list[dict[str, float]]:
        """Stop sampling; return the samples taken."""
        self._stop_event.set()
        self.join(5)
        return self.samples


def _timeline(
    samples: list[dict[str, float]], requests: list[dict[str, Any]], started_wall: float
) -> list[dict[str, float]]:
    """One row per sample: seconds since the runtime started, its RSS and CPU, and how many values
    Sekoia had acknowledged and requests it had answered by then (cumulative, from its log).

    The counts come from the emulator's log rather than from polling the runtime's /metrics: the
    log has each answer's exact time and costs the measured process nothing.
    """
    # The emulator stamps an entry when its answer is ready, so `time` is the acknowledgement time.
    answered = sorted(r["time"] for r in requests)
    acked = sorted(
        (r["time"], r.get("values") or 0)
        for r in requests
        if r["method"] == "POST" and r["status"] in (200, 201, 202)
    )
    rows, n_requests, n_acked, values = [], 0, 0, 0
    for sample in samples:
        while n_requests < len(answered) and answered[n_requests] <= sample["wall"]:
            n_requests += 1
        while n_acked < len(acked) and acked[n_acked][0] <= sample["wall"]:
            values += acked[n_acked][1]
            n_acked += 1
        rows.append(
            {
                "t": round(sample["wall"] - started_wall, 2),
                "values_acked": values,
                "api_requests": n_requests,
                "rss_mb": round(sample["rss_mb"], 1),
                "cpu_seconds": round(sample["cpu_seconds"], 2),
            }
        )
    return rows


def start_sekoia(workdir: Path, firewall: str) -> tuple[ManagedProcess, RemoteEmulator]:
    """The Sekoia emulator in its own process, enforcing 5 requests/s; (process, its admin client)."""
    # Sekoia's emulator runs in its own process: sharing an interpreter (and its GIL) with the
    # OpenCTI emulator would distort the arrival times its rate limiter judges.
    sekoia_process = ManagedProcess(
        "sekoia-emulator",
        [
            sys.executable,
            "-m",
            "testbed.emulators.sekoia",
            "--port",
            "0",
            "--api-key",
            KEY,
            "--collection",
            COLLECTION,
            "--rate-limit",
            "5",
            "--rate-window",
            "1",
            *(["--rate-burst", "5"] if firewall == "bucket" else []),
        ],
        workdir / "sekoia.log",
    ).start()
    wait_until(lambda: "http" in (workdir / "sekoia.log").read_text(), 30, "the Sekoia emulator")
    sekoia_url = next(w for w in (workdir / "sekoia.log").read_text().split() if w.startswith("http"))
    sekoia = RemoteEmulator(sekoia_url)
    return sekoia_process, sekoia


def passthrough_env() -> dict[str, str]:
    """PYTHONPATH of the benchmark, for the runtime (measuring another checkout of the code)."""
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}


def replay(
    events: int, latency: float, workdir: Path, firewall: str, sample_interval: float = 0.5
) -> dict[str, Any]:
    """Run one runtime over ``events`` indicator creates; return the measured figures."""
    work = build_workload(events, seed=5, churn=0, profile=FEED)
    expected = work.expected_values()
    sekoia_process, sekoia = start_sekoia(workdir, firewall)
    with OpenCTIEmulator(token=TOKEN, streams=[STREAM]) as opencti:
        sekoia.set_faults(latency=latency * 0.75, latency_jitter=latency * 0.5)
        opencti.add_bundle([op.obj for op in work.operations])
        env = runtime_env(
            opencti.base_url,
            TOKEN,
            STREAM,
            sekoia.base_url,
            KEY,
            COLLECTION,
            str(uuid.uuid4()),
            SEKOIA_INTEL_BATCH_LINGER_SECONDS="1.0",
            CONNECTOR_LOG_LEVEL="warning",
            **passthrough_env(),
        )
        started_wall = time.time()
        runtime = RuntimeProcess(env, workdir / "runtime.log").start()
        sampler = _Sampler(runtime.process.pid, started_wall, sample_interval)
        sampler.start()
        ready = runtime.wait_ready(timeout=60)
        wait_until(
            lambda: len(sekoia.active_values(COLLECTION)) >= len(expected),
            events / 100 + 300,
            "every value to reach the collection",
            interval=0.5,
        )
        cpu, peak = _proc_stats(runtime.process.pid)
        samples = sampler.stop()
        code, stop_seconds = runtime.terminate()
        requests = sekoia.requests()
    sekoia_process.stop()
    pushes = [r for r in requests if r["method"] == "POST" and r["status"] in (200, 201, 202)]
    first = min(r["time"] for r in pushes)
    last = max(r["time"] + (r.get("duration") or 0) for r in pushes)
    values = sum(r.get("values") or 0 for r in pushes)
    return {
        "events": events,
        "values_expected": len(expected),
        "values_pushed": values,
        "push_seconds": round(last - first, 2),
        "values_per_second": round(values / (last - first), 1),
        "share_of_budget": round(values / (last - first) / BUDGET_VALUES_PER_SECOND, 4),
        "api_requests": len(requests),
        "api_requests_per_value": round(len(requests) / len(expected), 5),
        "http_429": sum(1 for r in requests if r["status"] == 429),
        "cpu_seconds_per_1000_events": round(cpu / events * 1000, 3),
        "peak_rss_mb": round(peak / 2**20, 1),
        "time_to_ready_seconds": round(ready, 2),
        "sigterm_exit_code": code if code is not None else -1,
        "sigterm_seconds": round(stop_seconds, 2),
        "api_requests_by_status": dict(sorted(Counter(str(r["status"]) for r in requests).items())),
        # How full the push requests were: the budget allows 100 values per request.
        "values_per_push_request": {
            str(size): n for size, n in sorted(Counter(r.get("values") or 0 for r in pushes).items())
        },
        "timeline_interval_seconds": sample_interval,
        "timeline": _timeline(samples, requests, started_wall),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print a table and write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--latency", type=float, default=0.15, help="mean Sekoia answer time, seconds")
    parser.add_argument(
        "--firewall",
        choices=("bucket", "sliding"),
        default="bucket",
        help="how the emulated Sekoia counts 5 requests/s: token bucket (burst 5) or strict sliding window",
    )
    parser.add_argument(
        "--sample-interval",
        type=float,
        default=0.5,
        help="seconds between two timeline samples (RSS and CPU of the runtime)",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks" / "runtime.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    capacity = conversion_capacity(20_000)
    with tempfile.TemporaryDirectory(prefix="sis-bench-") as tmp:
        figures = replay(args.events, args.latency, Path(tmp), args.firewall, args.sample_interval)
    result = {
        "benchmark": "connector-runtime bulk replay",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "sekoia_latency_seconds": args.latency,
        "sekoia_rate_limiter": f"5 requests/s, {args.firewall}",
        "workload": "one feed replayed: 90 days of indicators, 90-day validity, one kill-chain set, "
        "ipv4/domain/sha256/url values",
        "conversion_events_per_second_one_core": round(capacity),
        "budget_values_per_second": BUDGET_VALUES_PER_SECOND,
        **figures,
        "targets": dict(TARGETS),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    width = max(len(k) for k in result)
    for key, value in result.items():
        if key not in {"targets", "machine", "timeline", "values_per_push_request"}:
            print(f"{key:<{width}}  {value}")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
