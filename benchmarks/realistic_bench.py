"""``make bench-realistic``: the runtime on the realistic mix (testbed/feedmix.py), under 5 requests/s.

Four scenarios, each with a fresh runtime and fresh emulators (Sekoia latency 150 ms):

- ``bulk``: N stream events already in the stream when the runtime starts (an initial sync);
- ``live-2`` and ``live-8``: events arriving at 2 and 8 per second on an idle runtime; the delay
  from each create event to Sekoia's acknowledgement of its value (the emulator stamps ``created``
  when it handles the request) is recorded;
- ``burst``: 20,000 events arriving within a few seconds on an idle runtime, then drained.

Requests per value count push requests only (``POST .../indicators``) against the values they
carried; revocations are one request each whatever the grouping, and are reported apart. The
share of the budget is ``budget used x fullness``: requests per second against the 5 allowed,
times the mean values per push request against the 100 allowed (1.0: every request of the
budget sent, every push full). With revocations in the mix, values/s alone cannot reach 500.

Writes docs/benchmarks/runtime-realistic.json (``--output``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import runtime_bench as rb  # noqa: E402

from testbed.emulators.opencti.emulator import OpenCTIEmulator  # noqa: E402
from testbed.feedmix import Mix, build_realistic, describe  # noqa: E402
from testbed.processes import wait_until  # noqa: E402
from testbed.runtime_process import RuntimeProcess, runtime_env  # noqa: E402
from testbed.workload import Operation, emit  # noqa: E402

TARGETS = {
    "bulk.push_requests_per_value": "<= 0.015",
    "bulk.share_of_budget": ">= 0.95",
    "bulk.peak_rss_mb": "<= 120",
    "live-2.delay_p95_seconds": "<= 5",
    "live-8.delay_p95_seconds": "<= 5",
    "live-2.http_429": "<= 0",
    "live-8.http_429": "<= 0",
    "burst.share_of_budget": ">= 0.95",
}


def _parse_time(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def push_figures(requests: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests, values and throughput of the push requests in a request log.

    The window runs from the first request (the start-up check of the collection aside) to the
    last answer, so that revocations count against the budget's time as well as its requests.
    """
    pushes = [
        r
        for r in requests
        if r["method"] == "POST" and r["status"] in (200, 201, 202) and r["path"].endswith("/indicators")
    ]
    work = [r for r in requests if not r["path"].rstrip("/").endswith(rb.COLLECTION)]
    values = sum(r.get("values") or 0 for r in pushes)
    if not pushes:
        return {"push_requests": 0, "values_pushed": 0}
    first = min(r["time"] - (r.get("duration") or 0) for r in work)
    last = max(r["time"] for r in work)
    seconds = max(1e-6, last - first)
    fullness = values / len(pushes) / 100
    budget_used = len(work) / seconds / 5
    return {
        "push_requests": len(pushes),
        "values_pushed": values,
        "push_requests_per_value": round(len(pushes) / max(1, values), 5),
        "values_per_push_request": round(values / len(pushes), 1),
        "other_requests": len(work) - len(pushes),
        "api_requests": len(requests),
        "active_seconds": round(seconds, 2),
        "values_per_second": round(values / seconds, 1),
        "requests_per_second": round(len(work) / seconds, 2),
        # Fullness of the push requests times the share of the 5 requests/s used: 1.0 is every
        # request of the budget sent, and every push request carrying 100 values.
        "budget_used": round(budget_used, 4),
        "share_of_budget": round(fullness * budget_used, 4),
        "http_429": sum(1 for r in requests if r["status"] == 429),
        "api_requests_by_status": dict(sorted(Counter(str(r["status"]) for r in requests).items())),
        "push_sizes": dict(
            sorted(Counter(str(r.get("values") or 0) for r in pushes).items(), key=lambda kv: int(kv[0]))
        ),
    }


def coarsening_figures(runtime: RuntimeProcess) -> dict[str, float]:
    """The runtime's coarsening counters by label (empty for a runtime without them)."""
    _, text = runtime.get("/metrics")
    out: dict[str, float] = {}
    for line in text.splitlines():
        for family in ("sis_values_coarsened_total", "sis_push_requests_by_level_total"):
            if line.startswith(family + "{"):
                label = line.split('"')[1]
                out[f"{family.removeprefix('sis_').removesuffix('_total')}.{label}"] = float(
                    line.rsplit(" ", 1)[1]
                )
    return out


class _Stack:
    """Fresh emulators and one runtime for one scenario."""

    def __init__(self, workdir: Path, latency: float, extra_env: dict[str, str]) -> None:
        self.workdir = workdir
        self.sekoia_process, self.sekoia = rb.start_sekoia(workdir, "bucket")
        self.sekoia.set_faults(latency=latency * 0.75, latency_jitter=latency * 0.5)
        self.opencti = OpenCTIEmulator(token=rb.TOKEN, streams=[rb.STREAM]).__enter__()
        self.extra_env = extra_env
        self.runtime: RuntimeProcess | None = None

    def start_runtime(self) -> RuntimeProcess:
        env = runtime_env(
            self.opencti.base_url,
            rb.TOKEN,
            rb.STREAM,
            self.sekoia.base_url,
            rb.KEY,
            rb.COLLECTION,
            str(uuid.uuid4()),
            SEKOIA_INTEL_BATCH_LINGER_SECONDS="1.0",
            CONNECTOR_LOG_LEVEL="warning",
            **rb.passthrough_env(),
            **self.extra_env,
        )
        self.runtime = RuntimeProcess(env, self.workdir / "runtime.log").start()
        return self.runtime

    def wait_collection(self, expected: set[str], timeout: float) -> None:
        wait_until(
            lambda: self.sekoia.active_values(rb.COLLECTION) == expected,
            timeout,
            "the collection to hold exactly the active values",
            interval=1.0,
            on_timeout=lambda: f"{len(expected ^ self.sekoia.active_values(rb.COLLECTION))} values differ",
        )

    def close(self) -> tuple[int | None, float]:
        result: tuple[int | None, float] = (None, 0.0)
        if self.runtime is not None:
            result = self.runtime.terminate()
        self.opencti.__exit__(None, None, None)
        self.sekoia_process.stop()
        return result


def bulk(
    events: int, latency: float, workdir: Path, extra_env: dict[str, str], mix: Mix | None = None
) -> dict[str, Any]:
    """Every event in the stream before the runtime starts; wait for the exact collection."""
    work = build_realistic(events, seed=14, mix=mix or Mix())
    expected = work.expected_values()
    stack = _Stack(workdir, latency, extra_env)
    try:
        list(emit(stack.opencti, work.operations))
        started_wall = time.time()
        runtime = stack.start_runtime()
        sampler = rb._Sampler(runtime.process.pid, started_wall, 0.5)
        sampler.start()
        runtime.wait_ready(timeout=60)
        stack.wait_collection(expected, events / 5 + 600)
        cpu, peak = rb._proc_stats(runtime.process.pid)
        samples = sampler.stop()
        coarsened = coarsening_figures(runtime)
        requests = stack.sekoia.requests()
    finally:
        stack.close()
    figures = push_figures(requests)
    return {
        "events": events,
        "workload": describe(work),
        "values_expected": len(expected),
        "lost": 0,
        **figures,
        "coarsening": coarsened,
        "cpu_seconds_per_1000_events": round(cpu / events * 1000, 3),
        "peak_rss_mb": round(peak / 2**20, 1),
        "timeline": rb._timeline(samples, requests, started_wall),
    }


def _paced(stack: _Stack, operations: list[Operation], rate: float | None) -> dict[str, float]:
    """Emit operations at ``rate`` per second (None: as fast as possible); value -> wall time of
    the create event that brought it."""
    sent: dict[str, float] = {}
    began = time.monotonic()
    for index, op in enumerate(operations):
        if rate:
            delay = began + index / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        if op.kind == "create":
            sent[op.obj["name"]] = time.time()
        list(emit(stack.opencti, [op]))
    return sent


def live(
    name: str, rate: float | None, events: int, latency: float, workdir: Path, extra_env: dict[str, str]
) -> dict[str, Any]:
    """Events arriving on an idle runtime at ``rate`` per second (None: a burst)."""
    work = build_realistic(events, seed=21 if rate else 22)
    expected = work.expected_values()
    stack = _Stack(workdir, latency, extra_env)
    try:
        runtime = stack.start_runtime()
        runtime.wait_ready(timeout=60)
        # Let the start-up checks finish so that their requests do not count.
        time.sleep(2.0)
        since = max((r["seq"] for r in stack.sekoia.requests()), default=0)
        emit_began = time.time()
        sent = _paced(stack, work.operations, rate)
        emit_seconds = time.time() - emit_began
        stack.wait_collection(expected, events / 5 + 600)
        coarsened = coarsening_figures(runtime)
        requests = stack.sekoia.requests(since)
        indicators = stack.sekoia.indicators(rb.COLLECTION)
    finally:
        stack.close()
    delays = [_parse_time(i["created"]) - sent[i["value"]] for i in indicators if i["value"] in sent]
    figures = push_figures(requests)
    return {
        "scenario": name,
        "events": events,
        "arrival_events_per_second": rate if rate else round(events / emit_seconds, 1),
        "emit_seconds": round(emit_seconds, 2),
        "values_expected": len(expected),
        "lost": 0,
        **figures,
        "coarsening": coarsened,
        "delay_p50_seconds": _round(_quantile(delays, 0.5)),
        "delay_p95_seconds": _round(_quantile(delays, 0.95)),
        "delay_max_seconds": _round(max(delays) if delays else None),
        "delays_seconds": [round(d, 3) for d in sorted(delays)] if rate else [],
        "acked_over_time": _acked_over_time(requests, emit_began),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _acked_over_time(requests: list[dict[str, Any]], began: float) -> list[list[float]]:
    """[seconds since the first event, values acknowledged so far] after each push answer."""
    rows, total = [], 0
    for r in sorted(requests, key=lambda r: r["time"]):
        if r["method"] == "POST" and r["status"] in (200, 201, 202):
            total += r.get("values") or 0
            rows.append([round(r["time"] - began, 2), total])
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios, print the headline figures and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=34_000, help="bulk replay size (~30,600 indicators)")
    parser.add_argument("--live-seconds", type=float, default=90.0, help="length of each live run")
    parser.add_argument("--burst", type=int, default=20_000, help="events of the burst")
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument(
        "--scenarios", default="bulk,live-2,live-8,burst", help="comma-separated subset to run"
    )
    parser.add_argument("--label", default="after", help="what code was measured (before/after)")
    parser.add_argument(
        "--expire-share",
        type=float,
        default=Mix().expire_share,
        help="share of bulk events that expire an indicator (each costs a revocation request)",
    )
    parser.add_argument(
        "--env", action="append", default=[], help="extra runtime variable NAME=VALUE (repeatable)"
    )
    parser.add_argument(
        "--output", type=Path, default=HERE.parent / "docs" / "benchmarks" / "runtime-realistic.json"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    extra = dict(item.split("=", 1) for item in args.env)
    wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    result: dict[str, Any] = {
        "benchmark": "connector-runtime on the realistic mix",
        "label": args.label,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": rb.machine(),
        "sekoia_latency_seconds": args.latency,
        "sekoia_rate_limiter": "5 requests/s, bucket",
        "budget_values_per_second": rb.BUDGET_VALUES_PER_SECOND,
        "runtime_env": extra,
        "expire_share": args.expire_share,
        "targets": dict(TARGETS),
        "scenarios": {},
    }
    for name in wanted:
        with tempfile.TemporaryDirectory(prefix=f"sis-{name}-") as tmp:
            began = time.monotonic()
            if name == "bulk":
                mix = replace(Mix(), expire_share=args.expire_share)
                figures = bulk(args.events, args.latency, Path(tmp), extra, mix)
            elif name.startswith("live-"):
                rate = float(name.split("-", 1)[1])
                figures = live(name, rate, int(rate * args.live_seconds), args.latency, Path(tmp), extra)
            elif name == "burst":
                figures = live(name, None, args.burst, args.latency, Path(tmp), extra)
            else:
                parser.error(f"unknown scenario {name!r}")
            figures["wall_seconds"] = round(time.monotonic() - began, 1)
        result["scenarios"][name] = figures
        shown = {k: v for k, v in figures.items() if not isinstance(v, (list, dict))}
        print(name, json.dumps(shown), flush=True)
    bulk_figures = result["scenarios"].get("bulk")
    if bulk_figures and bulk_figures.get("values_per_second"):
        # The initial sync of 500,000 indicators at the measured rate (pushes only).
        result["projection_500k_minutes"] = round(500_000 / bulk_figures["values_per_second"] / 60, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
