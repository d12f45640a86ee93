"""Keeps each Sekoia host's budget divided among its syncs as they come, go, pause or pile up work.

Fed by the operator's watch of SekoiaIntelSync resources (every event, the runtimes' progress
reports included), it knows what each sync asks for without listing anything. A change marks the
sync's host; one rebalance per host runs `delay` seconds after the first mark, however many events
arrived meanwhile, and writes only when the division moved enough (see `budget.worth_publishing`).
Shares that shrink are written before shares that grow, so the published ones never add up to more
than the budget.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

from . import metrics
from .budget import BudgetPolicy, Demand, allocate, demand_of, worth_publishing

log = logging.getLogger("sekoia_intel_operator.budget")

#: namespace, name, the new `status.budget` (None removes it).
Writer = Callable[[str, str, "dict[str, Any] | None"], None]


class Rebalancer:
    """Thread-safe; the rebalances run on a timer thread, one at a time."""

    def __init__(self, policy: BudgetPolicy, write: Writer, delay: float = 2.0, retry: float = 5.0) -> None:
        self.policy = policy
        self._write = write
        self.delay = delay
        self.retry = retry
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._demands: dict[tuple[str, str], Demand] = {}
        self._dirty: set[str] = set()
        self._timer: threading.Timer | None = None
        self._stopped = False

    def observe(self, event_type: str | None, obj: dict[str, Any]) -> None:
        """One watch event of a resource."""
        demand = demand_of(obj)
        if demand is None:
            return
        with self._lock:
            old = self._demands.get(demand.key)
            if event_type == "DELETED":
                self._demands.pop(demand.key, None)
                changed = {demand.host}
            else:
                self._demands[demand.key] = demand
                changed = set() if old == demand else {demand.host}
            if old is not None and old.host != demand.host:
                changed.add(old.host)
            if changed:
                self._dirty |= changed
                self._arm(self.delay)

    def shares(self, host: str) -> dict[tuple[str, str], float]:
        """The division of `host`'s budget the known demands call for now."""
        with self._lock:
            demands = [d for d in self._demands.values() if d.host == host]
        return allocate(self.policy.budget_for(host), demands, self.policy)

    def stop(self) -> None:
        """No more rebalances (operator shutdown)."""
        with self._lock:
            self._stopped = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _arm(self, delay: float) -> None:
        # Called with the lock held.
        if self._timer is None and not self._stopped:
            self._timer = threading.Timer(delay, self._run)
            self._timer.daemon = True
            self._timer.start()

    def _run(self) -> None:
        with self._lock:
            hosts, self._dirty = self._dirty, set()
            self._timer = None
        with self._run_lock:
            for host in sorted(hosts):
                try:
                    self.rebalance(host)
                except Exception as exc:  # the next event, or this retry, tries again
                    log.warning("rebalancing the Sekoia budget of %s failed: %s", host, type(exc).__name__)
                    with self._lock:
                        self._dirty.add(host)
                        self._arm(self.retry)

    def rebalance(self, host: str) -> int:
        """Divide `host`'s budget again and write the shares that changed; return how many."""
        budget = self.policy.budget_for(host)
        with self._lock:
            demands = [d for d in self._demands.values() if d.host == host]
        shares = allocate(budget, demands, self.policy)
        metrics.BUDGET_LIMIT.labels(host).set(budget)
        metrics.BUDGET_SYNCS.labels(host).set(len(shares))
        published = {d.key: d.published for d in demands}
        if not worth_publishing(published, shares):
            metrics.BUDGET_ALLOCATED.labels(host).set(sum(v for v in published.values() if v))
            return 0
        since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # Decreases first: a share that grows only after the others shrank keeps the sum in bounds.
        order = sorted(demands, key=lambda d: (shares.get(d.key, 0.0) - (d.published or 0.0), d.key))
        written = 0
        for demand in order:
            share = shares.get(demand.key)
            if share == demand.published:
                continue
            body = (
                None
                if share is None
                else {
                    "requestsPerSecond": share,
                    "host": host,
                    "hostRequestsPerSecond": budget,
                    "sharedBy": len(shares),
                    "since": since,
                }
            )
            self._write(demand.namespace, demand.name, body)
            written += 1
            metrics.BUDGET_PUBLICATIONS.labels(host).inc()
            with self._lock:
                # The watch will deliver the same; recording it now keeps a rebalance that runs
                # before that event from writing it again.
                current = self._demands.get(demand.key)
                if current is not None:
                    self._demands[demand.key] = dataclasses.replace(current, published=share)
        metrics.BUDGET_ALLOCATED.labels(host).set(sum(shares.values()))
        log.info(
            "Sekoia budget of %s rebalanced: %s",
            host,
            ", ".join(f"{ns}/{name}={share}" for (ns, name), share in sorted(shares.items())) or "no sync",
        )
        return written
