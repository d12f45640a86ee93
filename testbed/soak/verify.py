"""The soak's verdict: the collection, the runtime's own account of what it refused, and the
resource's status, compared with what the stream must leave. Pure functions over plain data."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testbed.soak.traffic import Expectations

LOGGED_VALUE_CHARS = 300  # the runtime logs refused values cut to this length


@dataclass
class LogFacts:
    """What the runtime said, over all its processes, about values it did not deliver."""

    skipped: dict[str, set[str]] = field(default_factory=dict)  # indicator id -> reasons
    refused: dict[str, str] = field(default_factory=dict)  # value (cut) -> Sekoia's reason
    lines: int = 0
    unparsable: int = 0


def read_runtime_log(lines: Iterable[str]) -> LogFacts:
    """Collect "comparisons skipped" and "value rejected by Sekoia" records from JSON log lines."""
    facts = LogFacts()
    for line in lines:
        facts.lines += 1
        if not line.startswith("{"):
            facts.unparsable += 1  # e.g. output of a dying interpreter; counted, not trusted
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            facts.unparsable += 1
            continue
        message = entry.get("message")
        if message == "comparisons skipped":
            reasons = facts.skipped.setdefault(str(entry.get("indicator")), set())
            reasons.update(str(s.get("reason")) for s in entry.get("skipped") or [])
        elif message == "value rejected by Sekoia":
            facts.refused[str(entry.get("value"))] = str(entry.get("reason") or "")
    return facts


def read_runtime_log_file(path: Path) -> LogFacts:
    """:func:`read_runtime_log` over a log file (missing file: no facts)."""
    if not path.exists():
        return LogFacts()
    with path.open(encoding="utf-8", errors="replace") as handle:
        return read_runtime_log(line.rstrip("\n") for line in handle)


@dataclass
class Verdict:
    """Every way the end state can differ from the model; ``ok`` when none does."""

    expected_active: int
    present_active: int
    missing: list[str]
    wrongly_active: list[str]
    skipped_expected: int
    skipped_unaccounted: list[str]  # expected skips the runtime did not report (or with another reason)
    unexpected_skips: list[str]
    rejected_expected: int
    rejected_unaccounted: list[str]
    unexpected_rejections: list[str]
    refused_without_reason: list[str]
    status_problems: list[str]

    @property
    def ok(self) -> bool:
        """True when nothing is lost, nothing is wrongly active and everything is accounted for."""
        return not (
            self.missing
            or self.wrongly_active
            or self.skipped_unaccounted
            or self.unexpected_skips
            or self.rejected_unaccounted
            or self.unexpected_rejections
            or self.refused_without_reason
            or self.status_problems
        )


def judge(
    expect: Expectations,
    indicators: Iterable[Mapping[str, Any]],
    facts: LogFacts,
    status_problems: list[str],
) -> Verdict:
    """Compare the collection (the emulator's indicators) and the runtime's log with the model."""
    active = {str(i["value"]) for i in indicators if not i.get("revoked")}
    skipped_unaccounted = sorted(
        ind for ind, reasons in expect.skipped.items() if not reasons <= facts.skipped.get(ind, set())
    )
    # Only indicators may be skipped with a reason; other objects are ignored without a word.
    unexpected_skips = sorted(
        ind for ind in facts.skipped if ind.startswith("indicator--") and ind not in expect.skipped
    )
    expected_refusals = {v[:LOGGED_VALUE_CHARS] for v in expect.rejected}
    rejected_unaccounted = sorted(
        v for v in expect.rejected if v[:LOGGED_VALUE_CHARS] not in facts.refused or v in active
    )
    return Verdict(
        expected_active=len(expect.active),
        present_active=len(active),
        missing=sorted(expect.active - active),
        wrongly_active=sorted(active - expect.active),
        skipped_expected=len(expect.skipped),
        skipped_unaccounted=skipped_unaccounted,
        unexpected_skips=unexpected_skips,
        rejected_expected=len(expect.rejected),
        rejected_unaccounted=rejected_unaccounted,
        unexpected_rejections=sorted(set(facts.refused) - expected_refusals),
        refused_without_reason=sorted(v for v, reason in facts.refused.items() if not reason.strip()),
        status_problems=status_problems,
    )


def _event_key(event_id: str | None) -> tuple[int, int]:
    if not event_id or "-" not in event_id:
        return (-1, -1)
    ms, _, seq = event_id.partition("-")
    try:
        return (int(ms), int(seq))
    except ValueError:
        return (-1, -1)


def status_problems(resource: Mapping[str, Any], last_event_id: str) -> list[str]:
    """What the resource's status gets wrong about a runtime that has delivered everything."""
    status = resource.get("status") or {}
    problems: list[str] = []
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    ready = conditions.get("Ready") or {}
    if ready.get("status") != "True":
        problems.append(f"Ready is {ready.get('status', 'absent')} ({ready.get('reason', '')})")
    if (conditions.get("Stalled") or {}).get("status") == "True":
        problems.append(f"Stalled is True ({conditions['Stalled'].get('reason', '')})")
    generation = (resource.get("metadata") or {}).get("generation")
    if status.get("observedGeneration") != generation:
        problems.append(f"observedGeneration {status.get('observedGeneration')} != generation {generation}")
    progress = status.get("progress") or {}
    if progress.get("blocked"):
        problems.append(f"progress.blocked is still set ({progress['blocked'].get('reason', '')})")
    if progress.get("pendingEvents") != 0:
        problems.append(f"progress.pendingEvents is {progress.get('pendingEvents')}, not 0")
    committed = progress.get("lastCommittedEventId")
    if _event_key(committed) < _event_key(last_event_id):
        problems.append(
            f"progress.lastCommittedEventId {committed} is behind the stream's last event {last_event_id}"
        )
    return problems
