"""Charts and the page section of the realistic-mix benchmark, before and after the coarsening ladder.

Reads ``runtime-realistic.json`` (after), ``runtime-realistic-before.json`` (the code before issue
14, measured with the same script), ``runtime.json`` and ``runtime-uniform-before.json`` (the
uniform workload), draws three charts and returns the Markdown that ``run_all.py`` appends to the
benchmark page. Files that are missing simply leave their part out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import results
from charts import _figure, _save, _style

AFTER_JSON = "runtime-realistic.json"
BEFORE_JSON = "runtime-realistic-before.json"
UNIFORM_BEFORE_JSON = "runtime-uniform-before.json"
WIDENED_JSON = "runtime-realistic-widened.json"
NO_EXPIRY_JSON = "runtime-realistic-no-expiry.json"
CHARTS = {
    "values_per_request": "realistic-values-per-request.png",
    "throughput": "realistic-throughput.png",
    "delays": "realistic-live-delays.png",
}
SCENARIOS = ("bulk", "burst", "live-8", "live-2")


def load(directory: Path) -> dict[str, dict[str, Any] | None]:
    """The four result files (None when absent)."""
    return {
        "after": results.read_json(directory / AFTER_JSON),
        "before": results.read_json(directory / BEFORE_JSON),
        "uniform_after": results.read_json(directory / results.RUNTIME_JSON),
        "uniform_before": results.read_json(directory / UNIFORM_BEFORE_JSON),
    }


def _scenario(doc: dict[str, Any] | None, name: str) -> dict[str, Any]:
    return dict(((doc or {}).get("scenarios") or {}).get(name) or {})


def _uniform_vpr(doc: dict[str, Any] | None) -> float | None:
    if not doc or not doc.get("api_requests"):
        return None
    return float(doc["values_pushed"]) / float(doc["api_requests"])


def draw_values_per_request(data: dict[str, dict[str, Any] | None], path: Path) -> Path | None:
    """Values per push request by workload, before and after."""
    labels, before, after = [], [], []
    for name in SCENARIOS:
        b = _scenario(data["before"], name).get("values_per_push_request")
        a = _scenario(data["after"], name).get("values_per_push_request")
        if a is None and b is None:
            continue
        labels.append(f"realistic {name}")
        before.append(b or 0.0)
        after.append(a or 0.0)
    ub, ua = _uniform_vpr(data["uniform_before"]), _uniform_vpr(data["uniform_after"])
    if ub is not None or ua is not None:
        labels.insert(0, "uniform bulk")
        before.insert(0, ub or 0.0)
        after.insert(0, ua or 0.0)
    if not labels:
        return None
    figure = _figure()
    axes = figure.add_subplot()
    positions = range(len(labels))
    axes.bar(
        [p - 0.2 for p in positions],
        before,
        width=0.4,
        color="tab:grey",
        label="before (type x validity month x kill chain)",
    )
    axes.bar(
        [p + 0.2 for p in positions], after, width=0.4, color="tab:blue", label="after (coarsening ladder)"
    )
    for p, (b, a) in enumerate(zip(before, after, strict=True)):
        axes.text(p - 0.2, b + 1, f"{b:.1f}", ha="center", fontsize=8)
        axes.text(p + 0.2, a + 1, f"{a:.1f}", ha="center", fontsize=8)
    axes.set_xticks(list(positions), labels)
    axes.axhline(100, color="black", linestyle=":", linewidth=1.0, label="Sekoia's maximum: 100")
    axes.set_ylim(0, 115)
    _style(axes, "Values per push request by workload", "", "values per push request (mean)")
    axes.legend(loc="center right", fontsize=8)
    return _save(figure, path)


def draw_throughput(data: dict[str, dict[str, Any] | None], path: Path) -> Path | None:
    """Values acknowledged over time: the bulk replay and the burst, before and after."""
    panels = []
    for name, key in (("bulk", "timeline"), ("burst", "acked_over_time")):
        lines = []
        for label, doc, color in (
            ("before", data["before"], "tab:grey"),
            ("after", data["after"], "tab:blue"),
        ):
            series = _scenario(doc, name).get(key) or []
            if key == "timeline":
                points = [(row["t"], row["values_acked"]) for row in series]
            else:
                points = [(row[0], row[1]) for row in series]
            if points:
                lines.append((label, points, color))
        if lines:
            panels.append((name, lines))
    if not panels:
        return None
    figure = _figure(width=11.0)
    for index, (name, lines) in enumerate(panels):
        axes = figure.add_subplot(1, len(panels), index + 1)
        for label, points, color in lines:
            axes.plot([t for t, _ in points], [v for _, v in points], color=color, linewidth=1.6, label=label)
        end = max(t for _, points, _ in lines for t, _ in points)
        axes.plot(
            [0, end],
            [0, end * 500],
            color="black",
            linestyle=":",
            linewidth=1.0,
            label="budget: 500 values/s",
        )
        axes.set_ylim(0, max(v for _, points, _ in lines for _, v in points) * 1.15)
        axes.set_xlim(left=0)
        xlabel = "seconds since the runtime started" if name == "bulk" else "seconds since the first event"
        _style(
            axes, f"Realistic mix, {name}: values acknowledged", xlabel, "values acknowledged (cumulative)"
        )
        axes.legend(loc="lower right", fontsize=8)
    return _save(figure, path)


def draw_delays(data: dict[str, dict[str, Any] | None], path: Path) -> Path | None:
    """Distribution (CDF) of the stream event -> Sekoia acknowledgement delay in the live runs."""
    curves = []
    for name, color in (("live-2", "tab:green"), ("live-8", "tab:blue")):
        for label, doc, style in (("before", data["before"], "--"), ("after", data["after"], "-")):
            delays = _scenario(doc, name).get("delays_seconds") or []
            if delays:
                curves.append(
                    (f"{name} events/s, {label}".replace("live-", ""), sorted(delays), style, color)
                )
    if not curves:
        return None
    figure = _figure()
    axes = figure.add_subplot()
    for label, delays, style, color in curves:
        shares = [(i + 1) / len(delays) for i in range(len(delays))]
        axes.plot(delays, shares, linestyle=style, color=color, linewidth=1.6, label=label)
    axes.axvline(5, color="tab:red", linestyle="--", linewidth=1.2, label="target: p95 <= 5 s")
    axes.axhline(0.95, color="grey", linestyle=":", linewidth=1.0)
    axes.set_xlim(left=0)
    axes.set_ylim(0, 1.01)
    _style(
        axes,
        "Live stream, realistic mix: delay from stream event to Sekoia acknowledgement",
        "seconds",
        "share of the values acknowledged within",
    )
    axes.legend(loc="lower right", fontsize=8)
    return _save(figure, path)


def draw_all(directory: Path) -> dict[str, Path | None]:
    """The three charts into ``directory``; chart key -> file (None: no data)."""
    data = load(directory)
    return {
        "values_per_request": draw_values_per_request(data, directory / CHARTS["values_per_request"]),
        "throughput": draw_throughput(data, directory / CHARTS["throughput"]),
        "delays": draw_delays(data, directory / CHARTS["delays"]),
    }


def _cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1 else f"{value:,.{max(1, digits - 3)}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


ROWS = (
    ("bulk", "push_requests_per_value", "push requests per value", "<= 0.015"),
    ("bulk", "values_per_push_request", "values per push request", ""),
    ("bulk", "share_of_budget", "share of the budget (used x fullness)", ">= 0.95"),
    ("bulk", "values_per_second", "values/s (revocations take their share)", ""),
    ("bulk", "other_requests", "revocation requests (1 per expiry)", ""),
    ("bulk", "peak_rss_mb", "peak RSS, MB", "<= 120"),
    ("bulk", "lost", "values lost", "0"),
    ("live-2", "delay_p95_seconds", "p95 event -> ack, s", "<= 5"),
    ("live-2", "push_requests_per_value", "push requests per value", ""),
    ("live-2", "http_429", "429 answers", "0"),
    ("live-8", "delay_p95_seconds", "p95 event -> ack, s", "<= 5"),
    ("live-8", "delay_max_seconds", "max event -> ack, s", ""),
    ("live-8", "push_requests_per_value", "push requests per value", ""),
    ("live-8", "http_429", "429 answers", "0"),
    ("burst", "share_of_budget", "share of the budget while draining", ">= 0.95"),
    ("burst", "push_requests_per_value", "push requests per value", ""),
    ("burst", "active_seconds", "seconds to drain", ""),
)


def render(directory: Path, drawn: dict[str, Path | None]) -> str:
    """The Markdown section: before/after tables, the projection and the charts."""
    data = load(directory)
    after, before = data["after"], data["before"]
    if after is None and before is None:
        return ""
    lines = [
        "",
        "## Realistic mix (issue 14): before and after the coarsening ladder",
        "",
        "The workload (`testbed/feedmix.py`) aggregates four feeds (IP reputation, phishing, malware "
        "hashes, threat reports): every indicator has its own `valid_from` (its creation second) and "
        "its own `valid_until` (a decay-like lifetime by type, scaled by score: IPv4/IPv6 30-90 days, "
        "domain/URL 90-270, hashes 180-550, e-mail 60-180), about 40 % carry a MITRE tactic (some two, "
        "some a Lockheed Martin phase: ~230 distinct kill chain sets), scores, confidence and labels; "
        "8 % of the events are metadata-only updates and 2 % expirations (`revoked: true`). "
        "Sekoia emulator: 5 requests/s (token bucket), 150 ms mean latency.",
        "",
        "Before: the code of the main branch before issue 14 (values grouped by type x validity month "
        "x kill chain x description, each group flushed on its own). After: the coarsening ladder "
        '(see the main README, "Throughput and fidelity").',
        "",
        "| Scenario | Measure | Before | After | Target |",
        "|---|---|---:|---:|---|",
    ]
    for scenario, key, label, target in ROWS:
        b = _scenario(before, scenario).get(key)
        a = _scenario(after, scenario).get(key)
        if a is None and b is None:
            continue
        lines.append(f"| {scenario} | {label} | {_cell(b)} | {_cell(a)} | {target} |")
    ub, ua = data["uniform_before"], data["uniform_after"]
    if ub or ua:
        for key, label, target in (
            ("api_requests_per_value", "API requests per value", "<= 0.011"),
            ("share_of_budget", "share of the budget", ">= 0.95"),
            ("peak_rss_mb", "peak RSS, MB", "<= 120"),
        ):
            lines.append(
                f"| uniform bulk ({(ua or ub or {}).get('events', 0):,}) | {label} | "
                f"{_cell((ub or {}).get(key))} | {_cell((ua or {}).get(key))} | {target} |"
            )
    bulk = _scenario(after, "bulk")
    if bulk:
        workload = bulk.get("workload") or {}
        lines += [
            "",
            f"Bulk replay: {bulk.get('events', 0):,} events ({workload.get('operations')}), "
            f"{bulk.get('values_expected', 0):,} values active at the end, "
            f"{_cell(workload.get('distinct_valid_until'))} distinct `valid_until`, "
            f"{workload.get('distinct_kill_chains', 'n/a')} distinct kill chain sets. "
            f"Requests by level and values pushed with a coarsened field: `{bulk.get('coarsening')}`.",
        ]
    widened_doc = results.read_json(directory / WIDENED_JSON) or {}
    widened = _scenario(widened_doc, "bulk")
    if widened:
        lines += [
            "",
            f"With `maxCoarsening: widened` (kill chains always exact) the same bulk replay takes "
            f"{_cell(widened.get('push_requests_per_value'))} push requests per value "
            f"({_cell(widened.get('values_per_push_request'))} values per request, share of the budget "
            f"{_cell(widened.get('share_of_budget'))}): the "
            f"{_cell(bulk.get('workload', {}).get('distinct_kill_chains'))} kill chain sets split "
            f"the pending values into many small groups (`{WIDENED_JSON}`"
            + (f"; {widened_doc['note']}" if widened_doc.get("note") else "")
            + ").",
        ]
    no_expiry = _scenario(results.read_json(directory / NO_EXPIRY_JSON) or {}, "bulk")
    if no_expiry:
        lines += [
            "",
            f"The same mix without expirations (`--expire-share 0`, `{NO_EXPIRY_JSON}`): "
            f"{_cell(no_expiry.get('values_per_second'))} values/s "
            f"({_cell(no_expiry.get('share_of_budget'))} of the budget), "
            f"{_cell(no_expiry.get('push_requests_per_value'))} push requests per value, "
            f"peak RSS {_cell(no_expiry.get('peak_rss_mb'))} MB, {no_expiry.get('lost', 'n/a')} lost: "
            "with expirations, their revocations (no bulk revoke exists) take most of the requests.",
        ]
    projection_after = (after or {}).get("projection_500k_minutes")
    projection_before = (before or {}).get("projection_500k_minutes")
    if projection_after:
        push_only = 500_000 * (bulk.get("push_requests_per_value") or 0.01) / 5 / 60
        lines += [
            "",
            f"**500,000-indicator initial sync, projected from the measured bulk rate:** "
            f"{projection_after:,.0f} min after (before: {_cell(projection_before)} min) with this mix's "
            f"2 % expirations, which cost one request each whatever the grouping; the pushes alone take "
            f"{push_only:,.0f} min at the measured {bulk.get('push_requests_per_value')} push requests per "
            f"value.",
        ]
    for key, alt, caption in (
        ("values_per_request", "values per push request by workload", "Mean values per push request."),
        (
            "throughput",
            "values acknowledged over time",
            "Cumulative values acknowledged (Sekoia emulator's request log); dotted: 500 values/s.",
        ),
        (
            "delays",
            "live delay distribution",
            "Share of the values of create events acknowledged within x seconds of the event (2 and 8 "
            "events/s for 90 s on an idle runtime).",
        ),
    ):
        path = drawn.get(key)
        if path is not None:
            lines += ["", f"![{alt}]({path.name})", "", f"*{caption}*"]
    lines += [
        "",
        "```sh",
        "make bench-realistic    # the four scenarios: runtime-realistic.json",
        "# before: the same script with PYTHONPATH at a folder holding the older connector_runtime/",
        "PYTHONPATH=/tmp/before-path .venv/bin/python -P benchmarks/realistic_bench.py --label before \\",
        "    --output docs/benchmarks/runtime-realistic-before.json",
        "```",
        "",
    ]
    return "\n".join(lines)


def append(directory: Path) -> dict[str, Path | None]:
    """Draw the charts and append the section to the page in ``directory``."""
    drawn = draw_all(directory)
    for key, path in drawn.items():
        stale = directory / CHARTS[key]
        if path is None and stale.exists():
            stale.unlink()
    section = render(directory, drawn)
    page = directory / results.PAGE
    if section and page.exists():
        page.write_text(page.read_text().rstrip("\n") + "\n" + section)
    return drawn
