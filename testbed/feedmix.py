"""A realistic OpenCTI indicator stream: many feeds, each indicator with its own validity and context.

``testbed.workload`` models churn with indicators that share one validity period and one kill
chain set. A real OpenCTI platform aggregates feeds whose indicators differ in exactly the fields
Sekoia.io shares per request (``valid_until``, ``kill_chain_phases``, ``description``), which
is what decides how well values group into requests. This module draws such a stream.

The distributions (see docs/benchmarks/README.md, "The realistic mix"):

- **Feeds.** Four kinds of source with their own observable types, scores and context: an IP
  reputation feed (most of the volume), a phishing URL/domain feed, a malware hash feed and curated
  threat reports. Feeds import in runs (every few hours, a run creating many indicators within
  minutes), as OpenCTI's external-import connectors do.
- **valid_from** is the creation second; creations spread over the last ``spread_days``.
- **valid_until** follows OpenCTI's decay idea: the lifetime depends on the observable type (IPs
  churn fastest, hashes last longest) and grows with the score, with jitter; every indicator
  gets its own timestamp to the second. Ranges (days) by type: IPv4/IPv6 30-90, domain and URL
  90-270, hashes 180-550, e-mail 60-180.
- **Kill chains:** about 40 % of the indicators carry one MITRE ATT&CK tactic (weighted toward
  command-and-control, initial-access and execution); a few carry two, or a Lockheed Martin phase.
- **confidence / x_opencti_score / labels** per feed.
- **Updates:** a share of the events re-send an indicator with new metadata (score, labels,
  confidence, and a recomputed ``valid_until``) but the same value.
- **Expirations:** OpenCTI revokes an indicator when its score decays below the revocation
  threshold or its ``valid_until`` passes: an ``update`` with ``revoked: true``.

Deterministic for a seed; every indicator has values no other indicator uses, so the expected
collection is the set of values of the indicators active at the end.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import uuid
from dataclasses import dataclass
from typing import Any

from testbed.workload import OPENCTI_EXTENSION, Operation, Workload

_NAMESPACE = uuid.UUID("3b0f8f5e-62a4-4d4a-8b8a-1d7c9a5e0f42")
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)

# MITRE ATT&CK enterprise tactics, weighted by how often indicator feeds tag them.
TACTICS: tuple[tuple[str, float], ...] = (
    ("command-and-control", 30),
    ("initial-access", 18),
    ("execution", 12),
    ("persistence", 6),
    ("defense-evasion", 6),
    ("credential-access", 5),
    ("exfiltration", 5),
    ("discovery", 3),
    ("lateral-movement", 3),
    ("collection", 3),
    ("privilege-escalation", 3),
    ("impact", 3),
    ("reconnaissance", 2),
    ("resource-development", 1),
)
LOCKHEED_PHASES = ("delivery", "exploitation", "installation", "command-and-control")
# Lifetime range in days by observable kind (low score -> low end, high score -> high end).
LIFETIME_DAYS: dict[str, tuple[int, int]] = {
    "ipv4": (30, 90),
    "ipv6": (30, 90),
    "domain": (90, 270),
    "url": (90, 270),
    "md5": (180, 550),
    "sha1": (180, 550),
    "sha256": (180, 550),
    "email": (60, 180),
}


@dataclass(frozen=True)
class Feed:
    """One source of indicators and how its indicators look."""

    name: str
    weight: float  # share of the created indicators
    kinds: tuple[tuple[str, float], ...]  # observable kind -> weight
    kill_chain_share: float
    score: tuple[int, int]
    confidence: tuple[int, int]
    labels: tuple[str, ...]
    run_every_hours: float  # the feed's import interval


FEEDS: tuple[Feed, ...] = (
    Feed(
        "ip-reputation",
        0.45,
        (("ipv4", 0.93), ("ipv6", 0.07)),
        0.25,
        (30, 80),
        (40, 75),
        ("scanner", "botnet", "bruteforce", "c2"),
        2.0,
    ),
    Feed(
        "phishing",
        0.25,
        (("url", 0.65), ("domain", 0.3), ("email", 0.05)),
        0.45,
        (40, 90),
        (50, 85),
        ("phishing", "credential-theft"),
        1.0,
    ),
    Feed(
        "malware-hashes",
        0.2,
        (("sha256", 0.6), ("md5", 0.25), ("sha1", 0.15)),
        0.6,
        (50, 100),
        (60, 100),
        ("malware", "ransomware", "stealer", "loader"),
        6.0,
    ),
    Feed(
        "threat-reports",
        0.1,
        (("ipv4", 0.3), ("domain", 0.35), ("url", 0.1), ("sha256", 0.25)),
        0.85,
        (70, 100),
        (80, 100),
        ("apt", "espionage", "campaign"),
        24.0,
    ),
)


@dataclass(frozen=True)
class Mix:
    """The knobs of the realistic mix (defaults give ~40 % kill chains, 8 % updates, 2 % expiries)."""

    spread_days: float = 20.0
    update_share: float = 0.08  # events that re-send an indicator's metadata
    expire_share: float = 0.02  # events that revoke an indicator (decayed or expired)
    two_tactics_share: float = 0.1  # of the indicators with a kill chain
    lockheed_share: float = 0.1  # of the indicators with a kill chain


def _iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def observable(kind: str, serial: int) -> tuple[str, str]:
    """A unique (pattern, value) of ``kind`` for ``serial``."""
    digest = hashlib.sha256(f"{kind}-{serial}".encode()).hexdigest()
    if kind == "ipv4":
        value = f"{11 + serial % 200}.{(serial >> 16) & 255}.{(serial >> 8) & 255}.{serial & 255}"
        return f"[ipv4-addr:value = '{value}']", value
    if kind == "ipv6":
        value = f"2001:db8:{serial >> 16:x}:{serial & 0xFFFF:x}::{int(digest[:4], 16):x}"
        return f"[ipv6-addr:value = '{value}']", value
    if kind == "domain":
        value = f"{digest[:10]}-{serial}.example-{serial % 53}.net"
        return f"[domain-name:value = '{value}']", value
    if kind == "url":
        value = f"https://{digest[:8]}.example-{serial % 29}.org/login/{serial}?k={digest[8:14]}"
        return f"[url:value = '{value}']", value
    if kind == "email":
        value = f"billing-{serial}@{digest[:8]}.example.com"
        return f"[email-addr:value = '{value}']", value
    if kind == "md5":
        return f"[file:hashes.MD5 = '{digest[:32]}']", digest[:32]
    if kind == "sha1":
        return f"[file:hashes.'SHA-1' = '{digest[:40]}']", digest[:40]
    return f"[file:hashes.'SHA-256' = '{digest}']", digest


def lifetime(kind: str, score: int, rnd: random.Random) -> dt.timedelta:
    """Decay-like lifetime: the type's range, scaled by the score, with +-10 % jitter, to the second."""
    low, high = LIFETIME_DAYS[kind]
    days = low + (high - low) * max(0.0, min(1.0, score / 100)) * rnd.uniform(0.9, 1.1)
    return dt.timedelta(seconds=int(max(low, min(high, days)) * 86400 + rnd.randrange(86400)))


def _pick(rnd: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    names = [name for name, _ in weighted]
    return rnd.choices(names, weights=[w for _, w in weighted])[0]


def kill_chain(rnd: random.Random, feed: Feed, mix: Mix) -> list[dict[str, str]]:
    """No phase (most), one MITRE tactic, sometimes two, sometimes a Lockheed Martin phase."""
    if rnd.random() >= feed.kill_chain_share:
        return []
    phases = [{"kill_chain_name": "mitre-attack", "phase_name": _pick(rnd, TACTICS)}]
    if rnd.random() < mix.two_tactics_share:
        second = _pick(rnd, TACTICS)
        if second != phases[0]["phase_name"]:
            phases.append({"kill_chain_name": "mitre-attack", "phase_name": second})
    if rnd.random() < mix.lockheed_share:
        phases.append(
            {"kill_chain_name": "lockheed-martin-cyber-kill-chain", "phase_name": rnd.choice(LOCKHEED_PHASES)}
        )
    return phases


def make_indicator(
    serial: int, created: dt.datetime, feed: Feed, rnd: random.Random, mix: Mix
) -> dict[str, Any]:
    """One STIX 2.1 indicator of ``feed`` as the OpenCTI stream carries it."""
    kind = _pick(rnd, feed.kinds)
    pattern, value = observable(kind, serial)
    score = rnd.randint(*feed.score)
    labels = sorted(rnd.sample(feed.labels, k=rnd.randint(0, min(2, len(feed.labels)))))
    obj: dict[str, Any] = {
        "id": f"indicator--{uuid.uuid5(_NAMESPACE, str(serial))}",
        "spec_version": "2.1",
        "type": "indicator",
        "name": value,
        "pattern": pattern,
        "pattern_type": "stix",
        "valid_from": _iso(created),
        "valid_until": _iso(created + lifetime(kind, score, rnd)),
        "created": _iso(created),
        "modified": _iso(created),
        "revoked": False,
        "confidence": rnd.randint(*feed.confidence),
        "labels": labels,
        "x_opencti_score": score,
        "x_opencti_main_observable_type": kind,
        "x_feed": feed.name,
        "extensions": {
            OPENCTI_EXTENSION: {
                "extension_type": "property-extension",
                "id": str(uuid.uuid5(_NAMESPACE, f"internal-{serial}")),
                "type": "Indicator",
                "main_observable_type": kind,
                "score": score,
            }
        },
    }
    phases = kill_chain(rnd, feed, mix)
    if phases:
        obj["kill_chain_phases"] = phases
    return obj


def _creation_times(count: int, rnd: random.Random, mix: Mix) -> list[tuple[dt.datetime, Feed]]:
    """Creation instants: each feed imports in runs; a run lays its indicators over a few minutes."""
    start = NOW - dt.timedelta(days=mix.spread_days)
    span = mix.spread_days * 86400
    times: list[tuple[dt.datetime, Feed]] = []
    assigned = 0
    for position, feed in enumerate(FEEDS):
        share = count - assigned if position == len(FEEDS) - 1 else round(count * feed.weight)
        assigned += share
        runs = max(1, int(span / (feed.run_every_hours * 3600)))
        for _ in range(share):
            run = rnd.randrange(runs)
            offset = run * feed.run_every_hours * 3600 + rnd.expovariate(1 / 120)
            times.append((start + dt.timedelta(seconds=min(span - 1, offset)), feed))
    times.sort(key=lambda pair: pair[0])
    return times[:count]


def build_realistic(events: int, seed: int = 14, mix: Mix = Mix()) -> Workload:
    """``events`` stream operations of the realistic mix, in stream order (see the module docstring)."""
    rnd = random.Random(seed)
    creates = max(1, round(events * (1 - mix.update_share - mix.expire_share)))
    work = Workload()
    live: list[str] = []
    serial = 0
    pending = _creation_times(creates, rnd, mix)
    changes = events - len(pending)
    change_at = sorted(rnd.sample(range(events), k=max(0, min(events, changes))))
    next_change = 0
    created_iter = iter(pending)
    for index in range(events):
        if next_change < len(change_at) and change_at[next_change] == index and live:
            next_change += 1
            slot = rnd.randrange(len(live))
            ind_id = live[slot]
            current = work.active[ind_id]
            if rnd.random() < mix.update_share / (mix.update_share + mix.expire_share):
                work.operations.append(Operation("update", _rescored(current, rnd)))
                work.active[ind_id] = work.operations[-1].obj
            else:
                work.operations.append(Operation("revoke", current))
                del work.active[ind_id]
                live[slot] = live[-1]
                live.pop()
            continue
        if next_change < len(change_at) and change_at[next_change] == index:
            next_change += 1  # nothing to change yet: create instead
        nxt = next(created_iter, None)
        if nxt is None:
            break
        serial += 1
        obj = make_indicator(serial, nxt[0], nxt[1], rnd, mix)
        work.operations.append(Operation("create", obj))
        work.active[obj["id"]] = obj
        live.append(obj["id"])
    return work


def _rescored(current: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
    """A metadata-only update: new score, confidence and labels; validity recomputed from the score."""
    kind = str(current.get("x_opencti_main_observable_type") or "ipv4")
    score = max(1, min(100, int(current.get("x_opencti_score") or 50) + rnd.randint(-20, 15)))
    created = dt.datetime.fromisoformat(current["valid_from"].replace("Z", "+00:00"))
    modified = dt.datetime.fromisoformat(current["modified"].replace("Z", "+00:00")) + dt.timedelta(hours=1)
    return {
        **current,
        "x_opencti_score": score,
        "confidence": max(1, min(100, int(current.get("confidence") or 50) + rnd.randint(-10, 10))),
        "labels": sorted(
            {*current.get("labels", []), rnd.choice(("reviewed", "false-positive-check", "sighted"))}
        ),
        "valid_until": _iso(created + lifetime(kind, score, rnd)),
        "modified": _iso(modified),
    }


def describe(work: Workload) -> dict[str, Any]:
    """Summary statistics of a workload (for the benchmark page and tests)."""
    creates = [op.obj for op in work.operations if op.kind == "create"]
    by_kind: dict[str, int] = {}
    for obj in creates:
        kind = str(obj.get("x_opencti_main_observable_type", "?"))
        by_kind[kind] = by_kind.get(kind, 0) + 1
    with_chain = sum(1 for obj in creates if obj.get("kill_chain_phases"))
    return {
        "operations": work.counts(),
        "created_by_kind": dict(sorted(by_kind.items())),
        "kill_chain_share": round(with_chain / max(1, len(creates)), 3),
        "distinct_valid_until": len({obj["valid_until"] for obj in creates}),
        "distinct_kill_chains": len(
            {
                tuple(
                    sorted((p["kill_chain_name"], p["phase_name"]) for p in obj.get("kill_chain_phases", []))
                )
                for obj in creates
            }
        ),
        "active_values_at_end": len(work.expected_values()),
    }


def main(argv: list[str] | None = None) -> int:
    """Write a realistic mix as JSON lines: STIX indicators (creates) for ``load_jsonl`` of the
    OpenCTI emulator, or every operation as ``{"kind", "obj"}`` with ``--operations``."""
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--operations", action="store_true", help="every operation, not only creates")
    args = parser.parse_args(argv)
    work = build_realistic(args.events, seed=args.seed)
    for op in work.operations:
        if args.operations:
            sys.stdout.write(json.dumps({"kind": op.kind, "obj": op.obj}) + "\n")
        elif op.kind == "create":
            sys.stdout.write(json.dumps(op.obj) + "\n")
    sys.stderr.write(json.dumps(describe(work)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
