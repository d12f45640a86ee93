"""Client-side request budget shared by every request (and thread) that uses one Sekoia API key.

Sekoia's firewall counts the tenant, not the connection, so one limiter per key is shared by all
callers. After a 429, `pause_until` holds every thread until the deadline instead of letting each one
find out with its own 429.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from . import protocol
from .errors import Stopped

__all__ = ["RateLimiter", "Stopped"]


class RateLimiter:
    """Token bucket: `rate` requests per second on average, at most `burst` back to back."""

    MIN_MARGIN = 0.01
    MAX_MARGIN = 0.3
    MARGIN_STEP = 0.02  # added on each 429
    MARGIN_DECAY = 0.0005  # removed on each success: a 429 costs ~40 requests of extra caution
    IDLE_TOKENS = 0.25  # a bucket full for this many intervals counts as idle (see idle_jitter)

    def __init__(
        self,
        rate: float = protocol.DEFAULT_RATE,
        burst: int = 2,
        clock: Callable[[], float] = time.monotonic,
        idle_jitter: Callable[[], float] | None = None,
    ) -> None:
        """`idle_jitter` (e.g. `random.random`): after an idle period, the first request waits a
        random part of one interval instead of leaving at once (see `_try_take`)."""
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._refilled_at = clock()
        self._paused_until = 0.0
        self._waiting = 0  # callers inside acquire() that have no token yet
        self._idle_jitter = idle_jitter
        # Requests leave a Python process with some jitter, so running at exactly the budget lets a
        # strict firewall count one request too many now and then. The limiter keeps a safety
        # margin that grows on every 429 and shrinks slowly with every success.
        self._margin = self.MIN_MARGIN

    def acquire(self, stop: threading.Event) -> None:
        """Block until a request may be sent; raise Stopped as soon as `stop` is set."""
        with self._lock:
            self._waiting += 1
        try:
            while True:
                if stop.is_set():
                    raise Stopped("stopped while waiting for the rate limiter")
                wait = self._try_take()
                if wait <= 0:
                    return
                # Event.wait returns early when stop is set, which keeps shutdown prompt.
                if stop.wait(wait):
                    raise Stopped("stopped while waiting for the rate limiter")
        finally:
            with self._lock:
                self._waiting -= 1

    def ready(self) -> bool:
        """Whether a request formed now would leave at once: nobody waits and a token is there.

        The delivery engine forms a request only then, so that at a small rate values gather in its
        pool (and leave together) instead of in requests queued here with one value each."""
        with self._lock:
            now = self._clock()
            if self._waiting or now < self._paused_until:
                return False
            earned = max(0.0, now - self._refilled_at) * self.effective_rate
            return min(float(self.burst), self._tokens + earned) >= 1.0

    def _try_take(self) -> float:
        """Take a token if one is there (0 returned), else return how long to wait for one."""
        with self._lock:
            now = self._clock()
            if now < self._paused_until:
                return self._paused_until - now
            if now > self._refilled_at:
                earned = self._tokens + (now - self._refilled_at) * self.effective_rate
                if self._idle_jitter is not None and earned >= self.burst + self.IDLE_TOKENS:
                    # Idle (the bucket has been full a while: a busy caller asks again as soon as
                    # its token is there): several runtimes sharing one egress were likely
                    # woken by the same OpenCTI event, and leaving together would put them all in
                    # the same second of Sekoia's window. Each starts at a random point instead.
                    self._tokens = self.burst - 1.0 + self._idle_jitter()
                else:
                    self._tokens = min(float(self.burst), earned)
                self._refilled_at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.effective_rate

    def set_rate(self, rate: float) -> None:
        """Adopt a new rate at once (the operator rebalanced the shared budget), without a burst:
        tokens earned so far are counted at the old rate, the next ones at the new one."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        with self._lock:
            now = self._clock()
            if now > self._refilled_at:
                self._tokens = min(
                    float(self.burst), self._tokens + (now - self._refilled_at) * self.effective_rate
                )
                self._refilled_at = now
            self.rate = rate

    @property
    def effective_rate(self) -> float:
        """The configured rate less the current safety margin."""
        return self.rate / (1.0 + self._margin)

    def throttled(self) -> None:
        """Sekoia answered 429: widen the safety margin."""
        with self._lock:
            self._margin = min(self.MAX_MARGIN, self._margin + self.MARGIN_STEP)

    def succeeded(self) -> None:
        """A request went through: narrow the margin a little."""
        with self._lock:
            self._margin = max(self.MIN_MARGIN, self._margin - self.MARGIN_DECAY)

    def pause_until(self, deadline: float) -> None:
        """Hold every caller until the monotonic `deadline` (a later pause wins); resume without a burst."""
        with self._lock:
            if deadline <= self._paused_until:
                return
            self._paused_until = deadline
            # Start the bucket empty at the deadline so that waiting threads resume one token at a time
            # rather than all at once, which would likely trigger the next 429.
            self._tokens = 0.0
            self._refilled_at = max(self._refilled_at, deadline)

    def paused_for(self) -> float:
        """Seconds left in the current pause (0 when not paused)."""
        with self._lock:
            return max(0.0, self._paused_until - self._clock())
