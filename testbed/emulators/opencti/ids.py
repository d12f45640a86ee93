"""Redis-style stream event ids (`<epoch ms>-<seq>`), as used by the OpenCTI live stream."""

from __future__ import annotations

import re
import threading
import time

EventKey = tuple[int, int]
"""A parsed event id; tuples order exactly like the ids do."""

ZERO_KEY: EventKey = (0, 0)

_ID_RE = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_event_id(value: str) -> EventKey:
    """Parse `<ms>-<seq>` (or a bare `<ms>`, which Redis reads as `<ms>-0`) into a sortable key.

    Raises ValueError on anything else.
    """
    match = _ID_RE.match(value.strip())
    if match is None:
        raise ValueError(f"not a stream event id: {value!r}")
    return int(match.group(1)), int(match.group(2) or 0)


def format_event_id(key: EventKey) -> str:
    """Format a key back to the wire form `<ms>-<seq>`."""
    return f"{key[0]}-{key[1]}"


class EventIdClock:
    """Hands out strictly increasing ids based on the wall clock, like Redis XADD with `*`.

    Ids stay increasing even if the wall clock steps back or many ids are taken in one millisecond.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: EventKey = ZERO_KEY

    def next_key(self) -> EventKey:
        """Return a key greater than every key returned before."""
        now_ms = time.time_ns() // 1_000_000
        with self._lock:
            last_ms, last_seq = self._last
            key = (now_ms, 0) if now_ms > last_ms else (last_ms, last_seq + 1)
            self._last = key
            return key
