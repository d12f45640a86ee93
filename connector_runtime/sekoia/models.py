"""Values exchanged between the runtime and the Sekoia client."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class NewValue:
    """One observable to add: its value, its Sekoia type (e.g. `ipv4-addr.value`) and when it became valid."""

    value: str
    type: str
    valid_from: str | None = None


@dataclass(frozen=True)
class SharedFields:
    """Fields every value of one add request shares; hashable so that it can key a batch."""

    type: str | None = None
    valid_until: str | None = None
    kill_chain_phases: tuple[tuple[str, str], ...] = ()
    description: str | None = None


@dataclass(frozen=True)
class Rejected:
    """A value Sekoia refused, with the API's message as the reason."""

    value: str
    reason: str


@dataclass
class AddOutcome:
    """Result of `add_values`.

    Every value sent is either in `rejected` or accepted. `ids` maps accepted values to their Sekoia
    indicator id when the answer names them; `accepted_without_id` lists accepted values the answer did
    not name (e.g. an asynchronous 202 answer), so that nothing goes unaccounted for.
    """

    ids: dict[str, str] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    accepted_without_id: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> list[str]:
        """Values Sekoia took, with or without a known id."""
        return [*self.ids, *self.accepted_without_id]
