"""pycti wiring: the stream connector helper, our callback, and the stream position it saves.

Two pycti defaults are designed around here (see the protocol notes):
- pycti would save "last callback returned" (and heartbeat ids) as the stream position. The
  callback declares ``manages_state`` and the helper's ``set_state`` is intercepted, so the state
  pycti pings to the platform always carries the :class:`PositionTracker`'s committed position.
- pycti SIGTERMs its own process when its watchdog sees no message for ~45 s, including when our
  callback blocks. While the delivery queue is full the callback feeds the watchdog itself.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading
from collections.abc import Callable
from typing import Any

from connector_runtime import metrics, redaction
from connector_runtime.config import RuntimeSettings
from connector_runtime.conversion import Skipped
from connector_runtime.delivery.engine import DeliveryEngine, report_skipped
from connector_runtime.delivery.positions import PositionTracker
from connector_runtime.guardrail import REASON as GUARDRAIL_REASON
from connector_runtime.guardrail import Guardrail
from connector_runtime.health import Health
from connector_runtime.stream.events import Action, StreamEvent, parse_event

log = logging.getLogger(__name__)


def pycti_config(settings: RuntimeSettings) -> dict[str, Any]:
    """The configuration dict pycti's helper expects (pycti lets environment variables win)."""
    return {
        "opencti": {
            "url": settings.opencti_url,
            "token": settings.opencti_token.get_secret_value(),
            "ssl_verify": settings.opencti_verify,
        },
        "connector": {
            "id": settings.connector_id,
            "type": "STREAM",
            "name": settings.connector_name,
            "scope": settings.connector_scope,
            "log_level": settings.log_level,
            "live_stream_id": settings.live_stream_id,
            "live_stream_listen_delete": settings.listen_delete,
            "live_stream_no_dependencies": settings.no_dependencies,
        },
    }


class StreamCallback:
    """Called by pycti's ListenStream thread for every id-bearing, non-heartbeat message."""

    manages_state = True  # pycti >= 7: do not save "last callback returned"

    def __init__(
        self,
        tracker: PositionTracker,
        engine: DeliveryEngine,
        health: Health,
        guardrail: Guardrail | None = None,
    ) -> None:
        self.tracker = tracker
        self.guardrail = guardrail
        self.engine = engine
        self.health = health
        self._watchdog: queue.Queue[Any] | None = None

    def set_heartbeat_queue(self, q: queue.Queue[Any]) -> None:
        """pycti hands over its watchdog queue; we feed it while we wait on back-pressure."""
        self._watchdog = q

    def _keepalive(self) -> None:
        if self._watchdog is not None:
            with contextlib.suppress(queue.Full):
                self._watchdog.put("keepalive", block=False)

    def __call__(self, msg: Any) -> None:
        self.health.stream_seen()
        event_id = str(msg.id)
        event = parse_event(str(msg.event), event_id, msg.data)
        ticket = self.tracker.begin(event_id)
        if self.guardrail is not None:
            event = self.guardrail.screen(event)
        if event.action is Action.IGNORE:
            metrics.EVENTS.labels(
                metrics.event_label(event.name), metrics.ignored_label(event.ignore_reason)
            ).inc()
            # The guardrail has already reported what it refused.
            if event.indicator is not None and event.ignore_reason != GUARDRAIL_REASON:
                report_undeliverable(event)
            self.tracker.complete(ticket)
            return
        # When shutting down the event is not accepted: its ticket stays open, so the position
        # is never committed past it and the next run receives it again.
        self.engine.submit(event, ticket, keepalive=self._keepalive)


def report_undeliverable(event: StreamEvent) -> None:
    """An indicator none of whose pattern can become a Sekoia value (e.g. a YARA rule) is said in
    the log and counted in ``sis_values_skipped_total``, like skipped comparisons."""
    pattern_type = str((event.indicator or {}).get("pattern_type"))
    report_skipped(log, event.indicator_id, [Skipped(pattern_type, event.ignore_reason or "unknown")])


class StateBridge:
    """Makes pycti's saved state the tracker's committed position, and saves it often."""

    def __init__(self, helper: Any, on_position: Callable[[], None] | None = None) -> None:
        self.helper = helper
        self.on_position = on_position
        self._original_set_state = helper.set_state
        self._lock = threading.Lock()
        state = helper.get_state() or {}
        self.initial_state: dict[str, Any] = dict(state) if isinstance(state, dict) else {}
        self._recover_until = state.get("recover_until")
        # The last resync honoured (connector_runtime/resync.py), kept with the position.
        self._resync: dict[str, Any] | None = state.get("resync")
        initial = str(state["start_from"]) if state.get("start_from") else None
        self.tracker = PositionTracker(initial, on_commit=self.write)
        self._saved: str | None = self.tracker.committed
        helper.set_state = self._intercept

    def begin_resync(self, start_from: str, recover_until: str, record: dict[str, Any]) -> None:
        """Before the stream starts: replay from ``start_from`` in the platform's recovery mode up
        to ``recover_until``, and remember the request (saved with the next ping)."""
        with self._lock:
            self._recover_until = recover_until
            self._resync = record
        self.tracker.rewind(start_from)
        self.write()
        self._saved = None  # the next save pings even if the position did not move

    def record_resync(self, record: dict[str, Any]) -> None:
        """Update the remembered resync (e.g. its end) and have it saved."""
        with self._lock:
            self._resync = record
        self.write()
        self._saved = None

    def _intercept(self, state: Any) -> None:
        if not isinstance(state, dict):
            # A reset from the platform: let pycti handle it its own way.
            self._original_set_state(state)
            return
        if "recover_until" in state:
            self._recover_until = state["recover_until"]
        start_from = state.get("start_from")
        if start_from:
            if self.on_position:
                self.on_position()
            self.tracker.observe_position(str(start_from))
        self.write()

    def write(self, *_: object) -> None:
        """Put the committed position into pycti's in-memory state (sent by its next ping)."""
        with self._lock:
            state: dict[str, Any] = {
                "start_from": self.tracker.committed or "0-0",
                "recover_until": self._recover_until,
            }
            if self._resync is not None:
                state["resync"] = self._resync
            self._original_set_state(state)

    def save_if_changed(self) -> None:
        """Ping the platform now when the committed position moved since the last save."""
        committed = self.tracker.committed
        if committed == self._saved:
            return
        self.write()
        self.helper.force_ping()
        self._saved = committed


def install_excepthook(on_fatal: Callable[[str], None]) -> None:
    """pycti reports fatal stream problems through ``sys.excepthook`` (then SIGTERMs itself);
    record them as the runtime's fatal reason instead of a bare traceback."""

    def hook(etype: Any, value: Any, tb: Any) -> None:
        reason = f"{etype.__name__}: {value}" if etype else "the OpenCTI stream listener stopped"
        on_fatal(redaction.one_line(reason))

    sys.excepthook = hook
    threading.excepthook = lambda args: hook(args.exc_type, args.exc_value, args.exc_traceback)
