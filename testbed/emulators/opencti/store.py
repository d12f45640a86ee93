"""The event log: the emulator's equivalent of the platform's Redis stream (append-only, ordered)."""

from __future__ import annotations

import bisect
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from .ids import EventIdClock, EventKey, format_event_id
from .stix import build_payload


@dataclass
class EventRecord:
    """One event as stored in the log; `previous` is the object version before an update/merge."""

    key: EventKey
    kind: str
    data: dict[str, Any]
    origin: dict[str, Any]
    context: dict[str, Any] | None = None
    previous: dict[str, Any] | None = None
    message: str | None = None
    created_at: float = 0.0
    _wire: str | None = field(default=None, repr=False)

    @property
    def event_id(self) -> str:
        """The wire id `<ms>-<seq>`."""
        return format_event_id(self.key)

    def payload(self) -> dict[str, Any]:
        """The event's JSON document as delivered unchanged to a stream."""
        return build_payload(self.kind, self.data, self.origin, self.context, self.message)

    def wire_data(self) -> str:
        """The payload serialised once on a single line; shared by every connection."""
        if self._wire is None:
            # ensure_ascii=False: the platform sends UTF-8 text, and clients must decode it as such.
            self._wire = json.dumps(self.payload(), ensure_ascii=False, separators=(",", ":"))
        return self._wire

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly view for inspection endpoints."""
        return {
            "id": self.event_id,
            "type": self.kind,
            "stix_id": self.data.get("id"),
            "stix_type": self.data.get("type"),
            "payload": self.payload(),
        }


class EventLog:
    """Thread-safe append-only list of events with blocking reads for stream writers.

    Writers never hold the lock while doing I/O: they copy a slice of records and release it, so a
    slow client cannot hold up appends or other clients.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._records: list[EventRecord] = []
        self._keys: list[EventKey] = []
        self._clock = EventIdClock()
        self._wake_generation = 0

    def append(self, build: Any) -> EventRecord:
        """Append the record returned by `build(key)`; the key is taken under the same lock as the
        append so that log order and id order can never disagree."""
        with self._cond:
            record: EventRecord = build(self._clock.next_key())
            self._records.append(record)
            self._keys.append(record.key)
            self._cond.notify_all()
            return record

    def wake_all(self) -> None:
        """Wake every waiting stream writer so that it re-checks faults and shutdown flags."""
        with self._cond:
            self._wake_generation += 1
            self._cond.notify_all()

    def index_after(self, key: EventKey) -> int:
        """Index of the first record whose id is strictly greater than `key`."""
        with self._cond:
            return bisect.bisect_right(self._keys, key)

    def head_index(self) -> int:
        """Number of records (the index a live-only reader starts from)."""
        with self._cond:
            return len(self._records)

    def wait_records(self, index: int, timeout: float, limit: int = 1000) -> list[EventRecord]:
        """Records from `index` on (at most `limit`), waiting up to `timeout` s if there are none.

        Returns early (possibly empty) when `wake_all` is called.
        """
        with self._cond:
            if len(self._records) <= index and timeout > 0:
                generation = self._wake_generation
                self._cond.wait_for(
                    lambda: len(self._records) > index or self._wake_generation != generation, timeout
                )
            return self._records[index : index + limit]

    def snapshot(self) -> list[EventRecord]:
        """A copy of all records."""
        with self._cond:
            return list(self._records)

    def bounds(self) -> tuple[EventRecord | None, EventRecord | None, int]:
        """(first record, last record, size)."""
        with self._cond:
            if not self._records:
                return None, None, 0
            return self._records[0], self._records[-1], len(self._records)

    def last_key(self) -> EventKey | None:
        """Key of the newest record, or None for an empty log."""
        with self._cond:
            return self._keys[-1] if self._keys else None
