"""The sharing guardrail: indicators whose markings (TLP, PAP, custom statements) may not leave
OpenCTI never reach Sekoia, and leave it when their marking is raised.

What happens to a refused indicator depends on the event:
- ``create``: skipped (nothing of it can be in Sekoia yet), unless ``revoke_refused_creates`` is
  set (a resync replays current versions as ``create`` events, and a tightened policy must then
  take back what an earlier, looser one pushed);
- ``update`` (its marking was raised, or the policy changed since it was pushed): revoked.
Either way each of its values is counted in ``sis_values_skipped_total{reason="marking-not-allowed"}``
(``valuesSkipped`` in the status) and one log line names the indicator and the refusing marking.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from connector_runtime import metrics
from connector_runtime.conversion import convert_indicator
from connector_runtime.guardrail.catalog import PAP_LEVELS, TLP_LEVELS, Marking
from connector_runtime.guardrail.policy import REASON, Decision, MarkingPolicy, Unmarked, decide
from connector_runtime.guardrail.resolver import Lookup, MarkingResolver, marking_refs
from connector_runtime.stream.events import Action, StreamEvent

__all__ = ["REASON", "Decision", "Guardrail", "Marking", "MarkingPolicy", "MarkingResolver", "Unmarked"]

log = logging.getLogger(__name__)


class Guardrail:
    """Screens parsed stream events against a :class:`MarkingPolicy`."""

    def __init__(self, policy: MarkingPolicy, resolver: MarkingResolver | None = None) -> None:
        self.policy = policy
        self.resolver = resolver or MarkingResolver()
        self.revoke_refused_creates = False

    @classmethod
    def with_lookup(cls, policy: MarkingPolicy, lookup: Lookup | None) -> Guardrail:
        """A guardrail that asks the platform (``lookup``) for marking ids it cannot name."""
        return cls(policy, MarkingResolver(lookup))

    def check(self, indicator: dict[str, Any]) -> Decision:
        """The decision for one STIX indicator."""
        return decide(self.policy, self.resolver.resolve(marking_refs(indicator)))

    def screen(self, event: StreamEvent) -> StreamEvent:
        """The event as the delivery engine must see it: unchanged when allowed; a refused push
        becomes IGNORE (``marking-not-allowed``) or REVOKE, see the module docstring."""
        if event.definition is not None:
            self.resolver.learn(event.definition)
            return event
        if event.action is not Action.PUSH or event.indicator is None:
            return event
        decision = self.check(event.indicator)
        if decision.allowed:
            return event
        revoke = event.name != "create" or self.revoke_refused_creates
        values = convert_indicator(event.indicator).values
        metrics.VALUES_SKIPPED.labels(REASON).inc(len(values))
        metrics.INDICATORS_REFUSED.labels(_label(decision.marking)).inc()
        log.info(
            "indicator refused by the sharing guardrail",
            extra={
                "indicator": event.indicator_id,
                "marking": decision.marking,
                "reason": REASON,
                "why": decision.why,
                "values": len(values),
                "revoked": revoke,
            },
        )
        if revoke:
            return dataclasses.replace(event, action=Action.REVOKE)
        return dataclasses.replace(event, action=Action.IGNORE, ignore_reason=REASON)


def _label(marking: str | None) -> str:
    if marking in TLP_LEVELS or marking in PAP_LEVELS or marking == "unmarked":
        return str(marking)
    return "other"
