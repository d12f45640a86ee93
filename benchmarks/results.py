"""The benchmark results as files: their names, loading them back, and reading their targets.

Shared by ``run_all.py`` (which writes them), ``charts.py`` and ``report.py`` (which only read
them), so that a page regenerated with ``--charts-only`` sees exactly what a full run wrote.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any

RUNTIME_JSON = "runtime.json"
OPERATOR_JSON = "operator.json"
SCALING_JSON = "operator-scaling.json"
PAGE = "README.md"

# Chart key -> file name. Fixed names so that the page's links and git's history stay stable.
CHARTS = {
    "throughput": "runtime-throughput.png",
    "requests_per_value": "runtime-requests-per-value.png",
    "rss": "rss-over-time.png",
    "operator_scaling": "operator-time-to-ready.png",
}

# runtime.json did not always record its budget; this is the one its script has always used.
DEFAULT_BUDGET_VALUES_PER_SECOND = 500

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}


def read_json(path: Path) -> dict[str, Any] | None:
    """The object in a JSON file, or None when the file does not exist."""
    return json.loads(path.read_text()) if path.exists() else None


def scaling_from_runs(
    runs: list[dict[str, Any]], failed: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The operator-scaling document for some operator_bench results (one per size)."""
    ordered = sorted(runs, key=lambda run: run["resources"])
    return {
        "benchmark": "operator time to ready by number of SekoiaIntelSync resources",
        "sizes": [run["resources"] for run in ordered],
        "runs": ordered,
        "failed": failed or [],
    }


def load(directory: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(runtime result, operator scaling) found in ``directory``; None for what is not there.

    Without operator-scaling.json, a lone operator.json stands for a scaling run of one size, so
    that the page can be drawn from what ``make bench-operator`` alone wrote.
    """
    runtime = read_json(directory / RUNTIME_JSON)
    scaling = read_json(directory / SCALING_JSON)
    if scaling is None:
        single = read_json(directory / OPERATOR_JSON)
        scaling = scaling_from_runs([single]) if single is not None else None
    return runtime, scaling


def budget(runtime: dict[str, Any]) -> float:
    """Sekoia's values-per-second budget the runtime was measured against."""
    return float(runtime.get("budget_values_per_second") or DEFAULT_BUDGET_VALUES_PER_SECOND)


def parse_target(text: str) -> tuple[str, float]:
    """('>=', 0.95) for ">= 0.95": the form runtime_bench writes its targets in."""
    comparison, _, number = text.strip().partition(" ")
    if comparison not in _COMPARISONS:
        raise ValueError(f"not a target: {text!r}")
    return comparison, float(number)


def meets(value: float | None, comparison: str, threshold: float) -> bool | None:
    """Whether ``value`` satisfies the target; None when there is no value to judge."""
    return None if value is None else _COMPARISONS[comparison](value, threshold)


def runtime_target(runtime: dict[str, Any], key: str) -> tuple[str, float] | None:
    """The parsed target runtime.json gives for ``key``, if any."""
    text = (runtime.get("targets") or {}).get(key)
    return parse_target(text) if text else None
