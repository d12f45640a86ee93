"""The soak's fault schedule and the code that injects each fault.

The schedule is data (when, what, for how long), scaled to the length of the stream; the
:class:`FaultInjector` knows how to start and end each kind against the running stack. Faults run
one after the other in their own thread: a fault that holds (a latency spike) or waits for its
effect (a Secret rotation waits for the rollout) delays the next one, and the report says when each
one really happened.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

from connector_runtime.sekoia.protocol import API_PREFIX
from testbed.controlplane.cluster import LocalCluster
from testbed.emulators.sekoia.remote import RemoteEmulator
from testbed.soak.runtimes import Runtimes


@dataclass(frozen=True)
class Fault:
    """One scheduled fault: ``at`` is a share of the stream's duration, ``hold`` seconds."""

    at: float
    kind: str
    hold: float = 0.0


# Every kind issue 7 names, at least once; the ones that hurt most (kills, restarts) twice.
SCHEDULE: tuple[Fault, ...] = (
    Fault(0.04, "sekoia-5xx-burst", hold=5),
    Fault(0.10, "sekoia-429-storm-with-retry-after", hold=6),
    Fault(0.16, "opencti-disconnect"),
    Fault(0.21, "runtime-sigkill"),
    # Every Sekoia request redirected (a base URL missing its /api prefix): nothing may be taken
    # for an acknowledgement, the resource goes Stalled, and everything arrives once it is over.
    # Early, so that it falls while events still flow even in short runs.
    Fault(0.24, "sekoia-url-redirects", hold=20),
    Fault(0.27, "sekoia-latency-spike", hold=12),
    Fault(0.33, "sekoia-dropped-connections", hold=10),
    Fault(0.38, "operator-sigkill"),
    Fault(0.43, "sekoia-429-storm-without-retry-after", hold=8),
    Fault(0.48, "opencti-stall", hold=20),
    Fault(0.56, "secret-rotated"),
    Fault(0.64, "kube-apiserver-restart"),
    Fault(0.70, "sekoia-5xx-errors", hold=15),
    Fault(0.75, "opencti-disconnect-reconnect-refused"),
    Fault(0.80, "runtime-sigkill"),
    # Well past pycti's watchdog (45 s without an event, checked every 5 s): the runtime process
    # ends itself and is restarted.
    Fault(0.86, "opencti-long-stall", hold=75),
    Fault(0.95, "operator-sigkill"),
    Fault(1.00, "kube-apiserver-restart"),
)


@dataclass
class Injected:
    """What happened when a fault ran."""

    kind: str
    at: float  # seconds after the stream started
    seconds: float  # how long the fault lasted (including waiting for its effect)
    detail: str
    ok: bool = True


class Stackish(Protocol):
    """What the injector needs from the scenario (kept small so that it can be faked in tests)."""

    @property
    def cluster(self) -> LocalCluster: ...

    @property
    def runtimes(self) -> Runtimes: ...

    @property
    def sekoia(self) -> RemoteEmulator: ...

    @property
    def opencti_url(self) -> str: ...

    def restart_operator(self) -> str: ...

    def rotate_sekoia_key(self, new_key: str) -> str: ...

    def sync_condition(self, kind: str) -> dict[str, Any]: ...


@dataclass
class FaultInjector:
    """Runs a schedule against a stack in a background thread."""

    stack: Stackish
    schedule: tuple[Fault, ...]
    duration: float  # seconds the stream lasts; ``Fault.at`` scales with it
    done: list[Injected] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _began: float = 0.0

    def start(self, began: float) -> FaultInjector:
        """Start injecting; ``began`` is the monotonic time the stream started."""
        self._began = began
        self._thread = threading.Thread(target=self._run, name="fault-injector", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        """Wait for the last fault to end."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        for fault in self.schedule:
            wait = self._began + fault.at * self.duration - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            started = time.monotonic()
            try:
                detail, ok = self._inject(fault), True
            except Exception as exc:  # a fault that could not be injected is reported, not fatal
                detail, ok = f"could not inject: {type(exc).__name__}: {exc}"[:300], False
            self.done.append(
                Injected(fault.kind, started - self._began, time.monotonic() - started, detail, ok)
            )

    # ------------------------------------------------------------------ the faults
    def _inject(self, fault: Fault) -> str:
        handler: Callable[[Fault], str] = getattr(self, "_" + fault.kind.replace("-", "_"))
        return handler(fault)

    def _held(self, fault: Fault, start: Callable[[], Any], end: Callable[[], Any]) -> None:
        start()
        try:
            time.sleep(fault.hold)
        finally:
            end()

    def _storm(self, fault: Fault, status: int, **extra: Any) -> None:
        self.stack.sekoia.set_faults(storm={"status": status, "seconds": fault.hold, **extra})
        time.sleep(fault.hold)

    def _sekoia_5xx_burst(self, fault: Fault) -> str:
        self._storm(fault, 503)
        return f"every Sekoia request answered 503 for {fault.hold:g}s"

    def _sekoia_429_storm_with_retry_after(self, fault: Fault) -> str:
        self._storm(fault, 429, retry_after=2)
        return f"every Sekoia request answered 429 with Retry-After: 2 for {fault.hold:g}s"

    def _sekoia_429_storm_without_retry_after(self, fault: Fault) -> str:
        sekoia = self.stack.sekoia
        sekoia.set_options(retry_after=False)
        try:
            self._storm(fault, 429)
        finally:
            sekoia.set_options(retry_after=True)
        return f"every Sekoia request answered 429 without Retry-After for {fault.hold:g}s"

    def _sekoia_latency_spike(self, fault: Fault) -> str:
        sekoia = self.stack.sekoia
        before = sekoia.summary()["faults"]
        self._held(
            fault,
            lambda: sekoia.set_faults(latency=1.5, latency_jitter=1.0),
            lambda: sekoia.set_faults(latency=before["latency"], latency_jitter=before["latency_jitter"]),
        )
        return f"Sekoia answered after 1.5-2.5 s for {fault.hold:g}s"

    def _sekoia_dropped_connections(self, fault: Fault) -> str:
        sekoia = self.stack.sekoia
        self._held(
            fault,
            lambda: sekoia.set_faults(drop_ratio=0.25, drop_after_apply=True),
            lambda: sekoia.set_faults(drop_ratio=0.0),
        )
        return f"25% of Sekoia connections closed without an answer (after applying) for {fault.hold:g}s"

    def _sekoia_5xx_errors(self, fault: Fault) -> str:
        sekoia = self.stack.sekoia
        self._held(
            fault,
            lambda: sekoia.set_faults(error_ratio=0.3, error_status=502),
            lambda: sekoia.set_faults(error_ratio=0.0),
        )
        return f"30% of Sekoia requests answered 502 for {fault.hold:g}s"

    def _sekoia_url_redirects(self, fault: Fault) -> str:
        sekoia = self.stack.sekoia
        location = f"{sekoia.base_url}/api{API_PREFIX}/"
        seen: list[float] = []
        redirected_before = sekoia.summary()["by_status"].get("301", 0)
        began = time.monotonic()
        sekoia.set_faults(redirect_location=location, redirect_scope="all")
        try:
            while time.monotonic() - began < fault.hold:
                if not seen and self._stalled_by_redirects():
                    seen.append(time.monotonic() - began)
                time.sleep(1.0)
        finally:
            sekoia.set_faults(redirect_location=None)
        redirected = sekoia.summary()["by_status"].get("301", 0) - redirected_before
        stalled = f"resource Stalled (SekoiaURLRedirects) after {seen[0]:.0f}s" if seen else "no Stalled seen"
        return f"{redirected} Sekoia requests answered 301 (to /api/...) for {fault.hold:g}s; {stalled}"

    def _stalled_by_redirects(self) -> bool:
        try:
            stalled = self.stack.sync_condition("Stalled")
        except Exception:  # the API server may be restarting: look again next second
            return False
        return stalled.get("status") == "True" and stalled.get("reason") == "SekoiaURLRedirects"

    def _opencti(self, spec: dict[str, Any]) -> dict[str, Any]:
        session = requests.Session()
        session.trust_env = False
        answer = session.post(f"{self.stack.opencti_url}/_emulator/faults", json=spec, timeout=10)
        answer.raise_for_status()
        return dict(answer.json())

    def _opencti_disconnect(self, fault: Fault) -> str:
        self._opencti({"disconnect": True})
        return "every live-stream connection cut (no clean end of stream)"

    def _opencti_disconnect_reconnect_refused(self, fault: Fault) -> str:
        self._opencti({"fail_next_connects": 1, "fail_status": 500, "disconnect": True, "graceful": True})
        return "stream ended, the next connection attempt answered 500 (pycti ends its process)"

    def _opencti_stall(self, fault: Fault) -> str:
        starts = self.stack.runtimes.starts()
        self._opencti({"stall_seconds": fault.hold})
        time.sleep(fault.hold)
        restarted = self.stack.runtimes.starts() - starts
        silent = f"the stream sent nothing (no heartbeat either) for {fault.hold:g}s"
        return f"{silent}; runtime restarts {restarted}"

    def _opencti_long_stall(self, fault: Fault) -> str:
        return self._opencti_stall(fault)

    def _runtime_sigkill(self, fault: Fault) -> str:
        killed = self.stack.runtimes.kill_runtime()
        if killed is None:
            raise RuntimeError("no runtime process was running")
        return f"runtime {killed} SIGKILLed; it must be restarted"

    def _operator_sigkill(self, fault: Fault) -> str:
        return self.stack.restart_operator()

    def _kube_apiserver_restart(self, fault: Fault) -> str:
        down = self.stack.cluster.restart_apiserver(down_seconds=2.0)
        return f"kube-apiserver stopped and started again, unreachable for {down:.1f}s"

    def _secret_rotated(self, fault: Fault) -> str:
        return self.stack.rotate_sekoia_key(f"soak-sekoia-{secrets.token_hex(8)}")
