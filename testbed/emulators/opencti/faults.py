"""Runtime fault injection for the live stream (and GraphQL), shared by all connections."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class FaultInjector:
    """Holds the fault plan; stream writers consult it between events.

    `on_change` is called after every change so that idle writers wake up and react at once.
    """

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._on_change = on_change or (lambda: None)
        self.generation = 0  # bumped by every disconnect; writers compare it to their own copy
        self.graceful_disconnect = False
        self._disconnect_after: int | None = None
        self._stall_until = 0.0
        self._connect_failures: list[int] = []
        self._graphql_failures: list[int] = []
        self.delay_seconds = 0.0
        self.disconnects = 0

    def _changed(self) -> None:
        self._on_change()

    def disconnect_now(self, graceful: bool = False) -> None:
        """Drop every open stream connection (abruptly unless `graceful`)."""
        with self._lock:
            self.graceful_disconnect = graceful
            self.generation += 1
            self.disconnects += 1
            self._disconnect_after = None
        self._changed()

    def disconnect_after(self, events: int, graceful: bool = False) -> None:
        """Drop every stream connection right after `events` more data events were delivered."""
        if events <= 0:
            self.disconnect_now(graceful)
            return
        with self._lock:
            self.graceful_disconnect = graceful
            self._disconnect_after = events
        self._changed()

    def event_delivered(self) -> bool:
        """Count one delivered data event; True when that event triggered a disconnect."""
        if self._disconnect_after is None:  # fast path, no lock for the common case
            return False
        with self._lock:
            if self._disconnect_after is None:
                return False
            self._disconnect_after -= 1
            if self._disconnect_after > 0:
                return False
            self._disconnect_after = None
            self.generation += 1
            self.disconnects += 1
        self._changed()
        return True

    def stall(self, seconds: float) -> None:
        """Send nothing at all (no events, no heartbeats) on any connection for `seconds`."""
        with self._lock:
            self._stall_until = time.monotonic() + seconds
        self._changed()

    def stall_remaining(self) -> float:
        """Seconds left in the current stall (0 when not stalled)."""
        return max(0.0, self._stall_until - time.monotonic())

    def fail_next_connects(self, count: int = 1, status: int = 500) -> None:
        """Answer the next `count` stream connection attempts with HTTP `status`."""
        with self._lock:
            self._connect_failures.extend([status] * count)

    def take_connect_failure(self) -> int | None:
        """Status to fail this stream connection with, or None to accept it."""
        with self._lock:
            return self._connect_failures.pop(0) if self._connect_failures else None

    def fail_next_graphql(self, count: int = 1, status: int = 500) -> None:
        """Answer the next `count` GraphQL requests with HTTP `status`."""
        with self._lock:
            self._graphql_failures.extend([status] * count)

    def take_graphql_failure(self) -> int | None:
        """Status to fail this GraphQL request with, or None."""
        with self._lock:
            return self._graphql_failures.pop(0) if self._graphql_failures else None

    def set_delay(self, seconds: float) -> None:
        """Wait `seconds` before each delivered data event (slow delivery)."""
        self.delay_seconds = max(0.0, seconds)
        self._changed()

    def clear(self) -> None:
        """Cancel every pending fault (open connections stay open)."""
        with self._lock:
            self._disconnect_after = None
            self._stall_until = 0.0
            self._connect_failures.clear()
            self._graphql_failures.clear()
            self.delay_seconds = 0.0
        self._changed()

    def apply(self, spec: dict[str, Any]) -> None:
        """Apply a JSON fault spec (the admin API body); keys are applied in a fixed order."""
        if spec.get("clear"):
            self.clear()
        graceful = bool(spec.get("graceful", False))
        if "delay_seconds" in spec:
            self.set_delay(float(spec["delay_seconds"]))
        if "fail_next_connects" in spec:
            self.fail_next_connects(int(spec["fail_next_connects"]), int(spec.get("fail_status", 500)))
        if "fail_next_graphql" in spec:
            self.fail_next_graphql(int(spec["fail_next_graphql"]), int(spec.get("fail_status", 500)))
        if "stall_seconds" in spec:
            self.stall(float(spec["stall_seconds"]))
        if spec.get("disconnect_after") is not None:
            self.disconnect_after(int(spec["disconnect_after"]), graceful)
        if spec.get("disconnect"):
            self.disconnect_now(graceful)

    def status(self) -> dict[str, Any]:
        """JSON-friendly view of the current plan."""
        with self._lock:
            return {
                "disconnects": self.disconnects,
                "disconnect_after": self._disconnect_after,
                "stall_remaining": round(self.stall_remaining(), 3),
                "pending_connect_failures": list(self._connect_failures),
                "pending_graphql_failures": list(self._graphql_failures),
                "delay_seconds": self.delay_seconds,
            }
