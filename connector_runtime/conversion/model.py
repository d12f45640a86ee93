"""Result types of a conversion: what Sekoia receives and what was left out, and why."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SekoiaValue:
    """One value for a Sekoia IOC collection, with its Sekoia type (e.g. `ipv4-addr.value`)."""

    value: str
    type: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """A comparison (its text as written in the pattern) that produced no value, and a short reason."""

    comparison: str
    reason: str


@dataclass(frozen=True, slots=True)
class Conversion:
    """Everything one pattern or indicator converts to: values in pattern order, and what was skipped."""

    values: tuple[SekoiaValue, ...] = ()
    skipped: tuple[Skipped, ...] = ()
