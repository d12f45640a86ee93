"""Synthetic indicator traffic with a model of what Sekoia must hold at the end.

Each indicator gets values no other indicator uses, so the expected collection is simply the
union of the values of the indicators that are active at the end. Deterministic for a seed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

OPENCTI_EXTENSION = "extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba"
_NAMESPACE = uuid.UUID("8d9ab1f4-0c69-4b7e-9a32-3e1f8e0c2a11")
_KILL_CHAINS = (
    [{"kill_chain_name": "lockheed-martin-cyber-kill-chain", "phase_name": "command-and-control"}],
    [{"kill_chain_name": "mitre-attack", "phase_name": "command-and-control"}],
    [
        {"kill_chain_name": "lockheed-martin-cyber-kill-chain", "phase_name": "delivery"},
        {"kill_chain_name": "mitre-attack", "phase_name": "initial-access"},
    ],
)
_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def value_for(serial: int) -> tuple[str, str]:
    """A unique (pattern, value) for ``serial``, cycling through the common observable types."""
    kind = serial % 5
    if kind in (0, 1):
        a, b, c = (serial >> 16) & 255, (serial >> 8) & 255, serial & 255
        value = f"{11 + kind * 40 + (serial >> 24)}.{a}.{b}.{c}"
        return f"[ipv4-addr:value = '{value}']", value
    if kind == 2:
        value = f"d{serial}.example-{serial % 37}.com"
        return f"[domain-name:value = '{value}']", value
    if kind == 3:
        value = hashlib.sha256(str(serial).encode()).hexdigest()
        return f"[file:hashes.'SHA-256' = '{value}']", value
    value = f"https://u{serial}.example.net/p/{serial}"
    return f"[url:value = '{value}']", value


@dataclass(frozen=True)
class Profile:
    """How varied the fields Sekoia shares per request are (they decide how values group)."""

    spread_days: int = 365  # creation dates spread over this many days
    validity_days: tuple[int, ...] = (30, 90, 180, 365)
    kill_chains: int = 3  # how many distinct kill-chain sets occur


MIXED = Profile()
# One feed replayed: the last 90 days of indicators, 90-day lifetimes, one kill-chain set.
FEED = Profile(spread_days=90, validity_days=(90,), kill_chains=1)


def make_indicator(serial: int, rnd: random.Random, profile: Profile = MIXED) -> dict[str, Any]:
    """A STIX 2.1 indicator as the OpenCTI stream carries it."""
    pattern, value = value_for(serial)
    created = _EPOCH + dt.timedelta(seconds=rnd.randrange(0, profile.spread_days * 86400))
    return {
        "id": f"indicator--{uuid.uuid5(_NAMESPACE, str(serial))}",
        "spec_version": "2.1",
        "type": "indicator",
        "name": value,
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": _iso(created),
        "valid_until": _iso(created + dt.timedelta(days=rnd.choice(profile.validity_days))),
        "created": _iso(created),
        "modified": _iso(created),
        "revoked": False,
        "confidence": 80,
        "kill_chain_phases": rnd.choice(_KILL_CHAINS[: profile.kill_chains]),
        "extensions": {
            OPENCTI_EXTENSION: {
                "extension_type": "property-extension",
                "id": str(uuid.uuid5(_NAMESPACE, f"internal-{serial}")),
                "type": "Indicator",
                "main_observable_type": "Unknown",
            }
        },
    }


@dataclass
class Operation:
    """One stream event to emit: ``kind`` is create, update, revoke or delete."""

    kind: str
    obj: dict[str, Any]


@dataclass
class Workload:
    """The operations of a scenario and the active values they must leave behind."""

    operations: list[Operation] = field(default_factory=list)
    active: dict[str, dict[str, Any]] = field(default_factory=dict)  # indicator id -> current object

    def expected_values(self) -> set[str]:
        """Values Sekoia must hold (active) at the end."""
        return {obj["name"] for obj in self.active.values()}

    def counts(self) -> dict[str, int]:
        """Operations by kind."""
        result: dict[str, int] = {}
        for op in self.operations:
            result[op.kind] = result.get(op.kind, 0) + 1
        return result


def build_workload(events: int, seed: int = 7, churn: float = 0.3, profile: Profile = MIXED) -> Workload:
    """``events`` operations: creates, and with probability ``churn`` a change to an existing
    indicator (value-preserving update, value-changing update, revocation or deletion)."""
    rnd = random.Random(seed)
    work = Workload()
    live: list[str] = []
    serial = 0
    for _ in range(events):
        if live and rnd.random() < churn:
            index = rnd.randrange(len(live))
            ind_id = live[index]
            current = work.active[ind_id]
            choice = rnd.random()
            if choice < 0.4:
                updated = {**current, "confidence": rnd.randrange(1, 100), "modified": current["modified"]}
                work.operations.append(Operation("update", updated))
                work.active[ind_id] = updated
            elif choice < 0.6:
                serial += 1
                pattern, value = value_for(1_000_000 + serial)
                updated = {**current, "pattern": pattern, "name": value}
                work.operations.append(Operation("update", updated))
                work.active[ind_id] = updated
            else:
                kind = "revoke" if choice < 0.8 else "delete"
                work.operations.append(Operation(kind, current))
                del work.active[ind_id]
                live[index] = live[-1]
                live.pop()
        else:
            serial += 1
            obj = make_indicator(serial, rnd, profile)
            work.operations.append(Operation("create", obj))
            work.active[obj["id"]] = obj
            live.append(obj["id"])
    return work


def emit(emulator: Any, operations: list[Operation]) -> Iterator[str]:
    """Send operations to an OpenCTI emulator (in-process API); yields event ids."""
    for op in operations:
        if op.kind == "create":
            yield emulator.create(op.obj)
        elif op.kind == "update":
            yield emulator.update(op.obj)
        elif op.kind == "revoke":
            yield emulator.revoke(op.obj["id"])
        else:
            yield emulator.delete(op.obj)
