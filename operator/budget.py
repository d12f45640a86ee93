"""One Sekoia request budget per Sekoia host, divided among the syncs that push to it.

Sekoia's guidance (at most a few requests per second per client) applies to everything leaving the
cluster's egress, not to each runtime: ten runtimes at 5 requests/s would send 50. The operator
holds one budget per host and gives each running sync a share of it, written into its
``status.budget`` (the runtime follows it live, see connector_runtime/budget.py).

Pure functions only: what a resource asks for (``demand_of``), how a budget is divided
(``allocate``) and when a new division is worth writing (``worth_publishing``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .spec import DEFAULT_SEKOIA_URL

#: Shares are published in steps of this size, rounded down so that they never add up to more
#: than the budget.
RESOLUTION = 0.01
#: Fewer pending events than this is live traffic, not a backlog: a sync with one or two events
#: in flight would otherwise take the whole remainder from syncs with none, and shares would swing
#: with every report. (A full request holds 100 values.)
BACKLOG_THRESHOLD = 100
#: What a share never goes below (a rate limiter needs a positive rate), even with more syncs than
#: the budget can serve at this resolution.
MINIMUM_SHARE = 0.01


@dataclass(frozen=True)
class BudgetPolicy:
    """How the operator divides each host's budget (chart: `sekoiaBudget`)."""

    #: Requests per second for every Sekoia host without its own entry.
    requests_per_second: float = 5.0
    #: Hosts with their own budget (host name, lower case -> requests per second).
    per_host: Mapping[str, float] = field(default_factory=dict)
    #: What every running sync keeps however large the others' backlogs, so that live events stay
    #: prompt (less when the floors would take more than `floor_share` of the budget).
    floor: float = 0.5
    floor_share: float = 0.5
    #: Part of the budget left undistributed: independent runtimes do not coordinate their send
    #: times, so a strict per-second window sees their requests bunch up now and then.
    headroom: float = 0.1

    def budget_for(self, host: str) -> float:
        """The budget of one host."""
        return float(self.per_host.get(host.lower(), self.requests_per_second))


@dataclass(frozen=True)
class Demand:
    """What one sync asks of its host's budget, as its resource shows it."""

    namespace: str
    name: str
    host: str
    #: Holds its collection, is not suspended and not being deleted: its runtime sends requests.
    running: bool
    #: Events received but not yet acknowledged by Sekoia (`status.progress.pendingEvents`).
    backlog: int = 0
    #: The sync's own ceiling (`spec.push.requestsPerSecond`).
    ceiling: float = 5.0
    #: The share currently published in its status (None: none).
    published: float | None = None

    @property
    def key(self) -> tuple[str, str]:
        """namespace, name."""
        return (self.namespace, self.name)


def host_of(url: str) -> str:
    """The host part of a Sekoia URL, lower case (the budget's key)."""
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        host = None
    return (host or url.strip()).lower()


def demand_of(obj: Mapping[str, Any]) -> Demand | None:
    """Read a SekoiaIntelSync object (as the watch delivers it); None without a name."""
    meta = obj.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
    if not namespace or not name:
        return None
    spec = _mapping(obj.get("spec"))
    status = _mapping(obj.get("status"))
    sekoia = _mapping(spec.get("sekoia"))
    push = _mapping(spec.get("push"))
    progress = _mapping(status.get("progress"))
    holds = any(
        isinstance(c, Mapping) and c.get("type") == "CollectionClaimed" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )
    running = holds and spec.get("suspend") is not True and not meta.get("deletionTimestamp")
    return Demand(
        namespace=namespace,
        name=name,
        host=host_of(str(sekoia.get("url") or DEFAULT_SEKOIA_URL)),
        running=running,
        backlog=_count(progress.get("pendingEvents")),
        ceiling=_positive(push.get("requestsPerSecond"), 5.0),
        published=_published(status.get("budget")),
    )


def allocate(budget: float, demands: Sequence[Demand], policy: BudgetPolicy) -> dict[tuple[str, str], float]:
    """Divide one host's `budget` among the running `demands` (the others get nothing).

    Every running sync gets a floor; the rest goes to the syncs in proportion to their backlogs (of
    at least BACKLOG_THRESHOLD events; in equal parts when none has one), never above a sync's own
    ceiling. The shares add up to at most
    the budget, less the headroom when several syncs share it.
    """
    running = sorted((d for d in demands if d.running), key=lambda d: d.key)
    if not running or budget <= 0:
        return {}
    # One runtime spaces its own requests; only several uncoordinated ones need the headroom.
    usable = budget if len(running) == 1 else budget * (1.0 - policy.headroom)
    floor = min(policy.floor, usable * policy.floor_share / len(running))
    shares = {d.key: min(floor, d.ceiling) for d in running}
    rest = usable - sum(shares.values())
    ceilings = {d.key: d.ceiling for d in running}
    # By backlog first; what the syncs with a backlog cannot take (their ceilings) goes to all.
    backlogs = {d.key: float(d.backlog if d.backlog >= BACKLOG_THRESHOLD else 0) for d in running}
    rest = _fill(shares, ceilings, backlogs, rest)
    rest = _fill(shares, ceilings, dict.fromkeys(shares, 1.0), rest)
    return {key: _round_down(share) for key, share in shares.items()}


def _fill(
    shares: dict[tuple[str, str], float],
    ceilings: Mapping[tuple[str, str], float],
    weights: Mapping[tuple[str, str], float],
    rest: float,
) -> float:
    """Water-filling: share `rest` by weight; a sync at its ceiling drops out and its part goes to
    the others. Returns what is left (only when every weighted sync is at its ceiling)."""
    open_keys = {k for k, w in weights.items() if w > 0 and shares[k] < ceilings[k]}
    while rest > 1e-9 and open_keys:
        total = sum(weights[k] for k in open_keys)
        given = 0.0
        for key in sorted(open_keys):
            part = min(rest * weights[key] / total, ceilings[key] - shares[key])
            shares[key] += part
            given += part
        rest -= given
        open_keys = {k for k in open_keys if shares[k] < ceilings[k] - 1e-9}
        if given <= 1e-9:
            break
    return rest


def worth_publishing(
    published: Mapping[tuple[str, str], float | None],
    shares: Mapping[tuple[str, str], float],
    tolerance: float = 0.15,
) -> bool:
    """Whether a new division differs enough from the published one to be written.

    Backlogs move at every report of every runtime; rewriting every status on each move would be an
    API storm for nothing. A sync gaining or losing its share, or any share moving by more than
    `tolerance` (relative), is worth it; the whole division is then written, so the published shares
    keep adding up to at most the budget.
    """
    for key in set(published) | set(shares):
        old, new = published.get(key), shares.get(key)
        if (old is None) != (new is None):
            return True
        if old is not None and new is not None and abs(new - old) > tolerance * max(old, new):
            return True
    return False


def _round_down(value: float) -> float:
    steps = math.floor(value / RESOLUTION + 1e-9)
    return max(MINIMUM_SHARE, round(steps * RESOLUTION, 6))


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0
    return max(0, int(value))


def _positive(value: Any, default: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        return default
    return float(value)


def _published(budget: Any) -> float | None:
    if not isinstance(budget, Mapping):
        return None
    value = budget.get("requestsPerSecond")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
