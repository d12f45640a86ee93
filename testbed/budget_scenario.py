"""Five syncs share one Sekoia budget: the scenario behind the shared-budget cluster test and
benchmark (tests/operator/test_budget_cluster.py, benchmarks/budget_bench.py).

A real API server and operator; five real runtime processes under the identities the operator gave
their resources; one Sekoia emulator that answers 429 past 5 requests/s for all clients together
(a shared egress); one OpenCTI emulator per sync. One sync replays a large backlog, the four others
receive live events. Phases:

1. bulk + live: the bulk sync should get most of the budget, the live ones stay prompt;
2. the bulk sync is suspended (its runtime stops as the kubelet would stop its Pod): the live
   syncs' shares grow;
3. it is resumed and its runtime restarted: everything ends up in Sekoia, nothing lost.

Measured: requests/s per sync over time (from the emulator's request log), the shares the operator
published over time, 429s, and the delay from a live event's creation in OpenCTI to its value being
active in Sekoia.
"""

from __future__ import annotations

import math
import os
import random
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from sekoia_intel_operator import naming

from testbed.emulators.opencti.emulator import OpenCTIEmulator
from testbed.emulators.sekoia.options import EmulatorOptions
from testbed.emulators.sekoia.server import SekoiaEmulator
from testbed.processes import ManagedProcess, free_port, wait_until
from testbed.runtime_process import RuntimeProcess, runtime_env
from testbed.workload import FEED, build_workload, make_indicator

GROUP, VERSION, PLURAL = naming.API_GROUP, naming.API_VERSION, naming.PLURAL
OPENCTI_TOKEN = "octi-budget-token-3b7f"
BULK = "bulk"
LIVE = ("live-1", "live-2", "live-3", "live-4")
OPERATOR_BIN = Path(sys.executable).parent / "sekoia-intel-operator"


@dataclass
class BudgetSettings:
    """Sizes and durations of the scenario."""

    budget: float = 5.0  # the emulator's global limit and the operator's budget
    bulk_events: int = 2500
    # One new indicator per live sync every this many seconds (15 a minute, of four Sekoia types that
    # a request cannot mix): what a share at the floor serves promptly.
    live_interval: float = 4.0
    # True: the live feeds create their indicators at the same instants (one OpenCTI event matching
    # every stream's filters: the runtimes wake together); False: each at its own point of the interval.
    live_in_step: bool = True
    batch_size: int = 10  # small requests make the budget, not the CPU, the bottleneck
    phase1_seconds: float = 40.0
    phase2_seconds: float = 20.0
    drain_timeout: float = 240.0
    bucket_seconds: float = 5.0


@dataclass
class Sync:
    name: str
    collection: str
    key: str
    opencti: OpenCTIEmulator
    stream: str = "live"
    runtime: RuntimeProcess | None = None
    expected: set[str] = field(default_factory=set)
    emitted: dict[str, float] = field(default_factory=dict)  # value -> wall time of its creation
    seen: dict[str, float] = field(default_factory=dict)  # value -> wall time first seen active


class BudgetScenario:
    """Runs the scenario in `namespace` of a running LocalCluster; `run()` returns the figures."""

    def __init__(
        self, cluster: Any, namespace: str, work_dir: Path, settings: BudgetSettings | None = None
    ) -> None:
        self.cluster, self.namespace, self.work_dir = cluster, namespace, work_dir
        self.s = settings or BudgetSettings()
        self.custom = client.CustomObjectsApi(cluster.api_client())
        self.core = client.CoreV1Api(cluster.api_client())
        names = (BULK, *LIVE)
        keys = [f"sekoia-budget-key-{i}-{uuid.uuid4().hex[:6]}" for i in range(len(names))]
        collections = [str(uuid.uuid4()) for _ in names]
        self.sekoia = SekoiaEmulator(
            api_keys=set(keys),
            collections=collections,
            options=EmulatorOptions(rate_limit=int(self.s.budget), rate_scope="global"),
        )
        self.syncs = {
            name: Sync(
                name,
                coll,
                key,
                OpenCTIEmulator(token=OPENCTI_TOKEN, streams=["live"], heartbeat_interval=1.0, retry_ms=200),
            )
            for name, coll, key in zip(names, collections, keys, strict=True)
        }
        self.operator: ManagedProcess | None = None
        self.metrics_port = free_port()
        self.shares: list[dict[str, Any]] = []  # {"t": seconds, name: share or None}
        self.backlogs: list[dict[str, Any]] = []  # {"t": seconds, name: pendingEvents}
        self.phases: dict[str, float] = {}
        self._stop = threading.Event()
        self._emitting = threading.Event()
        self._threads: list[threading.Thread] = []
        self.t0 = time.time()

    # ------------------------------------------------------------------ set-up
    def start(self) -> None:
        """Emulators, operator, the five resources (each with its first share), the bulk backlog."""
        self.sekoia.start()
        for sync in self.syncs.values():
            sync.opencti.start()
        self._start_operator()
        meta = {"name": "creds", "labels": {"sync.sekoia-intel.dev/credentials": "true"}}
        self.core.create_namespaced_secret(
            self.namespace,
            {"metadata": meta, "stringData": {"opencti-token": OPENCTI_TOKEN, "sekoia-api-key": "unused"}},
        )
        for sync in self.syncs.values():
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, self._manifest(sync)
            )
        wait_until(
            lambda: all(self.share(name) for name in self.syncs),
            90,
            "every sync to get its share of the budget",
            on_timeout=self.operator_log,
        )
        bulk = self.syncs[BULK]
        work = build_workload(self.s.bulk_events, seed=11, churn=0.0, profile=FEED)
        for op in work.operations:
            bulk.opencti.create(op.obj)
        bulk.expected = work.expected_values()

    def _start_operator(self) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig), "NO_PROXY": "127.0.0.1,localhost"}
        argv = [
            str(OPERATOR_BIN),
            "--namespace",
            self.namespace,
            "--claims-namespace",
            self.namespace,
            "--standalone",
            "--resync-interval",
            "30",
            "--liveness-port",
            "0",
            "--metrics-port",
            str(self.metrics_port),
            "--bind-address",
            "127.0.0.1",
            "--sekoia-budget",
            str(self.s.budget),
        ]
        self.operator = ManagedProcess("operator", argv, self.work_dir / "operator.log", env=env).start()

    def _manifest(self, sync: Sync) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SekoiaIntelSync",
            "metadata": {"name": sync.name},
            "spec": {
                "opencti": {"url": "https://opencti.example.org", "streamId": sync.stream},
                "sekoia": {"collectionId": sync.collection},
                "credentialsSecretRef": {"name": "creds"},
            },
        }

    def start_runtime(self, sync: Sync) -> None:
        obj = self.get(sync.name)
        sa = naming.child_name(self.namespace, sync.name, obj["metadata"]["uid"])
        token = self.cluster.token_for(self.namespace, sa)
        kubeconfig = self.cluster.kubeconfig_for_token(token, self.work_dir / f"{sync.name}.kubeconfig")
        env = runtime_env(
            sync.opencti.base_url,
            OPENCTI_TOKEN,
            sync.stream,
            self.sekoia.base_url,
            sync.key,
            sync.collection,
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.namespace}/{sync.name}")),
            KUBECONFIG=str(kubeconfig),
            RUNTIME_STATUS_RESOURCE=f"{self.namespace}/{sync.name}",
            RUNTIME_STATUS_INTERVAL_SECONDS="1",
            SEKOIA_INTEL_BATCH_SIZE=str(self.s.batch_size),
            SEKOIA_INTEL_MAX_BACKOFF_SECONDS="5",
        )
        sync.runtime = RuntimeProcess(env, self.work_dir / f"{sync.name}.log", name=sync.name).start()

    # ------------------------------------------------------------------ observation
    def get(self, name: str) -> dict[str, Any]:
        return dict(self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name))

    def share(self, name: str) -> float | None:
        budget = (self.get(name).get("status") or {}).get("budget") or {}
        value = budget.get("requestsPerSecond")
        return float(value) if value else None

    def _sample_shares(self) -> None:
        while not self._stop.wait(1.0):
            try:
                row: dict[str, Any] = {"t": round(time.time() - self.t0, 1)}
                backlog: dict[str, Any] = {"t": row["t"]}
                for name in self.syncs:
                    status = self.get(name).get("status") or {}
                    row[name] = (status.get("budget") or {}).get("requestsPerSecond")
                    backlog[name] = (status.get("progress") or {}).get("pendingEvents")
                self.shares.append(row)
                self.backlogs.append(backlog)
            except Exception:  # an API hiccup loses one sample, not the run
                continue

    def _watch_values(self) -> None:
        while not self._stop.wait(0.25):
            now = time.time()
            for sync in self.syncs.values():
                for value in self.sekoia.active_values(sync.collection):
                    sync.seen.setdefault(value, now)

    def _emit_live(self, index: int) -> None:
        """One live feed, on its own clock (in step with the others, or shifted; see BudgetSettings)."""
        name = LIVE[index]
        sync = self.syncs[name]
        rnd = random.Random(index)
        serial = 0
        if not self.s.live_in_step:
            self._stop.wait(self.s.live_interval * index / len(LIVE))
        while not self._stop.is_set():
            if self._emitting.is_set():
                serial += 1
                obj = make_indicator(1_000_000 * (index + 1) + serial, rnd, FEED)
                sync.emitted[obj["name"]] = time.time()
                sync.expected.add(obj["name"])
                sync.opencti.create(obj)
            self._stop.wait(self.s.live_interval)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    # ------------------------------------------------------------------ run
    def run(self) -> dict[str, Any]:
        """All three phases; returns the figures (see `figures`)."""
        self.t0 = time.time()
        self._spawn(self._sample_shares)
        self._spawn(self._watch_values)
        for index in range(len(LIVE)):
            self._spawn(self._emit_live, index)
        for sync in self.syncs.values():
            self.start_runtime(sync)
        for sync in self.syncs.values():
            assert sync.runtime is not None
            sync.runtime.wait_ready(120)
        self.phases["bulk_and_live"] = time.time() - self.t0
        self._emitting.set()
        time.sleep(self.s.phase1_seconds)

        self.phases["bulk_suspended"] = time.time() - self.t0
        self._patch_spec(BULK, {"suspend": True})
        bulk = self.syncs[BULK]
        assert bulk.runtime is not None
        bulk.runtime.terminate()  # what the kubelet does when the Deployment scales to zero
        time.sleep(self.s.phase2_seconds)

        self.phases["bulk_resumed"] = time.time() - self.t0
        self._emitting.clear()
        self._patch_spec(BULK, {"suspend": False})
        wait_until(
            lambda: bool(self.share(BULK)), 60, "the resumed sync's share", on_timeout=self.operator_log
        )
        self.start_runtime(bulk)
        wait_until(
            lambda: all(self.sekoia.active_values(s.collection) >= s.expected for s in self.syncs.values()),
            self.s.drain_timeout,
            "every value in Sekoia",
            interval=1.0,
            on_timeout=lambda: (
                self._progress_text() + "\n" + (bulk.runtime.log()[-3000:] if bulk.runtime else "")
            ),
        )
        self.phases["drained"] = time.time() - self.t0
        time.sleep(2.0)
        return self.figures()

    def _progress_text(self) -> str:
        return "\n".join(
            f"{s.name}: {len(self.sekoia.active_values(s.collection))}/{len(s.expected)} "
            f"{(self.get(s.name).get('status') or {}).get('progress')}"
            for s in self.syncs.values()
        )

    def _patch_spec(self, name: str, spec: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, {"spec": spec}
        )

    def stop(self) -> None:
        self._stop.set()
        for sync in self.syncs.values():
            if sync.runtime is not None and sync.runtime.process.alive():
                sync.runtime.terminate()
        if self.operator is not None:
            self.operator.stop(timeout=10)
        for sync in self.syncs.values():
            sync.opencti.stop()
        self.sekoia.stop()

    def _sync_of(self, path: str) -> str | None:
        return next((s.name for s in self.syncs.values() if s.collection in path), None)

    def operator_log(self) -> str:
        path = self.work_dir / "operator.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def operator_metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    # ------------------------------------------------------------------ figures
    def figures(self) -> dict[str, Any]:
        """requests/s per sync per time bucket, shares over time, 429s, live delays, losses."""
        by_collection = {s.collection: s.name for s in self.syncs.values()}
        log = self.sekoia.requests()
        width = self.s.bucket_seconds
        end = max((e["time"] for e in log), default=self.t0) - self.t0
        buckets = math.ceil(end / width) if end > 0 else 0
        rates = {name: [0.0] * buckets for name in self.syncs}
        total = [0.0] * buckets
        throttled_per_bucket = [0] * buckets
        throttled = {name: 0 for name in self.syncs}
        values = {name: [0, 0] for name in self.syncs}  # values, accepted requests
        for entry in log:
            name = next((n for c, n in by_collection.items() if c in entry["path"]), None)
            if name is None:
                continue
            index = min(buckets - 1, int((entry["time"] - self.t0) / width))
            rates[name][index] += 1 / width
            total[index] += 1 / width
            if entry["status"] == 429:
                throttled[name] += 1
                throttled_per_bucket[index] += 1
            elif entry["method"] == "POST" and entry["values"]:
                values[name][0] += entry["values"]
                values[name][1] += 1
        delays = sorted(
            sync.seen[value] - emitted
            for name in LIVE
            for sync in [self.syncs[name]]
            for value, emitted in sync.emitted.items()
            if value in sync.seen
        )
        counts = self.sekoia.counts()
        phase1 = _window(self.shares, self.phases["bulk_and_live"] + 10, self.phases["bulk_suspended"])
        phase2 = _window(self.shares, self.phases["bulk_suspended"] + 8, self.phases["bulk_resumed"])
        return {
            "settings": vars(self.s),
            "phases_seconds": {k: round(v, 1) for k, v in self.phases.items()},
            "requests_total": counts["requests"],
            "requests_by_status": counts["by_status"],
            "throttled_429": sum(throttled.values()),
            "throttled_429_by_sync": throttled,
            "throttled_429_per_bucket": throttled_per_bucket,
            "bucket_seconds": width,
            "requests_per_second": {k: [round(v, 2) for v in vs] for k, vs in rates.items()},
            "requests_per_second_total": [round(v, 2) for v in total],
            "shares": self.shares,
            "backlogs": self.backlogs,
            "values_per_request": {n: round(v / r, 1) if r else None for n, (v, r) in values.items()},
            "median_share_bulk_phase": {n: _median([r[n] for r in phase1]) for n in self.syncs},
            "median_share_suspended_phase": {n: _median([r[n] for r in phase2]) for n in self.syncs},
            "live_delay_seconds": {
                "count": len(delays),
                "p50": _percentile(delays, 0.50),
                "p95": _percentile(delays, 0.95),
                "max": round(delays[-1], 2) if delays else None,
            },
            "requests": [
                {"t": round(e["time"] - self.t0, 3), "sync": self._sync_of(e["path"]), "status": e["status"]}
                for e in log
            ],
            "missing": {
                s.name: len(s.expected - self.sekoia.active_values(s.collection)) for s in self.syncs.values()
            },
            "expected": {s.name: len(s.expected) for s in self.syncs.values()},
        }


def _window(rows: list[dict[str, Any]], start: float, end: float) -> list[dict[str, Any]]:
    return [r for r in rows if start <= r["t"] <= end]


def _median(values: list[float | None]) -> float | None:
    known = sorted(v for v in values if v is not None)
    return known[len(known) // 2] if known else None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, math.ceil(q * len(values)) - 1)], 2)
