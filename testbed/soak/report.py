"""The soak's one-screen report, and its JSON twin for the record."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

from testbed.soak.scenario import SoakResult

SAMPLE = 3  # values shown per list of problems


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _sample(values: list[str]) -> str:
    shown = ", ".join(v if len(v) <= 60 else v[:57] + "..." for v in values[:SAMPLE])
    return f" (e.g. {shown})" if values else ""


def render(result: SoakResult) -> str:
    """At most ~30 lines: events, faults, values, rejections, the runtime's restarts and retries,
    the status, wall time and the verdict."""
    s = result.settings
    kinds = result.traffic_kinds
    v = result.verdict
    t = result.timings
    lines = [
        f"SOAK {'PASS' if result.passed else 'FAIL'}   seed {s.seed}   wall {_minutes(t.get('total', 0))}"
        f"   (set-up {t.get('set_up', 0):.0f}s, stream+faults "
        f"{t.get('stream_and_faults', 0):.0f}s, settle {t.get('settle', 0):.0f}s)",
        f"events     {result.events_sent:,} sent, {result.indicator_events:,} about indicators: "
        + " ".join(f"{k} {n:,}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])),
    ]
    by_kind = Counter(f.kind for f in result.faults)
    failed = [f for f in result.faults if not f.ok]
    lines.append(
        f"faults     {len(result.faults)} injected ({len(by_kind)} kinds), "
        f"{len(failed)} could not be injected"
    )
    for fault in result.faults:
        mark = "  " if fault.ok else "!!"
        lines.append(f"  {mark} t+{fault.at:5.0f}s {fault.kind:38} {fault.detail[:90]}")
    if v is not None:
        lines += [
            f"values     expected active {v.expected_active:,} · present {v.present_active:,} · "
            f"missing {len(v.missing):,}{_sample(v.missing)} · wrongly active {len(v.wrongly_active):,}"
            f"{_sample(v.wrongly_active)}",
            f"rejected   skipped by conversion: {v.skipped_expected:,} indicators expected, "
            f"{v.skipped_expected - len(v.skipped_unaccounted):,} reported with their reason"
            f"{_sample(v.skipped_unaccounted)}; unexpected {len(v.unexpected_skips)}"
            f"{_sample(v.unexpected_skips)}",
            f"           refused by Sekoia: {v.rejected_expected:,} expected, "
            f"{v.rejected_expected - len(v.rejected_unaccounted):,} logged with a reason"
            f"{_sample(v.rejected_unaccounted)}; unexpected {len(v.unexpected_rejections)}"
            f"{_sample(v.unexpected_rejections)}; without a reason {len(v.refused_without_reason)}",
        ]
    counters = result.runtime_counters
    ends = ", ".join(f"{reason} x{n}" for reason, n in sorted(result.runtime_ends.items()))
    memory = result.runtime_memory
    lines += [
        f"runtime    {result.runtime_where or '?'}",
        f"           {result.runtime_starts} processes ({ends or 'none ended'})",
        f"           retries ≥ {counters.get('sis_sekoia_retries_total', 0):,.0f}, values pushed "
        f"≥ {counters.get('sis_values_pushed_total', 0):,.0f} (summed over processes, last scrape each)",
        *(
            [
                f"           peak memory {memory['peak_bytes'] / 2**20:.0f} MiB of its "
                f"{memory['limit_bytes'] / 2**20:.0f} MiB limit (container memory cgroup)"
            ]
            if memory
            else []
        ),
        f"sekoia     {result.sekoia_requests:,} API requests: "
        + ", ".join(f"{k} {n:,}" for k, n in sorted(result.sekoia_by_status.items())),
        f"operator   {result.operator_restarts} restarts",
    ]
    status = result.status
    ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    progress = status.get("progress") or {}
    lines.append(
        f"status     Ready={ready.get('status', '?')} ({ready.get('reason', '')}) · pendingEvents "
        f"{progress.get('pendingEvents')} · committed {progress.get('lastCommittedEventId')} "
        f"(stream's last event {result.last_event_id})"
    )
    if v is not None and v.status_problems:
        lines.append("           problems: " + "; ".join(v.status_problems))
    if result.failure:
        lines.append(f"failure    {result.failure}")
    return "\n".join(lines)


def as_json(result: SoakResult) -> dict[str, Any]:
    """Plain data for ``--report``: the verdict's lists are cut to counts and a few examples."""
    data = dataclasses.asdict(result)
    data["passed"] = result.passed
    data["settings"]["schedule"] = [dataclasses.asdict(f) for f in result.settings.schedule]
    verdict = data.get("verdict")
    if verdict:
        for key, value in list(verdict.items()):
            if isinstance(value, list):
                verdict[key] = {"count": len(value), "examples": value[:SAMPLE]}
    return data


def write_json(result: SoakResult, path: Path) -> None:
    """Save :func:`as_json` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(as_json(result), indent=1, ensure_ascii=False, default=str) + "\n")
