"""docs/benchmarks/README.md: the charts, the headline numbers against their targets, the machine.

Every number on the page is read from the JSON results at the time the page is written, so the
page never disagrees with the files next to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import results

_SYMBOLS = {">=": "≥", "<=": "≤", ">": ">", "<": "<"}


def _number(value: float | int | None, unit: str = "", digits: int | None = None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if digits is not None:
        text = f"{value:,.{digits}f}"
    elif isinstance(value, int) or float(value).is_integer():
        text = f"{int(value):,}"
    else:
        text = f"{value:,}"
    return f"{text} {unit}".rstrip()


def _verdict(ok: bool | None) -> str:
    return {True: "yes", False: "**no**", None: "n/a"}[ok]


def _when(stamp: str | None) -> str:
    return stamp.replace("T", " ").replace("Z", " UTC") if stamp else "unknown date"


def _machine_line(runtime: dict[str, Any] | None, scaling: dict[str, Any] | None) -> str:
    runs = (scaling or {}).get("runs") or []
    machine = dict((runtime or {}).get("machine") or {})
    if runs:
        # operator_bench records fewer facts; it fills in what runtime.json does not have.
        for key in ("cpus", "memory_mb", "python"):
            machine.setdefault(key, runs[-1].get(key))
    parts = []
    if machine.get("cpus"):
        parts.append(f"{machine['cpus']} cores")
    if machine.get("cpu_model"):
        parts.append(str(machine["cpu_model"]))
    if machine.get("memory_mb"):
        parts.append(f"{machine['memory_mb'] / 1024:.1f} GB RAM")
    if machine.get("python"):
        parts.append(f"Python {machine['python']}")
    if machine.get("platform"):
        parts.append(str(machine["platform"]))
    return ", ".join(parts) or "unknown machine"


def _runtime_rows(runtime: dict[str, Any]) -> list[list[str]]:
    label = f"Runtime ({runtime.get('events', 0):,} events)"
    budget = results.budget(runtime)
    rows: list[list[str]] = []

    def row(measure: str, key: str, unit: str = "", shown: str | None = None) -> None:
        value = runtime.get(key)
        shown = shown if shown is not None else _number(value, unit)
        target = results.runtime_target(runtime, key)
        if target is None:
            rows.append([label, measure, shown, "—", "—"])
            return
        comparison, threshold = target
        rows.append(
            [
                label,
                measure,
                shown,
                f"{_SYMBOLS[comparison]} {_number(threshold, unit)}",
                _verdict(results.meets(value, comparison, threshold)),
            ]
        )

    share = runtime.get("share_of_budget")
    throughput = _number(runtime.get("values_per_second"), "values/s")
    if share is not None:
        throughput += f" ({share:.1%} of the {budget:g} values/s budget)"
    row("Throughput (values acknowledged by Sekoia)", "share_of_budget", shown=throughput)
    share_target = results.runtime_target(runtime, "share_of_budget")
    if share_target is not None:
        # The target is a share of the budget: say it in values/s as well.
        comparison, threshold = share_target
        rows[-1][3] = (
            f"{_SYMBOLS[comparison]} {threshold:.0%} of the budget ({threshold * budget:g} values/s)"
        )
    row("API requests per value", "api_requests_per_value")
    row("Conversion on one core", "conversion_events_per_second_one_core", "events/s")
    row("Peak RSS", "peak_rss_mb", "MB")
    row("Time to ready", "time_to_ready_seconds", "s")
    row("HTTP 429 answers", "http_429")
    row("CPU per 1,000 events", "cpu_seconds_per_1000_events", "s")
    stop = f"exit {runtime.get('sigterm_exit_code')} in {_number(runtime.get('sigterm_seconds'), 's')}"
    row("SIGTERM", "sigterm_exit_code", shown=stop)
    return rows


def _operator_rows(run: dict[str, Any]) -> list[list[str]]:
    label = f"Operator ({run['resources']:,} resources)"
    targets = run.get("targets") or {}
    seconds, rss = run.get("seconds_until_all_ready"), run.get("operator_peak_rss_mb")
    rows = []
    ready_shown = _number(seconds, "s") if seconds is not None else f"not reached ({run.get('ready')} Ready)"
    if "seconds" in targets:
        ok = results.meets(seconds, "<=", targets["seconds"]) if seconds is not None else False
        rows.append(
            [label, "Time until all Ready", ready_shown, f"≤ {_number(targets['seconds'])} s", _verdict(ok)]
        )
    else:
        rows.append([label, "Time until all Ready", ready_shown, "—", "—"])
    if "rss_mb" in targets:
        rows.append(
            [
                label,
                "Operator peak RSS",
                _number(rss, "MB"),
                f"≤ {_number(targets['rss_mb'])} MB",
                _verdict(results.meets(rss, "<=", targets["rss_mb"])),
            ]
        )
    else:
        rows.append([label, "Operator peak RSS", _number(rss, "MB"), "—", "—"])
    rows.append(
        [
            label,
            "Time until all Pods running",
            _number(run.get("seconds_until_all_pods_running"), "s"),
            "—",
            "—",
        ]
    )
    return rows


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def _scaling_table(runs: list[dict[str, Any]]) -> list[str]:
    rows = []
    for run in runs:
        cpu = (run.get("cpu_seconds_by_process") or {}).get("operator")
        rows.append(
            [
                _number(run["resources"]),
                _number(run.get("seconds_to_create")),
                _number(run.get("seconds_until_all_deployments")),
                _number(run.get("seconds_until_all_pods_running")),
                _number(run.get("seconds_until_all_ready")) if run.get("all_ready") else "not reached",
                _number(run.get("operator_peak_rss_mb")),
                _number(cpu),
                _verdict(run.get("meets_targets")),
            ]
        )
    header = [
        "Resources",
        "All created (s)",
        "All Deployments (s)",
        "All Pods running (s)",
        "All Ready (s)",
        "Operator peak RSS (MB)",
        "Operator CPU (s)",
        "Targets met",
    ]
    return _table(header, rows)


def _image(charts: Mapping[str, Path | None], key: str, alt: str, caption: str) -> list[str]:
    path = charts.get(key)
    if path is None:
        return [f"*No chart ({alt}): the JSON results lack the timeline it needs; rerun the benchmark.*"]
    # Relative to the page, so that it renders on the forge and in a local checkout alike.
    return [f"![{alt}]({path.name})", "", caption]


def render(
    runtime: dict[str, Any] | None, scaling: dict[str, Any] | None, charts: Mapping[str, Path | None]
) -> str:
    """The Markdown page for these results and charts (images linked relative to the page)."""
    runs = (scaling or {}).get("runs") or []
    largest = runs[-1] if runs else None
    dates = []
    if runtime is not None:
        dates.append(f"runtime benchmark {_when(runtime.get('when'))}")
    if largest is not None:
        dates.append(f"operator benchmark {_when(largest.get('measured_at'))}")
    lines = [
        "# Benchmarks",
        "",
        "<!-- Written by benchmarks/run_all.py from the JSON files in this folder: do not edit by hand. -->",
        "",
        f"Measured on {_machine_line(runtime, scaling)}; {', '.join(dates) or 'no results yet'}.",
        "",
        "## Headline numbers",
        "",
    ]
    rows = (_runtime_rows(runtime) if runtime is not None else []) + (
        _operator_rows(largest) if largest is not None else []
    )
    lines += _table(["Benchmark", "Measure", "Result", "Target", "Met"], rows) if rows else ["No results."]
    if runtime is not None:
        lines += [
            "",
            "## Connector runtime",
            "",
            f"One runtime replays {runtime.get('events', 0):,} indicator creates from the OpenCTI "
            f"emulator into the Sekoia emulator ({runtime.get('sekoia_rate_limiter', 'rate limited')}, "
            f"{_number((runtime.get('sekoia_latency_seconds') or 0) * 1000)} ms mean latency). "
            f"Workload: {runtime.get('workload', 'n/a')}. "
            f"{_number(runtime.get('values_pushed'))} values acknowledged in "
            f"{_number(runtime.get('push_seconds'), 's')} with "
            f"{_number(runtime.get('api_requests'))} API requests.",
            "",
            *_image(
                charts,
                "throughput",
                "runtime throughput over time",
                "Values acknowledged per second over a trailing window, from the Sekoia emulator's request "
                "log; the mean in the table runs from the first acknowledgement to the last.",
            ),
            "",
            *_image(
                charts,
                "requests_per_value",
                "API requests per value",
                "Left: every request answered so far (start-up requests included) over the values "
                "acknowledged so far. Right: values per push request; Sekoia takes at most 100.",
            ),
        ]
    if runs:
        lines += [
            "",
            "## Operator: time to ready by number of resources",
            "",
            "Each size runs on a fresh local control plane (kwok plays the kubelets); all resources are "
            "created at once by 16 clients and the clock starts at the first create.",
            "",
            *_scaling_table(runs),
            "",
            *_image(
                charts,
                "operator_scaling",
                "operator time to ready by number of resources",
                "Left: seconds from the first create until every resource is Ready, and until every "
                "Deployment exists and its Pod runs (sampled about once a second). Right: Ready resources "
                "over time at each size.",
            ),
        ]
        for failure in (scaling or {}).get("failed") or []:
            lines += [
                "",
                f"**The run with {failure.get('resources')} resources failed:** {failure.get('error')}",
            ]
    lines += [
        "",
        "## Memory",
        "",
        *_image(
            charts,
            "rss",
            "RSS over time of the runtime and the operator",
            "Resident set size (VmRSS) sampled during the runs: every "
            f"{(runtime or {}).get('timeline_interval_seconds', 0.5):g} s for the runtime, about once a "
            "second for the operator; the peaks in the tables are the kernel's high-water mark (VmHWM).",
        ),
        "",
        "## Reproduce",
        "",
        "```sh",
        "make bench            # both benchmarks, then the charts and this page (writes docs/benchmarks/)",
        "make bench-runtime    # the runtime benchmark alone: runtime.json",
        "make bench-operator   # the operator benchmark alone, 500 resources: operator.json",
        "```",
        "",
        "`BENCH_ARGS` passes options to the script a target runs:",
        "",
        "- `make bench`: `--sizes 50,100,250,500` (operator sizes), `--events 30000` (runtime replay), "
        "`--output-dir DIR`, `--charts-only` (redraw the charts and this page from the JSON in the "
        "output folder), `--skip-runtime`, `--skip-operator`, `--timeout SECONDS` (per operator size). "
        'A quick check: `make bench BENCH_ARGS="--sizes 10,20 --events 2000 --output-dir /tmp/bench"`.',
        "- `make bench-runtime`: `--events`, `--latency`, `--firewall bucket|sliding`, `--sample-interval`, "
        "`--output`.",
        "- `make bench-operator`: `--count`, `--timeout`, `--output`.",
        "",
    ]
    return "\n".join(lines)


def write(
    directory: Path,
    runtime: dict[str, Any] | None,
    scaling: dict[str, Any] | None,
    charts: Mapping[str, Path | None],
) -> Path:
    """Write the page as README.md in ``directory``; return its path."""
    path = directory / results.PAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(runtime, scaling, charts))
    return path
