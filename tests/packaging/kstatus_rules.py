"""kstatus' documented rules for a custom resource, as Flux's health checks apply them.

Order: deletion -> Terminating; status.observedGeneration != metadata.generation -> InProgress;
then the first of Reconciling=True (InProgress) / Stalled=True (Failed) in condition order; then
`Ready` decides (True -> Current, anything else -> InProgress). Plain kstatus stops before the
Ready step and calls such a resource Current; `ready_rule=False` gives that variant, so a test can
show that this operator's statuses mean the same under both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CURRENT, IN_PROGRESS, FAILED, TERMINATING = "Current", "InProgress", "Failed", "Terminating"


def compute(obj: Mapping[str, Any], ready_rule: bool = True) -> str:
    """The kstatus verdict for `obj` (a resource as the API server returns it)."""
    meta = obj.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return TERMINATING
    status = obj.get("status") or {}
    observed = status.get("observedGeneration")
    if observed is not None and observed != meta.get("generation"):
        return IN_PROGRESS
    conditions = status.get("conditions") or []
    for cond in conditions:
        if cond.get("type") == "Reconciling" and cond.get("status") == "True":
            return IN_PROGRESS
        if cond.get("type") == "Stalled" and cond.get("status") == "True":
            return FAILED
    if not ready_rule:
        return CURRENT
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    return CURRENT if ready is not None and ready.get("status") == "True" else IN_PROGRESS
