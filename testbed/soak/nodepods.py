"""The soak's runtime Pods as the real node's kubelet runs them: nothing here starts or restarts a
process. It watches what the kubelet does (containers started, restarted after a crash, stopped on
a rollout), keeps one record per container, and reads what only the node has:

- each container's counters, from its /metrics on the Pod IP, while it lives;
- every container's log, copied from the kubelet's log files before the kubelet removes them;
- the container's memory peak and limit, from its memory cgroup.

The one thing it does to a Pod is the soak's ``runtime-sigkill`` fault: SIGKILL of the container's
process, found through containerd, from the host, as a crash would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testbed.controlplane.cluster import LocalCluster
from testbed.demo.nodepod import metric_in, metrics_page
from testbed.node import hostview
from testbed.node.podlogs import PodLogTail
from testbed.soak.runtimes import (
    ROLLOUT,
    SCRAPE_INTERVAL,
    SCRAPED,
    RuntimeRecord,
    counters_summed,
    reasons_counted,
)

OBSERVE_INTERVAL = 0.5
LOG_SWEEP_INTERVAL = 1.0


@dataclass
class _Where:
    """How to reach a container: its Pod's IP and the port serving /metrics."""

    pod_uid: str
    ip: str
    port: int


def _metrics_port(pod: Any) -> int:
    container = pod.spec.containers[0]
    ports = {p.name: p.container_port for p in container.ports or []}
    probe = container.readiness_probe.http_get if container.readiness_probe else None
    port = probe.port if probe is not None else "http"
    return int(ports[port]) if isinstance(port, str) else int(port)


def end_reason(exit_code: int | None, reason: str | None, pod_deleting: bool) -> str:
    """Why a container ended, in the words the stand-in uses: a rollout when its Pod was being
    deleted, else its exit code and the kubelet's reason (``Error``, ``OOMKilled``...)."""
    if pod_deleting:
        return ROLLOUT
    return f"exited (code {exit_code}{', ' + reason if reason else ''})"


class KubeletRuntimes:
    """Observes the runtime Pods of one Deployment on the real node."""

    def __init__(
        self, cluster: LocalCluster, namespace: str, deployment: str, run_dir: Path, where: str
    ) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.deployment = deployment
        self.where = where
        self.records: list[RuntimeRecord] = []
        self.errors: list[str] = []
        self._by_container: dict[str, RuntimeRecord] = {}
        self._where: dict[str, _Where] = {}
        self._ready: set[str] = set()
        self._pids: dict[str, int] = {}
        self._memory: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kubelet-runtimes", daemon=True)
        self._core: Any = None
        self._selector = ""
        self._logs = PodLogTail(
            cluster.real_node.pod_logs_dir, f"{namespace}_", run_dir / "logs" / "connector-runtime.log"
        )

    # ------------------------------------------------------------------ control
    def start(self) -> KubeletRuntimes:
        """Start watching in a background thread."""
        from kubernetes import client

        api_client = self.cluster.api_client()
        self._core = client.CoreV1Api(api_client)
        dep = client.AppsV1Api(api_client).read_namespaced_deployment(self.deployment, self.namespace)
        labels: Mapping[str, str] = dep.spec.selector.match_labels
        self._selector = ",".join(f"{k}={v}" for k, v in labels.items())
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (the Pods keep running until the node stops); a last log sweep and scrape."""
        self._stop.set()
        self._thread.join(timeout=30)
        with self._lock:
            self._scrape_all()
        self._logs.sweep()

    def kill_runtime(self) -> str | None:
        """SIGKILL the running container's process from the host; the kubelet restarts it."""
        with self._lock:
            running = [r for r in self.records if r.ended is None and r.ident in self._where]
            if not running:
                return None
            record = running[-1]
            self._scrape(record)
            pid = hostview.container_pid(self.cluster.real_node, record.ident)
            os.kill(pid, signal.SIGKILL)
        return f"container {record.ident.split('://')[-1][:12]} (host pid {pid})"

    def wait_ready(self, timeout: float, started_after: float = 0.0) -> float:
        """Seconds until a container first seen after ``started_after`` is Ready through its
        probes, as the kubelet reports it. Raises TimeoutError."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            with self._lock:
                if any(
                    r.started >= started_after and r.ended is None and r.ident in self._ready
                    for r in self.records
                ):
                    return time.monotonic() - began
            time.sleep(0.2)
        raise TimeoutError(f"no runtime container Ready within {timeout:.0f}s")

    # ------------------------------------------------------------------ summary
    def totals(self) -> dict[str, float]:
        """Each scraped counter summed over every container of the run."""
        with self._lock:
            self._scrape_all()
            return counters_summed(self.records)

    def starts(self) -> int:
        """Containers started (the first of each Pod and every kubelet restart)."""
        return len(self.records)

    def restarts_by_reason(self) -> dict[str, int]:
        """Why containers ended, counted."""
        with self._lock:
            return reasons_counted(self.records)

    def log_path(self) -> Path:
        """Every container's log lines so far, in one file."""
        self._logs.sweep()
        return self._logs.out

    def peak_memory(self) -> dict[str, float]:
        """The highest memory use any runtime container's cgroup recorded, and its limit."""
        with self._lock:
            return dict(self._memory)

    # ------------------------------------------------------------------ loop
    def _loop(self) -> None:
        last_scrape = last_sweep = 0.0
        while not self._stop.is_set():
            try:
                self._observe()
            except Exception as exc:  # the API server may be restarting: look again shortly
                self._note_error(
                    f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                )
            now = time.monotonic()
            if now - last_sweep >= LOG_SWEEP_INTERVAL:
                last_sweep = now
                try:
                    self._logs.sweep()
                except OSError as exc:
                    self._note_error(f"log sweep: {exc}")
            if now - last_scrape >= SCRAPE_INTERVAL:
                last_scrape = now
                with self._lock:
                    self._scrape_all()
            self._stop.wait(OBSERVE_INTERVAL)

    def _observe(self) -> None:
        pods = self._core.list_namespaced_pod(self.namespace, label_selector=self._selector).items
        now = time.monotonic()
        with self._lock:
            live_pods: set[str] = set()
            for pod in pods:
                uid = str(pod.metadata.uid)
                live_pods.add(uid)
                deleting = pod.metadata.deletion_timestamp is not None
                ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
                for status in pod.status.container_statuses or []:
                    for terminated in (status.last_state.terminated, status.state.terminated):
                        if terminated is not None and terminated.container_id:
                            record = self._record(pod, terminated.container_id, now)
                            self._end(record, terminated.exit_code, terminated.reason, deleting, now)
                    running = status.state.running
                    if running is not None and status.container_id:
                        record = self._record(pod, status.container_id, now)
                        if pod.status.pod_ip:
                            self._where[record.ident] = _Where(uid, pod.status.pod_ip, _metrics_port(pod))
                        if ready and status.ready and not deleting:
                            self._ready.add(record.ident)
                        else:
                            self._ready.discard(record.ident)
            # A Pod deleted before its container's end was seen: it went with its Pod.
            for ident, where in list(self._where.items()):
                record = self._by_container[ident]
                if where.pod_uid not in live_pods and record.ended is None:
                    self._end(record, None, None, True, now)

    def _record(self, pod: Any, container_id: str, now: float) -> RuntimeRecord:
        record = self._by_container.get(container_id)
        if record is None:
            record = RuntimeRecord(str(pod.metadata.name), container_id, now)
            self._by_container[container_id] = record
            self.records.append(record)
        return record

    def _end(
        self, record: RuntimeRecord, code: int | None, reason: str | None, deleting: bool, now: float
    ) -> None:
        if record.ended is not None:
            return
        record.ended, record.exit_code = now, code
        record.end_reason = end_reason(code, reason, deleting)
        self._ready.discard(record.ident)
        self._where.pop(record.ident, None)
        self._pids.pop(record.ident, None)

    def _scrape_all(self) -> None:
        for record in self.records:
            if record.ended is None and record.ident in self._where:
                self._scrape(record)

    def _scrape(self, record: RuntimeRecord) -> None:
        where = self._where[record.ident]
        text = metrics_page(f"http://{where.ip}:{where.port}/metrics")
        if text is not None:
            for name in SCRAPED:
                # max: a scrape that reached the container's successor (same Pod IP) never lowers it.
                record.counters[name] = max(record.counters.get(name, 0.0), metric_in(text, name))
        self._read_memory(record.ident)

    def _read_memory(self, ident: str) -> None:
        with contextlib.suppress(LookupError, OSError, ValueError):
            if ident not in self._pids:
                self._pids[ident] = hostview.container_pid(self.cluster.real_node, ident)
            cgroup = hostview.memory_cgroup(self._pids[ident])
            peak = float((cgroup / "memory.max_usage_in_bytes").read_text())
            limit = float((cgroup / "memory.limit_in_bytes").read_text())
            if peak > self._memory.get("peak_bytes", 0.0):
                self._memory.update(peak_bytes=peak, limit_bytes=limit)

    def _note_error(self, text: str) -> None:
        if not self.errors or self.errors[-1] != text:
            self.errors.append(text)
