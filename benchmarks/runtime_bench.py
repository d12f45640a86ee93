"""``make bench-runtime``: replay N indicators through both emulators with Sekoia's budget.

Prints and writes (``docs/benchmarks/runtime.json``): values/s against the budget (100 values x
5 requests/s), API requests per value, CPU seconds per 1,000 events, peak RSS, time to ready, and
the converter's capacity on one core. The Sekoia emulator enforces 5 requests/s itself and adds
a realistic latency, so a client that overshoots pays with 429s in the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

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


def replay(events: int, latency: float, workdir: Path, firewall: str) -> dict[str, float | int]:
    """Run one runtime over ``events`` indicator creates; return the measured figures."""
    work = build_workload(events, seed=5, churn=0, profile=FEED)
    expected = work.expected_values()
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
        )
        runtime = RuntimeProcess(env, workdir / "runtime.log").start()
        ready = runtime.wait_ready(timeout=60)
        wait_until(
            lambda: len(sekoia.active_values(COLLECTION)) >= len(expected),
            events / 100 + 300,
            "every value to reach the collection",
            interval=0.5,
        )
        cpu, peak = _proc_stats(runtime.process.pid)
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
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks" / "runtime.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    capacity = conversion_capacity(20_000)
    with tempfile.TemporaryDirectory(prefix="sis-bench-") as tmp:
        figures = replay(args.events, args.latency, Path(tmp), args.firewall)
    result = {
        "benchmark": "connector-runtime bulk replay",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "sekoia_latency_seconds": args.latency,
        "sekoia_rate_limiter": f"5 requests/s, {args.firewall}",
        "workload": "one feed replayed: 90 days of indicators, 90-day validity, one kill-chain set, "
        "ipv4/domain/sha256/url values",
        "conversion_events_per_second_one_core": round(capacity),
        **figures,
        "targets": {
            "share_of_budget": ">= 0.95",
            "api_requests_per_value": "<= 0.011",
            "conversion_events_per_second_one_core": ">= 5000",
            "peak_rss_mb": "<= 120",
            "time_to_ready_seconds": "<= 3",
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    width = max(len(k) for k in result)
    for key, value in result.items():
        if key not in {"targets", "machine"}:
            print(f"{key:<{width}}  {value}")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
