"""The coarsening ladder: which values may share one request, and with which shared fields.

Sekoia's structured add carries ``value`` and ``valid_from`` per value; ``type``,
``valid_until``, ``kill_chain_phases`` and ``description`` are shared by the whole request
(see ``connector_runtime/sekoia/protocol.py``). A real feed gives nearly every indicator its own
``valid_until`` and many their own kill chain, so at full fidelity almost no two values can share
a request. Each level of the ladder lets more values share one, and gives up a little more:

``exact``    every shared field as the indicator has it (validity at the base granularity).
``rounded``  ``valid_until`` rounded UP to the coarse granularity (default: the month).
``widened``  ``valid_until`` is the latest of the request's values, rounded up: a value may stay
             valid longer, never shorter (OpenCTI revokes it when it expires, and the runtime then
             revokes it in Sekoia). Kill chains and description are still each value's own.
``merged``   kill chain phases become the union of the request's (a value without phases never
             receives any); differing descriptions give way to the runtime's own description.

Whatever the level, a request never mixes types, never mixes a value without ``valid_until``
with one that has one (that would shorten "no expiry"), and never shortens a validity. Which
level a request uses is the engine's choice (see ``choose``): the finest level that fills it.

Pure functions only: no clock, no threads.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from enum import IntEnum

from connector_runtime.config import Coarsening, ValidityGranularity
from connector_runtime.delivery.grouping import round_valid_until
from connector_runtime.sekoia.models import SharedFields


class Level(IntEnum):
    """Rungs of the ladder, finest first."""

    EXACT = 0
    ROUNDED = 1
    WIDENED = 2
    MERGED = 3

    @classmethod
    def of(cls, setting: Coarsening) -> Level:
        """The level a ``Coarsening`` setting names."""
        return cls[setting.value.upper()]


def parse_validity(raw: str | None) -> dt.datetime | None:
    """A ``valid_until`` as an aware datetime, or None when absent or not a timestamp."""
    if not raw:
        return None
    try:
        when = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _validity_class(raw: str | None) -> Hashable:
    # Values without validity, or with one we cannot compare, never share a widened validity.
    if raw is None:
        return None
    return "timed" if parse_validity(raw) is not None else ("as-is", raw)


@dataclass(frozen=True)
class Ladder:
    """The ladder as configured: coarse granularity, highest level allowed, fallback description."""

    coarse: ValidityGranularity = ValidityGranularity.MONTH
    top: Level = Level.MERGED
    fallback_description: str | None = None

    def keys(self, fields: SharedFields) -> tuple[Hashable, ...]:
        """The group key of ``fields`` at every level up to ``top`` (values with equal keys at a
        level may share a request at that level)."""
        out: list[Hashable] = [fields]
        if self.top >= Level.ROUNDED:
            rounded = round_valid_until(fields.valid_until, self.coarse)
            out.append((fields.type, rounded, fields.kill_chain_phases, fields.description))
        if self.top >= Level.WIDENED:
            out.append(
                (
                    fields.type,
                    _validity_class(fields.valid_until),
                    fields.kill_chain_phases,
                    fields.description,
                )
            )
        if self.top >= Level.MERGED:
            out.append((fields.type, _validity_class(fields.valid_until), bool(fields.kill_chain_phases)))
        return tuple(out)

    def request_fields(self, members: Sequence[SharedFields], level: Level) -> SharedFields:
        """The shared fields of one request carrying ``members`` (all with one key at ``level``)."""
        first = members[0]
        if level is Level.EXACT:
            return first
        valid_until = self._validity(members, level)
        if level is not Level.MERGED:
            return SharedFields(first.type, valid_until, first.kill_chain_phases, first.description)
        phases = tuple(sorted({p for m in members for p in m.kill_chain_phases}))
        descriptions = {m.description for m in members}
        description = first.description if len(descriptions) == 1 else self.fallback_description
        return SharedFields(first.type, valid_until, phases, description)

    def _validity(self, members: Sequence[SharedFields], level: Level) -> str | None:
        first = members[0].valid_until
        if first is None or parse_validity(first) is None:
            return first  # one class per key: all None, or all this very string
        rounded = [round_valid_until(m.valid_until, self.coarse) or "" for m in members]
        if level is Level.ROUNDED:
            return rounded[0]
        # The latest one; rounding may keep a timestamp as given at the calendar's edge.
        return max(rounded, key=lambda text: parse_validity(text) or dt.datetime.min.replace(tzinfo=dt.UTC))


def coarsened_fields(fine: SharedFields, sent: SharedFields) -> tuple[str, ...]:
    """Names of the fields a value was pushed with that differ from its own."""
    changed = []
    if fine.valid_until != sent.valid_until:
        changed.append("valid_until")
    if fine.kill_chain_phases != sent.kill_chain_phases:
        changed.append("kill_chain_phases")
    if fine.description != sent.description:
        changed.append("description")
    return tuple(changed)


class BudgetMeter:
    """Share of the request budget used recently: how the engine tells idle from busy."""

    def __init__(self, requests_per_second: float, window_seconds: float = 2.0) -> None:
        self.capacity = max(1e-9, requests_per_second * window_seconds)
        self.window = window_seconds
        self._sent: deque[float] = deque()

    def set_rate(self, requests_per_second: float) -> None:
        """The budget changed (the operator rebalanced it): judge idleness against the new one."""
        self.capacity = max(1e-9, requests_per_second * self.window)

    def note(self, now: float) -> None:
        """A request was handed to the client at ``now``."""
        self._sent.append(now)

    def share(self, now: float) -> float:
        """Requests sent in the last window against what the budget allows in it."""
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()
        return len(self._sent) / self.capacity
