"""The committed stream position: never past an event whose effect Sekoia has not acknowledged.

Events are registered in stream order and completed in any order (batches run concurrently).
The committed position is the id of the last event of the longest completed prefix. Heartbeat
ids (the channel's latest position, possibly ahead of what was delivered) only move it when
nothing is pending. Ids are Redis stream ids ``<ms>-<seq>``; dependency events may repeat the id
of the event that pulled them in, so a position is committed only once every event carrying
that id is done.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field


def parse_event_id(event_id: str) -> tuple[int, int]:
    """``"1700000000000-3"`` -> ``(1700000000000, 3)``; a bare number has sequence 0."""
    ms, _, seq = event_id.strip().partition("-")
    return int(ms), int(seq or 0)


def event_id_time(event_id: str) -> float | None:
    """Epoch seconds encoded in a stream id, or None when it has none (``0-0``, garbage)."""
    try:
        ms, _ = parse_event_id(event_id)
    except ValueError:
        return None
    return ms / 1000.0 if ms > 0 else None


@dataclass
class Ticket:
    """One registered event; done when all its actions are acknowledged."""

    event_id: str
    received: float = field(default_factory=time.monotonic)
    done: bool = False


class PositionTracker:
    """Thread-safe bookkeeping of pending events and the committed position."""

    def __init__(
        self,
        initial: str | None = None,
        on_commit: Callable[[str], None] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._pending: deque[Ticket] = deque()
        self._committed = initial
        self._on_commit = on_commit

    def begin(self, event_id: str) -> Ticket:
        """Register an event (in stream order) before its effects are attempted."""
        ticket = Ticket(event_id)
        with self._lock:
            self._pending.append(ticket)
        return ticket

    def complete(self, ticket: Ticket) -> None:
        """Mark an event's effects as acknowledged and advance the committed position if possible."""
        with self._lock:
            ticket.done = True
            advanced = self._advance()
        if advanced is not None and self._on_commit:
            self._on_commit(advanced)

    def observe_position(self, event_id: str) -> None:
        """A position the stream reports without an event (heartbeat, start position)."""
        with self._lock:
            if self._pending or not _is_valid(event_id):
                advanced = None
            elif self._committed is None or _later(event_id, self._committed):
                self._committed = event_id
                advanced = event_id
            else:
                advanced = None
        if advanced is not None and self._on_commit:
            self._on_commit(advanced)

    def rewind(self, event_id: str) -> None:
        """Move the committed position back (a resync replays from there); only before any event
        was registered, so that no acknowledgement is lost."""
        with self._lock:
            if self._pending:
                raise RuntimeError("cannot rewind while events are pending")
            self._committed = event_id

    @property
    def committed(self) -> str | None:
        """The id up to which every event's effect is acknowledged."""
        with self._lock:
            return self._committed

    def pending_count(self) -> int:
        """Events registered but not yet complete (including completed ones behind a pending one)."""
        with self._lock:
            return sum(1 for t in self._pending if not t.done)

    def oldest_pending_age(self) -> float:
        """Seconds since the oldest incomplete event was received (0 when none)."""
        with self._lock:
            for ticket in self._pending:
                if not ticket.done:
                    return time.monotonic() - ticket.received
        return 0.0

    def _advance(self) -> str | None:
        last: str | None = None
        while self._pending and self._pending[0].done:
            last = self._pending.popleft().event_id
        if last is None:
            return None
        # A pending event with the same id (a dependency sharing it) keeps that id uncommitted.
        if self._pending and self._pending[0].event_id == last:
            return None
        if self._committed is not None and not _later(last, self._committed):
            return None
        self._committed = last
        return last


def _is_valid(event_id: str) -> bool:
    try:
        parse_event_id(event_id)
    except ValueError:
        return False
    return True


def _later(a: str, b: str) -> bool:
    try:
        return parse_event_id(a) > parse_event_id(b)
    except ValueError:
        return False
