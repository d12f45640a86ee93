"""How long to wait before retrying a Sekoia request.

- 429: the server's Retry-After (seconds or HTTP-date) when present, else back-off.
- 5xx, timeouts, connection errors: exponential back-off with full jitter, capped.
- 401/403: a slow fixed interval (a human has to fix the key; hammering would only trip the firewall).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def parse_retry_after(
    value: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> float | None:
    """Seconds a Retry-After header asks for, None when absent or unreadable; a past date gives 0."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds else None  # NaN is unreadable
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now()).total_seconds(), 0.0)


class RetryPolicy:
    """Back-off policy; tests pass small caps to stay fast."""

    def __init__(
        self,
        base: float = 1.0,
        cap: float = 60.0,
        auth_interval: float = 60.0,
        max_retry_after: float = 600.0,
        floor: float = 0.05,
        rng: random.Random | None = None,
    ) -> None:
        """`base`·2^attempt grows up to `cap`; a delay is drawn uniformly in [floor, that]. Retry-After is
        honoured up to `max_retry_after` (Sekoia's firewall blocks last at most 10 minutes)."""
        if base <= 0 or cap <= 0 or auth_interval <= 0 or floor < 0:
            raise ValueError("retry delays must be positive")
        # A configured cap below the default base simply means "never wait longer than the cap".
        self.base = min(base, cap)
        self.cap = cap
        self.auth_interval = auth_interval
        self.max_retry_after = max_retry_after
        self.floor = floor
        self._rng = rng or random.Random()

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (0 first): full jitter under an exponential cap."""
        ceiling = min(self.cap, self.base * (2 ** min(attempt, 32)))
        return max(self.floor, self._rng.uniform(0.0, ceiling))

    def rate_limited(self, retry_after: str | None, attempt: int) -> float:
        """Delay after a 429: the server's Retry-After when readable, else back-off."""
        asked = parse_retry_after(retry_after)
        if asked is None:
            return self.backoff(attempt)
        return min(asked, self.max_retry_after)

    def auth_failed(self) -> float:
        """Delay after a 401/403."""
        return self.auth_interval
