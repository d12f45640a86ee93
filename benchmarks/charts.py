"""PNG charts of the benchmark results (matplotlib, Agg canvas: no display, no pyplot state).

Each ``draw_*`` function takes the result dicts as the benchmark scripts wrote them and returns the
file it wrote, or None when the results lack what the chart needs (JSON written before the
scripts recorded timelines): the page then says so instead of showing an empty chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import results
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 110
# Throughput over a trailing window: one 0.5 s sample holds 2 or 3 answers of up to 100 values, so
# a rate per sample swings between ~400 and ~600 values/s around a steady 500.
RATE_WINDOW_SECONDS = 2.0
TARGET_STYLE: dict[str, Any] = {"color": "tab:red", "linestyle": "--", "linewidth": 1.2}


def _figure(width: float = 10.0, height: float = 4.8) -> Figure:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # No "Software" entry: the bytes then depend on the data, not on the matplotlib release.
    figure.savefig(path, format="png", metadata={"Software": None})
    return path


def _no_data(axes: Axes, text: str) -> None:
    """An empty panel that says what is missing (older JSON has no timelines)."""
    axes.set_axis_off()
    axes.text(0.5, 0.5, text, ha="center", va="center")


def _style(axes: Axes, title: str, xlabel: str, ylabel: str) -> None:
    axes.set_title(title, fontsize=11)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)


def _timeline(runtime: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list((runtime or {}).get("timeline") or [])


def _operator_runs(scaling: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list((scaling or {}).get("runs") or [])


def throughput_series(
    timeline: Sequence[dict[str, Any]], window: float = RATE_WINDOW_SECONDS
) -> list[tuple[float, float]]:
    """(t, values acknowledged per second over the ``window`` seconds before t) per sample."""
    series: list[tuple[float, float]] = []
    start = 0
    for row in timeline:
        # Advance to the latest sample at least `window` before this one (the first one meanwhile).
        while start + 1 < len(timeline) and timeline[start + 1]["t"] <= row["t"] - window:
            start += 1
        base = timeline[start]
        span = row["t"] - base["t"]
        if span > 0:
            series.append((row["t"], (row["values_acked"] - base["values_acked"]) / span))
    return series


def requests_per_value_series(timeline: Sequence[dict[str, Any]]) -> list[tuple[float, float]]:
    """(t, API requests answered so far / values acknowledged so far), once a value is acknowledged."""
    return [
        (row["t"], row["api_requests"] / row["values_acked"]) for row in timeline if row["values_acked"] > 0
    ]


def _workload_label(runtime: dict[str, Any]) -> str:
    latency = runtime.get("sekoia_latency_seconds")
    limiter = runtime.get("sekoia_rate_limiter", "")
    parts = [f"{runtime.get('events', 0):,} events", f"Sekoia emulator: {limiter}"]
    if latency is not None:
        parts.append(f"{latency * 1000:.0f} ms mean latency")
    return ", ".join(parts)


def draw_throughput(runtime: dict[str, Any] | None, path: Path) -> Path | None:
    """Values acknowledged per second over the replay, against Sekoia's budget and the target."""
    timeline = _timeline(runtime)
    series = throughput_series(timeline)
    if runtime is None or not series:
        return None
    budget = results.budget(runtime)
    figure = _figure()
    axes = figure.add_subplot()
    axes.plot(
        [t for t, _ in series],
        [rate for _, rate in series],
        color="tab:blue",
        linewidth=1.6,
        label=f"values acknowledged/s ({RATE_WINDOW_SECONDS:g} s trailing window)",
    )
    axes.axhline(budget, color="black", linestyle=":", linewidth=1.2, label=f"budget: {budget:g} values/s")
    target = results.runtime_target(runtime, "share_of_budget")
    if target is not None:
        axes.axhline(
            target[1] * budget, **TARGET_STYLE, label=f"target: {target[0]} {target[1]:.0%} of the budget"
        )
    mean = runtime.get("values_per_second")
    if mean is not None:
        axes.axhline(mean, color="tab:green", linewidth=1.0, alpha=0.8, label=f"mean over the push: {mean:g}")
    ready = runtime.get("time_to_ready_seconds")
    if ready is not None:
        axes.axvline(ready, color="grey", linewidth=1.0, alpha=0.7, label=f"runtime ready ({ready:g} s)")
    axes.set_ylim(0, max(budget * 1.3, max(rate for _, rate in series) * 1.1))
    axes.set_xlim(left=0)
    _style(
        axes,
        f"Connector runtime throughput ({_workload_label(runtime)})",
        "seconds since the runtime started",
        "values acknowledged by Sekoia per second",
    )
    axes.legend(loc="lower center", fontsize=8)
    return _save(figure, path)


def draw_requests_per_value(runtime: dict[str, Any] | None, path: Path) -> Path | None:
    """Cumulative API requests per value over the replay, and how full the push requests were."""
    timeline = _timeline(runtime)
    ratios = requests_per_value_series(timeline)
    sizes = (runtime or {}).get("values_per_push_request") or {}
    if runtime is None or not ratios:
        return None
    figure = _figure(12.0, 4.8)
    left, right = figure.subplots(1, 2, width_ratios=(3, 2))
    left.plot([t for t, _ in ratios], [r for _, r in ratios], color="tab:blue", linewidth=1.6, label="so far")
    left.axhline(0.01, color="black", linestyle=":", linewidth=1.2, label="floor: 1 request per 100 values")
    target = results.runtime_target(runtime, "api_requests_per_value")
    if target is not None:
        left.axhline(target[1], **TARGET_STYLE, label=f"target: {target[0]} {target[1]:g}")
    final = runtime.get("api_requests_per_value")
    # The first acknowledgements come after the start-up requests, so the early ratio is off the
    # scale; the interesting part is where it settles.
    top = max(0.02, (final or 0.0) * 1.5, (target[1] if target else 0.0) * 1.5)
    left.set_ylim(0, top)
    left.set_xlim(left=0)
    _style(
        left,
        f"API requests per value acknowledged (final: {final})",
        "seconds since the runtime started",
        "requests answered / values acknowledged",
    )
    left.legend(fontsize=8)
    if sizes:
        counts = {int(size): n for size, n in sizes.items()}
        right.bar(list(counts), list(counts.values()), width=1.0, color="tab:blue")
        right.set_xlim(0, max(101, max(counts) + 1))
        pushes = sum(counts.values())
        full = counts.get(max(counts), 0)
        _style(
            right,
            f"Values per push request ({pushes} pushes, {full} with {max(counts)})",
            "values in the request",
            "push requests",
        )
    else:
        _no_data(right, "no batch sizes recorded")
    return _save(figure, path)


def draw_rss(runtime: dict[str, Any] | None, scaling: dict[str, Any] | None, path: Path) -> Path | None:
    """Resident memory over time: the runtime's replay, and the operator at each size."""
    timeline = _timeline(runtime)
    runs = [run for run in _operator_runs(scaling) if run.get("timeline")]
    if not timeline and not runs:
        return None
    figure = _figure(12.0, 4.8)
    left, right = figure.subplots(1, 2)
    if runtime is not None and timeline:
        left.plot(
            [r["t"] for r in timeline], [r["rss_mb"] for r in timeline], color="tab:blue", linewidth=1.6
        )
        target = results.runtime_target(runtime, "peak_rss_mb")
        if target is not None:
            left.axhline(target[1], **TARGET_STYLE, label=f"target: peak {target[0]} {target[1]:g} MB")
            left.legend(fontsize=8, loc="lower right")
        left.set_ylim(0, max(max(r["rss_mb"] for r in timeline), target[1] if target else 0) * 1.15)
        left.set_xlim(left=0)
        events, peak = runtime.get("events", 0), runtime.get("peak_rss_mb")
        _style(
            left,
            f"Connector runtime RSS ({events:,} events; peak {peak} MB)",
            "seconds since the runtime started",
            "resident memory (MB)",
        )
    else:
        _no_data(left, "no runtime timeline")
    if runs:
        highest = 0.0
        for run in runs:
            points = [(row["t"], row["operator_rss_mb"]) for row in run["timeline"]]
            before = run.get("operator_rss_mb_before_creates")
            if before is not None:
                points.insert(0, (0.0, before))
            highest = max(highest, *(rss for _, rss in points))
            right.plot(
                [t for t, _ in points],
                [rss for _, rss in points],
                marker=".",
                linewidth=1.4,
                label=f"{run['resources']} resources (peak {run.get('operator_peak_rss_mb')} MB)",
            )
        rss_target = (runs[-1].get("targets") or {}).get("rss_mb")
        if rss_target is not None:
            right.axhline(rss_target, **TARGET_STYLE, label=f"target: peak <= {rss_target:g} MB")
            highest = max(highest, rss_target)
        right.set_ylim(0, highest * 1.15)
        right.set_xlim(left=0)
        _style(right, "Operator RSS", "seconds since the first create", "resident memory (MB)")
        right.legend(fontsize=8, loc="lower right")
    else:
        _no_data(right, "no operator timeline")
    return _save(figure, path)


def draw_operator_scaling(scaling: dict[str, Any] | None, path: Path) -> Path | None:
    """Seconds until every resource is Ready (and its Pods running) by number of resources."""
    runs = _operator_runs(scaling)
    if not runs:
        return None
    figure = _figure(12.0, 4.8)
    left, right = figure.subplots(1, 2)
    sizes = [run["resources"] for run in runs]
    curves = (
        ("seconds_until_all_ready", "all Ready", "tab:blue", "o"),
        ("seconds_until_all_pods_running", "all Pods running", "tab:orange", "s"),
        ("seconds_until_all_deployments", "all Deployments created", "tab:green", "^"),
        ("seconds_to_create", "all resources created", "tab:grey", "v"),
    )
    for key, label, color, marker in curves:
        points = [(run["resources"], run.get(key)) for run in runs if run.get(key) is not None]
        if points:
            left.plot([n for n, _ in points], [s for _, s in points], marker=marker, color=color, label=label)
    seconds_target = (runs[-1].get("targets") or {}).get("seconds")
    if seconds_target is not None:
        left.axhline(seconds_target, **TARGET_STYLE, label=f"target: all Ready <= {seconds_target:g} s")
    left.set_xticks(sizes)
    left.set_xlim(0, max(sizes) * 1.08)
    left.set_ylim(bottom=0)
    _style(
        left,
        "Operator: time to ready by number of resources",
        "SekoiaIntelSync resources created at once",
        "seconds since the first create",
    )
    left.legend(fontsize=8, loc="upper left")
    for run in runs:
        timeline = run.get("timeline") or run.get("timeline_every_10th_sample") or []
        if timeline:
            right.plot(
                [0.0, *(row["t"] for row in timeline)],
                [0, *(row["ready"] for row in timeline)],
                marker=".",
                linewidth=1.4,
                label=f"{run['resources']} resources",
            )
    _style(right, "Ready resources over time", "seconds since the first create", "resources Ready")
    right.yaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_xlim(left=0)
    right.set_ylim(bottom=0)
    if right.lines:
        right.legend(fontsize=8, loc="lower right")
    return _save(figure, path)


def draw_all(
    runtime: dict[str, Any] | None, scaling: dict[str, Any] | None, directory: Path
) -> dict[str, Path | None]:
    """Every chart into ``directory`` under its fixed name; chart key -> file (None: no data)."""
    names = results.CHARTS
    return {
        "throughput": draw_throughput(runtime, directory / names["throughput"]),
        "requests_per_value": draw_requests_per_value(runtime, directory / names["requests_per_value"]),
        "rss": draw_rss(runtime, scaling, directory / names["rss"]),
        "operator_scaling": draw_operator_scaling(scaling, directory / names["operator_scaling"]),
    }
