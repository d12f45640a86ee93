"""The local stand-in for a kubelet's restart loop, for machines that cannot run the real node
(``SIS_REAL_NODE=0``, no root, no containerd): on the real node the kubelet itself runs the runtime
Pods (:mod:`testbed.soak.nodepods`).

kwok marks the runtime's Pod Running without executing anything; this loop does what a kubelet
does for that Pod during the soak:

- runs the container the Pod template describes (``testbed.demo.kubelet``), with the Pod's own
  ServiceAccount token and the Secret's current values;
- restarts it when it exits, whatever the cause (a SIGKILL, pycti's watchdog, a stream that cannot
  reconnect), after a short back-off, as ``restartPolicy: Always`` does;
- stops it (SIGTERM) when its Pod goes away and starts the next Pod's container: a rollout, e.g.
  after the credentials Secret was rotated.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from testbed.controlplane.cluster import LocalCluster
from testbed.demo.kubelet import LocalContainer, plan_from_deployment, run_container
from testbed.soak.runtimes import (
    ROLLOUT,
    SCRAPE_INTERVAL,
    SCRAPED,
    RuntimeRecord,
    counters_summed,
    reasons_counted,
)

RESTART_DELAY = 1.0  # a kubelet's first back-off is 10 s; shorter here, the soak has many restarts


class RuntimeSupervisor:
    """Keeps exactly one runtime process for the Deployment's current running Pod."""

    def __init__(
        self, cluster: LocalCluster, namespace: str, deployment: str, run_dir: Path, reason: str
    ) -> None:
        self.where = f"LOCAL STAND-IN FOR A KUBELET (processes on this host) — because {reason}"
        self.cluster = cluster
        self.namespace = namespace
        self.deployment = deployment
        self.run_dir = run_dir
        self.records: list[RuntimeRecord] = []
        self.errors: list[str] = []
        self._current: LocalContainer | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runtime-supervisor", daemon=True)
        self._core: Any = None
        self._selector = ""

    # ------------------------------------------------------------------ control
    def start(self) -> RuntimeSupervisor:
        """Start the loop in a background thread."""
        from kubernetes import client

        api_client = self.cluster.api_client()
        self._core = client.CoreV1Api(api_client)
        dep = client.AppsV1Api(api_client).read_namespaced_deployment(self.deployment, self.namespace)
        labels: Mapping[str, str] = dep.spec.selector.match_labels
        self._selector = ",".join(f"{k}={v}" for k, v in labels.items())
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the loop and the current process (SIGTERM, as at Pod deletion)."""
        self._stop.set()
        self._thread.join(timeout=30)
        with self._lock:
            self._end_current("supervisor stopped", graceful=True)

    def kill_runtime(self) -> str | None:
        """SIGKILL the running process (a crash); the loop restarts it. Returns its pid."""
        with self._lock:
            current = self._current
            if current is None or not current.process.alive():
                return None
            self._scrape(current)
            current.process.kill()
            return f"pid {current.process.pid}"

    def current(self) -> LocalContainer | None:
        """The process running now, if any."""
        with self._lock:
            return self._current

    def wait_ready(self, timeout: float, started_after: float = 0.0) -> float:
        """Wait until a process started after ``started_after`` (monotonic) answers its readiness
        probe; returns the seconds waited. Raises TimeoutError."""
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            current = self.current()
            record = self.records[-1] if self.records else None
            if current is not None and record is not None and record.started >= started_after:
                with contextlib.suppress(Exception):
                    if current.ready():
                        return time.monotonic() - began
            time.sleep(0.2)
        raise TimeoutError(f"no ready runtime process within {timeout:.0f}s")

    # ------------------------------------------------------------------ summary
    def totals(self) -> dict[str, float]:
        """Each scraped counter summed over every process of the run."""
        with self._lock:
            if self._current is not None:
                self._scrape(self._current)
            return counters_summed(self.records)

    def starts(self) -> int:
        """Processes started."""
        return len(self.records)

    def restarts_by_reason(self) -> dict[str, int]:
        """Why processes ended, counted."""
        return reasons_counted(self.records)

    def log_path(self) -> Path:
        """The log every runtime process of the run appends to."""
        return self.run_dir / "logs" / "connector-runtime.log"

    def peak_memory(self) -> dict[str, float]:
        """Not measured for local processes (they run without a memory limit)."""
        return {}

    # ------------------------------------------------------------------ loop
    def _loop(self) -> None:
        last_scrape = 0.0
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as exc:  # the API server may be restarting: try again shortly
                self._note_error(
                    f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
                )
            if time.monotonic() - last_scrape >= SCRAPE_INTERVAL:
                last_scrape = time.monotonic()
                with self._lock:
                    if self._current is not None:
                        self._scrape(self._current)
            self._stop.wait(0.3)

    def _step(self) -> None:
        pod = self._running_pod()
        with self._lock:
            current = self._current
            if current is not None and pod != current.plan.pod_uid:
                self._end_current(ROLLOUT, graceful=True)
            elif current is not None and not current.process.alive():
                self._end_current("exited", graceful=False)
                self._stop.wait(RESTART_DELAY)
            current = self._current
        if current is None and pod is not None and not self._stop.is_set():
            plan = plan_from_deployment(self.cluster, self.namespace, self.deployment, timeout=10)
            container = run_container(self.cluster, plan, self.run_dir)
            with self._lock:
                self._current = container
                self.records.append(
                    RuntimeRecord(plan.pod_name, str(container.process.pid), time.monotonic())
                )

    def _running_pod(self) -> str | None:
        """uid of the Deployment's Running Pod that is not being deleted (None when there is none)."""
        pods = self._core.list_namespaced_pod(self.namespace, label_selector=self._selector).items
        for pod in pods:
            if pod.metadata.deletion_timestamp is None and pod.status.phase == "Running":
                return str(pod.metadata.uid)
        return None

    def _end_current(self, reason: str, graceful: bool) -> None:
        current = self._current
        if current is None:
            return
        if current.process.alive():
            self._scrape(current)
        code = current.process.stop(timeout=20) if graceful else current.process.popen.poll()  # type: ignore[union-attr]
        record = self.records[-1]
        record.ended, record.exit_code = time.monotonic(), code
        record.end_reason = reason if graceful else f"{reason} (code {code})"
        self._current = None

    def _scrape(self, container: LocalContainer) -> None:
        record = self.records[-1]
        for name in SCRAPED:
            value = container.metric(name)
            if value is not None:
                record.counters[name] = value

    def _note_error(self, text: str) -> None:
        if not self.errors or self.errors[-1] != text:
            self.errors.append(text)
