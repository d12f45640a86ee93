"""The sharing guardrail's decision: may an indicator with these markings leave OpenCTI?

Rules, in order, for each marking of the indicator (one refusal refuses the indicator):
1. listed in ``refused`` (by name or STIX id) -> refused;
2. listed in ``allowed`` -> allowed, whatever its level;
3. a TLP marking above ``max_tlp`` or a PAP marking above ``max_pap`` -> refused;
4. a marking that could not be resolved (only its id is known) -> refused: what it stands for
   cannot be checked, and sharing is the step that cannot be undone;
5. anything else (lower levels, custom statements) -> allowed.
An indicator without markings follows ``unmarked`` (default: push).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from connector_runtime.guardrail.catalog import PAP_LEVELS, TLP_LEVELS, Marking, normalize_name

REASON: str = "marking-not-allowed"
DEFAULT_MAX_TLP = "TLP:AMBER+STRICT"


class Unmarked(StrEnum):
    """What happens to an indicator that carries no marking at all."""

    PUSH = "push"
    SKIP = "skip"


@dataclass(frozen=True)
class MarkingPolicy:
    """What may leave OpenCTI (from ``spec.push.markings`` / the ``SEKOIA_INTEL_MARKINGS_*`` variables)."""

    max_tlp: str = DEFAULT_MAX_TLP
    max_pap: str | None = None
    allowed: frozenset[str] = field(default_factory=frozenset)
    refused: frozenset[str] = field(default_factory=frozenset)
    unmarked: Unmarked = Unmarked.PUSH

    @classmethod
    def build(
        cls,
        max_tlp: str = DEFAULT_MAX_TLP,
        max_pap: str | None = None,
        allowed: Iterable[str] = (),
        refused: Iterable[str] = (),
        unmarked: Unmarked | str = Unmarked.PUSH,
    ) -> MarkingPolicy:
        """A policy with names normalised; raises ValueError naming a level that does not exist."""
        tlp = normalize_name(max_tlp)
        if tlp not in TLP_LEVELS:
            raise ValueError(f"must be one of {', '.join(TLP_LEVELS)}")
        pap = normalize_name(max_pap) if max_pap else None
        if pap is not None and pap not in PAP_LEVELS:
            raise ValueError(f"must be one of {', '.join(PAP_LEVELS)}")
        return cls(
            tlp,
            pap,
            frozenset(_key(item) for item in allowed if item.strip()),
            frozenset(_key(item) for item in refused if item.strip()),
            Unmarked(unmarked),
        )

    def describe(self) -> str:
        """One line for logs and the convert command."""
        parts = [f"max {self.max_tlp}"]
        if self.max_pap:
            parts.append(f"max {self.max_pap}")
        if self.allowed:
            parts.append(f"allowed {sorted(self.allowed)}")
        if self.refused:
            parts.append(f"refused {sorted(self.refused)}")
        parts.append(f"unmarked: {self.unmarked.value}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Decision:
    """The guardrail's verdict on one indicator. ``marking`` names the refusing marking (or
    ``unmarked``); ``markings`` are the names of all the indicator's markings."""

    allowed: bool
    markings: tuple[str, ...] = ()
    marking: str | None = None
    why: str = ""

    def as_dict(self) -> dict[str, object]:
        """JSON view (the convert command, logs)."""
        view: dict[str, object] = {"allowed": self.allowed, "markings": list(self.markings)}
        if not self.allowed:
            view.update(reason=REASON, marking=self.marking, why=self.why)
        return view


def parse_list(value: object) -> object:
    """A list of marking names/ids from a variable: a JSON array (what the operator writes, since
    names may hold commas) or comma-separated text. Anything else is returned unchanged."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            raise ValueError("must be a JSON array of strings or comma-separated names")
        return [v.strip() for v in items if v.strip()]
    return [part.strip() for part in text.split(",") if part.strip()]


def _key(name_or_id: str) -> str:
    text = name_or_id.strip()
    return text.lower() if text.lower().startswith("marking-definition--") else normalize_name(text)


def _listed(marking: Marking, keys: frozenset[str]) -> bool:
    return marking.stix_id.lower() in keys or marking.name in keys


def decide(policy: MarkingPolicy, markings: Iterable[Marking]) -> Decision:
    """Apply the rules of the module docstring (pure)."""
    marks = list(markings)
    names = tuple(m.name for m in marks)
    if not marks:
        if policy.unmarked is Unmarked.SKIP:
            return Decision(False, (), "unmarked", "the indicator has no marking and unmarked is skip")
        return Decision(True)
    max_tlp = TLP_LEVELS.index(policy.max_tlp)
    max_pap = PAP_LEVELS.index(policy.max_pap) if policy.max_pap else None
    for marking in marks:
        if _listed(marking, policy.refused):
            return Decision(False, names, marking.name, f"{marking.name} is in the refused list")
    for marking in marks:
        if _listed(marking, policy.allowed):
            continue
        tlp, pap = marking.tlp_rank, marking.pap_rank
        if tlp is not None and tlp > max_tlp:
            return Decision(False, names, marking.name, f"{marking.name} is above {policy.max_tlp}")
        if pap is not None and max_pap is not None and pap > max_pap:
            return Decision(False, names, marking.name, f"{marking.name} is above {policy.max_pap}")
        if not marking.resolved:
            return Decision(False, names, marking.name, f"marking {marking.stix_id} could not be resolved")
    return Decision(True, names)
