"""Bounded, thread-safe log of the API requests the emulator answered (or dropped)."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any


class RequestLog:
    """Keeps the last `capacity` requests plus all-time counters by status."""

    def __init__(self, capacity: int = 50_000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._seq = 0
        self._by_status: Counter[str] = Counter()

    def record(
        self, method: str, path: str, query: str, status: int | None, started: float, values: int
    ) -> None:
        """Add one request; `status` None means the connection was dropped without an answer."""
        label = "dropped" if status is None else str(status)
        with self._lock:
            self._seq += 1
            self._by_status[label] += 1
            self._entries.append(
                {
                    "seq": self._seq,
                    "time": time.time(),
                    "method": method,
                    "path": path,
                    "query": query,
                    "status": status,
                    "dropped": status is None,
                    "duration": round(time.monotonic() - started, 6),
                    "values": values,
                }
            )

    def entries(self, since: int = 0) -> list[dict[str, Any]]:
        """Requests whose sequence number is greater than `since`, oldest first."""
        with self._lock:
            return [dict(e) for e in self._entries if e["seq"] > since]

    def by_status(self) -> dict[str, int]:
        """All-time request count per status ('dropped' for no answer)."""
        with self._lock:
            return dict(self._by_status)

    def total(self) -> int:
        with self._lock:
            return self._seq

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._by_status.clear()
            self._seq = 0
