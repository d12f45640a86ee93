"""Which Kubernetes Events a status change deserves. Pure: the handlers post them.

Events are derived from condition transitions, so one occurrence gives one Event however many times
the resource is reconciled. Messages come from conditions, which never contain secret values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from . import conditions as c


@dataclass(frozen=True)
class EventSpec:
    """One Event to post on the resource."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def _key(cond: Mapping[str, Any] | None) -> tuple[Any, Any]:
    return (cond.get("status"), cond.get("reason")) if cond else (None, None)


def transition_events(
    previous: Sequence[Mapping[str, Any]] | None, current: Sequence[Mapping[str, Any]]
) -> list[EventSpec]:
    """Events for the transitions between two sets of conditions."""
    events: list[EventSpec] = []
    old_claim, new_claim = c.find(previous, c.COLLECTION_CLAIMED), c.find(current, c.COLLECTION_CLAIMED)
    if _key(old_claim) != _key(new_claim) and new_claim:
        if new_claim.get("status") == "True":
            events.append(EventSpec("Normal", "CollectionClaimed", str(new_claim.get("message", ""))))
        elif new_claim.get("reason") == c.REASON_COLLECTION_CONFLICT:
            events.append(
                EventSpec("Warning", c.REASON_COLLECTION_CONFLICT, str(new_claim.get("message", "")))
            )

    old_stalled, new_stalled = c.find(previous, c.STALLED), c.find(current, c.STALLED)
    if (
        new_stalled
        and new_stalled.get("status") == "True"
        and _key(old_stalled) != _key(new_stalled)
        and new_stalled.get("reason") != c.REASON_COLLECTION_CONFLICT  # already announced above
    ):
        events.append(
            EventSpec("Warning", str(new_stalled.get("reason")), str(new_stalled.get("message", "")))
        )

    old_tls, new_tls = c.find(previous, c.TLS_VERIFIED), c.find(current, c.TLS_VERIFIED)
    if new_tls and new_tls.get("status") == "False" and _key(old_tls) != _key(new_tls):
        events.append(EventSpec("Warning", str(new_tls.get("reason")), str(new_tls.get("message", ""))))

    old_ready, new_ready = c.find(previous, c.READY), c.find(current, c.READY)
    if new_ready and new_ready.get("status") == "True" and _key(old_ready) != _key(new_ready):
        events.append(EventSpec("Normal", str(new_ready.get("reason")), str(new_ready.get("message", ""))))
    return events
