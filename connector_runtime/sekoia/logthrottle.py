"""Log a recurring warning at most once per interval, counting what was held back meanwhile.

In a 429 or 5xx storm every retry would otherwise write a line; one line every few seconds with a
count says the same thing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class ThrottledLog:
    """Per-topic throttle in front of a logger."""

    def __init__(
        self, logger: logging.Logger, interval: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, topic: str, message: str, *args: object) -> None:
        """Log `message` unless `topic` was logged less than `interval` ago (then count it)."""
        self.log(logging.WARNING, topic, message, *args)

    def error(self, topic: str, message: str, *args: object) -> None:
        """As `warning`, at error level."""
        self.log(logging.ERROR, topic, message, *args)

    def log(self, level: int, topic: str, message: str, *args: object) -> None:
        """Log `message` at `level` unless `topic` was logged less than `interval` ago."""
        now = self._clock()
        with self._lock:
            last = self._last.get(topic)
            if last is not None and now - last < self._interval:
                self._held[topic] = self._held.get(topic, 0) + 1
                return
            self._last[topic] = now
            held = self._held.pop(topic, 0)
        if held:
            message += " (%d similar message(s) suppressed)"
            args = (*args, held)
        self._logger.log(level, message, *args)
