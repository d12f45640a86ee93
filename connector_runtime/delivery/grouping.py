"""How values are grouped into requests: by the fields Sekoia shares per request.

Sekoia's structured add takes per-value only ``value`` and ``valid_from``; ``type``,
``valid_until``, ``kill_chain_phases`` and ``description`` are shared by the whole request. So
values are grouped by those, and the settings decide how coarse ``valid_until`` and
``description`` are at full fidelity (see ``DescriptionMode`` and ``ValidityGranularity`` in the
config). How much coarser a request may get under a backlog is ``coarsening.Ladder``'s business.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from connector_runtime.config import Coarsening, DescriptionMode, ValidityGranularity
from connector_runtime.sekoia.models import SharedFields
from connector_runtime.stream.events import opencti_url_of


def round_valid_until(raw: Any, granularity: ValidityGranularity) -> str | None:
    """Round an ISO timestamp UP to the granularity (never shortens validity); None stays None."""
    if granularity is ValidityGranularity.NONE or not isinstance(raw, str) or not raw.strip():
        return None
    if granularity is ValidityGranularity.EXACT:
        return raw
    try:
        when = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        return raw  # Sekoia decides; a rejection is counted, not hidden.
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    try:
        when = when.astimezone(dt.UTC)
        # isoformat, not strftime("%Y..."): strftime does not pad years below 1000 to four digits.
        return _ceil(when, granularity).isoformat(timespec="seconds").replace("+00:00", "Z")
    except OverflowError:
        # At the edges of the calendar (`9999-12-31T23:59:59Z` is a common "never expires") there
        # is no later boundary to round up to: keep the timestamp as given.
        return raw


def _ceil(when: dt.datetime, granularity: ValidityGranularity) -> dt.datetime:
    if granularity is ValidityGranularity.HOUR:
        floor = when.replace(minute=0, second=0, microsecond=0)
        return floor if floor == when else floor + dt.timedelta(hours=1)
    day = when.replace(hour=0, minute=0, second=0, microsecond=0)
    if day != when:
        day += dt.timedelta(days=1)
    if granularity is ValidityGranularity.DAY:
        return day
    if granularity is ValidityGranularity.WEEK:  # next Monday 00:00 (or this one)
        return day + dt.timedelta(days=(7 - day.weekday()) % 7)
    # MONTH: the first day of the next month, unless already on a first day at midnight
    if day.day == 1:
        return day
    return (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)


def kill_chain_of(indicator: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The indicator's kill chain phases as a sorted, hashable tuple."""
    phases = indicator.get("kill_chain_phases")
    if not isinstance(phases, list):
        return ()
    pairs = {
        (str(p["kill_chain_name"]), str(p["phase_name"]))
        for p in phases
        if isinstance(p, dict) and p.get("kill_chain_name") and p.get("phase_name")
    }
    return tuple(sorted(pairs))


class SharedFieldsPolicy:
    """Builds the per-request shared fields of an indicator's values according to the settings."""

    def __init__(
        self,
        description_mode: DescriptionMode,
        validity: ValidityGranularity,
        opencti_url: str,
        stream_id: str,
        connector_name: str,
        max_coarsening: Coarsening = Coarsening.MERGED,
        coarse_validity: ValidityGranularity = ValidityGranularity.MONTH,
    ) -> None:
        self.description_mode = description_mode
        self.validity = validity
        self.opencti_url = opencti_url
        self.stream_description = f"From OpenCTI live stream {stream_id} ({connector_name})"[:500]
        self.max_coarsening = max_coarsening
        self.coarse_validity = coarse_validity

    def for_value(self, indicator: Mapping[str, Any], value_type: str) -> SharedFields:
        """The shared fields a value of ``indicator`` is pushed with."""
        if self.description_mode is DescriptionMode.STREAM:
            description: str | None = self.stream_description
        elif self.description_mode is DescriptionMode.INDICATOR_URL:
            description = opencti_url_of(dict(indicator), self.opencti_url)
        else:
            description = None
        return SharedFields(
            type=value_type,
            valid_until=round_valid_until(indicator.get("valid_until"), self.validity),
            kill_chain_phases=kill_chain_of(indicator),
            description=description,
        )
