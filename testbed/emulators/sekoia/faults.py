"""Misbehaviour of the emulated API: per-key rate limiting, injected errors, latency, drops and storms.

All random draws come from one seeded generator so that a sequential test sees the same faults on
every run.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass

from .options import FaultSettings


class SlidingWindowLimiter:
    """At most `limit` accepted requests per `window` seconds for each key."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted: dict[str, deque[float]] = {}
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, key: str, limit: int, window: float, burst: int | None = None) -> float | None:
        """Count a request; return None if allowed, else the seconds until a slot frees up.

        With ``burst`` the key has a token bucket of that capacity instead of a sliding window."""
        now = time.monotonic()
        if burst is not None:
            return self._bucket(key, limit / window, burst, now)
        with self._lock:
            stamps = self._accepted.setdefault(key, deque())
            while stamps and stamps[0] <= now - window:
                stamps.popleft()
            if len(stamps) < limit:
                stamps.append(now)
                return None
            return max(stamps[0] + window - now, 0.0)

    def _bucket(self, key: str, rate: float, burst: int, now: float) -> float | None:
        with self._lock:
            tokens, last = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return None
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / rate

    def reset(self) -> None:
        """Forget every key's history."""
        with self._lock:
            self._accepted.clear()
            self._buckets.clear()


@dataclass
class Storm:
    """A window during which every API request gets `status`: for `remaining` requests or until `until`."""

    status: int
    remaining: int | None
    until: float | None
    retry_after: float | None

    def active(self, now: float) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        return not (self.until is not None and now >= self.until)


@dataclass(frozen=True)
class Plan:
    """What the fault injector decided for one request."""

    delay: float = 0.0
    drop: bool = False
    storm_status: int | None = None
    storm_retry_after: float | None = None
    error_status: int | None = None


class FaultInjector:
    """Decides, per request, which injected fault applies. Thread-safe."""

    def __init__(self, seed: int) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._settings = FaultSettings()
        self._storm: Storm | None = None

    @property
    def settings(self) -> FaultSettings:
        return self._settings

    def configure(self, settings: FaultSettings) -> None:
        """Replace the fault settings."""
        self._settings = settings

    def start_storm(
        self, status: int, count: int | None, seconds: float | None, retry_after: float | None
    ) -> None:
        """Answer `status` to the next `count` requests and/or for `seconds` seconds."""
        if status != 429 and not 500 <= status <= 599:
            raise ValueError("a storm answers 429 or a 5xx status")
        if count is None and seconds is None:
            raise ValueError("a storm needs a request count, a duration or both")
        until = time.monotonic() + seconds if seconds is not None else None
        with self._lock:
            self._storm = Storm(status, count, until, retry_after)

    def stop_storm(self) -> None:
        """End the current storm, if any."""
        with self._lock:
            self._storm = None

    def storm_state(self) -> dict[str, object] | None:
        """The current storm as plain JSON, None when calm."""
        with self._lock:
            storm = self._storm
            if storm is None or not storm.active(time.monotonic()):
                return None
            left = None if storm.until is None else max(storm.until - time.monotonic(), 0.0)
            return {"status": storm.status, "remaining": storm.remaining, "seconds_left": left}

    def reseed(self, seed: int) -> None:
        """Restart the random sequence, e.g. after a reset."""
        with self._lock:
            self._rng = random.Random(seed)
            self._storm = None
            self._settings = FaultSettings()

    def plan(self) -> Plan:
        """Draw the faults of one request."""
        settings = self._settings
        with self._lock:
            delay = settings.latency
            if settings.latency_jitter:
                delay += self._rng.uniform(0.0, settings.latency_jitter)
            storm = self._storm
            if storm is not None and storm.active(time.monotonic()):
                if storm.remaining is not None:
                    storm.remaining -= 1
                return Plan(delay=delay, storm_status=storm.status, storm_retry_after=storm.retry_after)
            # Draw both numbers every time so that changing one ratio does not shift the other's sequence.
            drop_draw, error_draw = self._rng.random(), self._rng.random()
        if drop_draw < settings.drop_ratio:
            return Plan(delay=delay, drop=True)
        if error_draw < settings.error_ratio:
            return Plan(delay=delay, error_status=settings.error_status)
        return Plan(delay=delay)


def retry_after_header(seconds: float) -> str:
    """Retry-After is a whole number of seconds; never advertise 0 for a real wait."""
    return str(max(1, math.ceil(seconds - 1e-9)))
