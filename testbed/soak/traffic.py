"""The soak's stream: tens of thousands of indicator events of every kind, and what they must leave.

On top of the churn of :mod:`testbed.workload` (creates, value-preserving and value-changing
updates, revocations, deletions) the stream carries exact duplicates of events, objects that are not
indicators (including an observable whose value must *not* reach Sekoia), malformed and unsupported
patterns, unicode values and very long ones. Every special indicator has values no other indicator
uses, so what Sekoia must hold at the end stays a set computation. Deterministic for a seed.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from testbed.workload import Operation, build_workload, make_indicator

_NAMESPACE = uuid.UUID("2b0c6f35-54a4-4a5e-9b3e-5d3f0d7f9c10")
DUPLICATE_RATIO = 0.05  # share of base events sent twice in a row


@dataclass(frozen=True)
class Expectations:
    """The state a correct runtime leaves, derived from the stream alone."""

    active: frozenset[str]  # values Sekoia must hold, not revoked
    skipped: dict[str, frozenset[str]]  # indicator id -> reasons the conversion must report
    rejected: frozenset[str]  # values Sekoia must refuse (and the runtime must log as refused)
    never_active: frozenset[str]  # values carried by non-indicator objects


@dataclass
class Traffic:
    """Operations for the OpenCTI emulator's batch admin call, in stream order, and their outcome."""

    operations: list[dict[str, Any]] = field(default_factory=list)  # {"action", "body"}
    kinds: Counter[str] = field(default_factory=Counter)
    expect: Expectations = field(
        default_factory=lambda: Expectations(frozenset(), {}, frozenset(), frozenset())
    )

    @property
    def indicator_events(self) -> int:
        """Events about indicators (everything but the non-indicator objects)."""
        return len(self.operations) - self.kinds["non-indicator"]


@dataclass(frozen=True)
class _Special:
    """One event of a special kind, with its contribution to the expectations."""

    kind: str
    body: dict[str, Any]
    action: str = "create"
    active: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    rejected: tuple[str, ...] = ()
    never_active: tuple[str, ...] = ()


def _indicator(tag: str, pattern: str, pattern_type: str = "stix") -> dict[str, Any]:
    base = make_indicator(0, random.Random(tag))
    return {
        **base,
        "id": f"indicator--{uuid.uuid5(_NAMESPACE, tag)}",
        "name": f"soak {tag}",
        "pattern": pattern,
        "pattern_type": pattern_type,
        "extensions": {},
    }


def _malformed(n: int) -> _Special:
    patterns = (
        f"[ipv4-addr:value = '10.{n % 250}.0.1' AND",
        f"[domain-name:value = 'unterminated-{n}.example.org]",
        f"domain-name:value = 'no-brackets-{n}.example.org'",
        "[ipv4-addr:value = ]",
        f"[url:value = 'https://x{n}.example.org/'] FOLLOWEDBY",
        f"[[file:hashes.'SHA-256' = '{n:064x}']",
    )
    body = _indicator(f"malformed-{n}", patterns[n % len(patterns)])
    return _Special("malformed", body, skipped=("malformed-pattern",))


def _unsupported(n: int) -> _Special:
    variants: tuple[tuple[str, str, str], ...] = (
        (f"[process:name = 'soak-{n}.exe']", "stix", "unsupported-object-type"),
        (f"[ipv4-addr:value = '100.{n % 250}.{n // 250 % 250}.0/24']", "stix", "cidr-range"),
        (f"[ipv4-addr:value != '100.64.{n % 250}.9']", "stix", "unsupported-operator"),
        (f"[ipv4-addr:value = '999.{n % 250}.1.1']", "stix", "invalid-value"),
        (f"rule soak_{n} {{ condition: true }}", "yara", "not-stix-pattern"),
        (f"title: soak {n}\ndetection: {{}}", "sigma", "not-stix-pattern"),
        ("[domain-name:value = '" + ".".join(["a" * 60] * 5) + f"{n}.com']", "stix", "invalid-value"),
    )
    pattern, pattern_type, reason = variants[n % len(variants)]
    body = _indicator(f"unsupported-{n}", pattern, pattern_type)
    return _Special("unsupported", body, skipped=(reason,))


def _partly_supported(n: int) -> _Special:
    value = f"198.18.{n // 250 % 250}.{n % 250}"
    pattern = f"[ipv4-addr:value = '{value}'] OR [process:name = 'half-{n}.exe']"
    body = _indicator(f"partly-{n}", pattern)
    return _Special("unsupported", body, active=(value,), skipped=("unsupported-object-type",))


def _unicode(n: int) -> _Special:
    choice = n % 3
    if choice == 0:  # a URL with a unicode path: a valid URL, Sekoia stores it
        value = f"https://soak-{n}.example.org/ünïcødé/資料/{n}?q=ü"
        return _Special("unicode", _indicator(f"unicode-{n}", f"[url:value = '{value}']"), active=(value,))
    if choice == 1:
        # An internationalised domain in unicode form: the emulator (like a DNS-strict API) only
        # takes ASCII labels, so it must come back as a refusal the runtime logs and counts.
        value = f"bücher-{n}.exämple.de"
        body = _indicator(f"unicode-{n}", f"[domain-name:value = '{value}']")
        return _Special("unicode", body, rejected=(value,))
    value = f"jürgen.{n}@exämple.de"
    body = _indicator(f"unicode-{n}", f"[email-addr:value = '{value}']")
    return _Special("unicode", body, rejected=(value,))


def _long(n: int, rnd: random.Random) -> _Special:
    length = rnd.randrange(1_000, 4_000)
    prefix = f"https://long-{n}.example.org/"
    value = prefix + "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789/-_") for _ in range(length))
    return _Special("long", _indicator(f"long-{n}", f"[url:value = '{value}']"), active=(value,))


def _non_indicator(n: int) -> _Special:
    stix_id = uuid.uuid5(_NAMESPACE, f"object-{n}")
    choice = n % 4
    if choice == 0:
        # An observable with a value: a runtime that pushed every `value` it saw would leak it.
        value = f"203.0.{n // 250 % 113}.{n % 250}"
        body = {"type": "ipv4-addr", "spec_version": "2.1", "id": f"ipv4-addr--{stix_id}", "value": value}
        return _Special("non-indicator", body, never_active=(value,))
    common = {
        "spec_version": "2.1",
        "created": "2026-01-01T00:00:00.000Z",
        "modified": "2026-01-01T00:00:00.000Z",
    }
    if choice == 1:
        body = {**common, "type": "malware", "id": f"malware--{stix_id}", "name": f"soak-{n}.example.net"}
        return _Special("non-indicator", body, never_active=(f"soak-{n}.example.net",))
    if choice == 2:
        body = {**common, "type": "threat-actor", "id": f"threat-actor--{stix_id}", "name": f"Actor {n}"}
        return _Special("non-indicator", body)
    body = {
        **common,
        "type": "relationship",
        "id": f"relationship--{stix_id}",
        "relationship_type": "indicates",
        "source_ref": f"indicator--{uuid.uuid5(_NAMESPACE, f'unicode-{n}')}",
        "target_ref": f"malware--{stix_id}",
    }
    return _Special("non-indicator", body)


def _specials(count: int, rnd: random.Random) -> list[_Special]:
    makers = (_malformed, _unsupported, _partly_supported, _unicode, _non_indicator)
    result: list[_Special] = []
    for serial in range(count):
        # Each maker gets its own counter, so that its variants (chosen by n modulo) all occur.
        kind, n = serial % (len(makers) + 1), serial // (len(makers) + 1)
        result.append(_long(n, rnd) if kind == len(makers) else makers[kind](n))
    return result


def _as_event(op: Operation) -> dict[str, Any]:
    if op.kind == "revoke":
        return {"action": "revoke", "body": {"id": op.obj["id"]}}
    return {"action": op.kind, "body": op.obj}


def build_traffic(indicator_events: int, seed: int = 2026, special_share: float = 0.08) -> Traffic:
    """At least ``indicator_events`` indicator events (plus the non-indicator objects among the
    specials), in a deterministic order for ``seed``."""
    rnd = random.Random(seed)
    specials = _specials(int(indicator_events * special_share), rnd)
    non_indicators = sum(1 for s in specials if s.kind == "non-indicator")
    needed = indicator_events - (len(specials) - non_indicators)
    base_count = int(needed / (1 + DUPLICATE_RATIO)) + 1
    work = build_workload(base_count, seed=seed, churn=0.3)

    traffic = Traffic()
    stream: list[dict[str, Any]] = []
    for op in work.operations:
        stream.append(_as_event(op))
        traffic.kinds[op.kind] += 1
        if rnd.random() < DUPLICATE_RATIO:
            stream.append(_as_event(op))  # the same event again: delivery must be idempotent
            traffic.kinds["duplicate"] += 1
    while len(stream) < needed:  # the duplicate draw fell short: repeat the last event
        op = work.operations[-1]
        stream.append(_as_event(op))
        traffic.kinds["duplicate"] += 1

    positions = sorted(rnd.randrange(len(stream) + 1) for _ in specials)
    for offset, (position, special) in enumerate(zip(positions, specials, strict=True)):
        stream.insert(position + offset, {"action": special.action, "body": special.body})
        traffic.kinds[special.kind] += 1
    traffic.operations = stream

    skipped = {s.body["id"]: frozenset(s.skipped) for s in specials if s.skipped}
    traffic.expect = Expectations(
        active=frozenset(work.expected_values() | {v for s in specials for v in s.active}),
        skipped=skipped,
        rejected=frozenset(v for s in specials for v in s.rejected),
        never_active=frozenset(v for s in specials for v in s.never_active),
    )
    return traffic
