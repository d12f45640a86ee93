"""The runtime's share of the Sekoia request budget that the operator divides among every sync of a
Sekoia host, followed live.

The operator writes ``status.budget.requestsPerSecond`` into the resource; the runtime learns it from
the answers to its own ``status.progress`` patches (no extra request, no extra permission) and its
rate limiter adopts it at once, so a rebalance never restarts a Pod. The sync's own
``spec.push.requestsPerSecond`` (SEKOIA_INTEL_REQUESTS_PER_SECOND) stays a ceiling.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

from connector_runtime.metrics import BUDGET_SHARE

log = logging.getLogger(__name__)


def share_from_status(status: Mapping[str, Any] | None) -> float | None:
    """``status.budget.requestsPerSecond`` when it is a positive finite number, else None (absent:
    the operator shares no budget, or not yet; anything else is ignored rather than trusted)."""
    budget = status.get("budget") if isinstance(status, Mapping) else None
    if not isinstance(budget, Mapping):
        return None
    value = budget.get("requestsPerSecond")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    rate = float(value)
    if not math.isfinite(rate) or rate <= 0:
        return None
    return rate


class BudgetFollower:
    """Applies the operator's share to every rate consumer (the client's limiter, the engine's meter).

    Before any share is known the configured ceiling applies. A share that disappears leaves the
    last one in force: the operator removes it when the sync is suspended or deleted, i.e. while
    this runtime flushes what it holds before stopping, which must not happen at the ceiling.
    """

    def __init__(self, ceiling: float, apply: list[Callable[[float], None]]) -> None:
        self.ceiling = ceiling
        self._apply = apply
        self._lock = threading.Lock()
        self.current = ceiling
        BUDGET_SHARE.set(ceiling)

    def observe(self, status: Mapping[str, Any] | None) -> float:
        """Take the share from a freshly read ``status``; return the rate now in force."""
        share = share_from_status(status)
        if share is None:
            return self.current
        rate = min(self.ceiling, share)
        with self._lock:
            if rate == self.current:
                return rate
            before, self.current = self.current, rate
            for apply in self._apply:
                apply(rate)
        BUDGET_SHARE.set(rate)
        log.info(
            "request budget changed",
            extra={"requests_per_second": rate, "before": before, "operator_share": share},
        )
        return rate
