"""Values waiting for a push request, indexed by their group at every level of the ladder.

The engine adds values as events arrive and, whenever a request may go, asks ``choose`` which
group to send and at which level; ``take`` then removes up to one request's worth of it. Requests
are formed as late as possible, so that a backlog has the most values to fill them from.
Not thread-safe: only the engine's sequencer thread touches it.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Hashable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from connector_runtime.delivery.coarsening import Ladder, Level
from connector_runtime.sekoia.models import NewValue, SharedFields

_NOTHING: frozenset[Any] = frozenset()


@dataclass(eq=False, slots=True)
class Pending:
    """One value waiting to be pushed, with the events it completes and the requests it must follow."""

    item: NewValue
    fields: SharedFields
    since: float
    keys: tuple[Hashable, ...]
    owners: list[Any] = field(default_factory=list)
    # Most values follow no earlier request: one shared empty set instead of one each.
    after: frozenset[Any] = _NOTHING


class Pool:
    """Pending values by value, in arrival order, and by group at each level."""

    def __init__(self, ladder: Ladder, batch_size: int) -> None:
        self.ladder = ladder
        self.batch_size = batch_size
        self.levels = [Level(i) for i in range(ladder.top + 1)]
        self._by_value: OrderedDict[str, Pending] = OrderedDict()
        self._groups: list[dict[Hashable, dict[str, Pending]]] = [{} for _ in self.levels]
        self._full: list[set[Hashable]] = [set() for _ in self.levels]
        # One object per distinct key: thousands of values share a handful of coarse keys.
        self._canonical: dict[Hashable, Hashable] = {}

    def __len__(self) -> int:
        return len(self._by_value)

    def get(self, value: str) -> Pending | None:
        """The pending entry of ``value``, if any."""
        return self._by_value.get(value)

    def add(
        self, item: NewValue, fields: SharedFields, owner: Any, after: AbstractSet[Any], now: float
    ) -> Pending:
        """Add a value; a value already pending takes the newer item and fields (the later push
        supersedes the earlier one) and keeps its place in the arrival order."""
        entry = self._by_value.get(item.value)
        if entry is None:
            entry = Pending(item, fields, now, self._keys(fields))
            self._by_value[item.value] = entry
            self._index(entry)
        else:
            entry.item = item
            if entry.fields != fields:
                self._unindex(entry)
                entry.fields, entry.keys = fields, self._keys(fields)
                self._index(entry)
        entry.owners.append(owner)
        if after:
            entry.after = entry.after.union(after)
        return entry

    def _keys(self, fields: SharedFields) -> tuple[Hashable, ...]:
        keys = self.ladder.keys(fields)
        canonical = self._canonical
        if len(canonical) > 4 * self.batch_size + 4 * len(self._by_value):
            canonical.clear()  # forget keys no value uses any more
        return (keys[0], *(canonical.setdefault(key, key) for key in keys[1:]))

    def remove(self, value: str) -> Pending | None:
        """Withdraw a value (a revocation supersedes its pending push)."""
        entry = self._by_value.pop(value, None)
        if entry is not None:
            self._unindex(entry)
        return entry

    def oldest(self) -> Pending | None:
        """The value waiting longest."""
        return next(iter(self._by_value.values()), None)

    def group_size(self, level: Level, key: Hashable) -> int:
        """How many values share ``key`` at ``level``."""
        return len(self._groups[level].get(key, ()))

    def full_group(self) -> tuple[Level, Hashable] | None:
        """A group that fills a request at the finest level where one does, if any."""
        for level in self.levels:
            full = self._full[level]
            if full:
                return level, next(iter(full))
        return None

    def largest(self, level: Level) -> Hashable | None:
        """The key of the largest group at ``level``."""
        groups = self._groups[level]
        return max(groups, key=lambda key: len(groups[key])) if groups else None

    def take(self, level: Level, key: Hashable, limit: int) -> list[Pending]:
        """Remove and return up to ``limit`` values of a group, oldest first."""
        group = self._groups[level].get(key, {})
        taken = [group[value] for value in itertools.islice(group, limit)]
        for entry in taken:
            del self._by_value[entry.item.value]
            self._unindex(entry)
        return taken

    def _index(self, entry: Pending) -> None:
        value = entry.item.value
        for level in self.levels:
            key = entry.keys[level]
            group = self._groups[level].setdefault(key, {})
            group[value] = entry
            if len(group) >= self.batch_size:
                self._full[level].add(key)

    def _unindex(self, entry: Pending) -> None:
        value = entry.item.value
        for level in self.levels:
            key = entry.keys[level]
            group = self._groups[level][key]
            del group[value]
            if len(group) < self.batch_size:
                self._full[level].discard(key)
            if not group:
                del self._groups[level][key]


def choose(
    pool: Pool, now: float, linger: float, max_linger: float, budget_share: float, idle_share: float
) -> tuple[Level, Hashable] | None:
    """Which group to send now (a request slot is free), at which level; None to keep waiting.

    1. A value older than ``max_linger`` goes now, with its group at the finest level that fills
       a request, else at the top level (delay stays bounded whatever the backlog).
    2. Otherwise a group that fills a request, at the finest level where one does.
    3. Otherwise, once the oldest value has waited ``linger``: while the budget is idle (less
       than ``idle_share`` of it used recently) its exact group goes (latency, full fidelity);
       when the budget is scarce its group at the top level (more values per request).
    """
    oldest = pool.oldest()
    if oldest is None:
        return None
    top = pool.levels[-1]
    age = now - oldest.since
    if age >= max_linger:
        for level in pool.levels:
            if pool.group_size(level, oldest.keys[level]) >= pool.batch_size:
                return level, oldest.keys[level]
        return top, oldest.keys[top]
    full = pool.full_group()
    if full is not None:
        return full
    if age < linger:
        return None
    if budget_share < idle_share:
        return Level.EXACT, oldest.keys[Level.EXACT]
    return top, oldest.keys[top]
