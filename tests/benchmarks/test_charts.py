"""The charts and the page of ``make bench``, built from small synthetic results (no benchmark runs)."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# benchmarks/ is a folder of scripts, not a package: its modules import each other by name.
sys.path.insert(0, str(ROOT / "benchmarks"))

import charts  # noqa: E402
import report  # noqa: E402
import results  # noqa: E402
import run_all  # noqa: E402
import runtime_bench  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _runtime() -> dict[str, Any]:
    # 20 s at 0.5 s steps: ready at 1.5 s, then 500 values/s, with 3 start-up requests.
    timeline = []
    for step in range(41):
        t = step * 0.5
        values = max(0, int((t - 2.0) * 500))
        timeline.append(
            {
                "t": t,
                "values_acked": values,
                "api_requests": (3 + values // 100) if t >= 1.0 else 0,
                "rss_mb": min(40.0 + 10 * t, 97.5),
                "cpu_seconds": 0.2 * t,
            }
        )
    return {
        "benchmark": "connector-runtime bulk replay",
        "when": "2026-01-02T03:04:05Z",
        "machine": {
            "cpus": 2,
            "memory_mb": 8192,
            "cpu_model": "Synthetic CPU",
            "python": "3.11.7",
            "platform": "Linux-test",
        },
        "sekoia_latency_seconds": 0.15,
        "sekoia_rate_limiter": "5 requests/s, bucket",
        "workload": "synthetic",
        "conversion_events_per_second_one_core": 61234,
        "budget_values_per_second": 500,
        "events": 9000,
        "values_expected": 9000,
        "values_pushed": 9000,
        "push_seconds": 18.7,
        "values_per_second": 481.3,
        "share_of_budget": 0.9626,
        "api_requests": 93,
        "api_requests_per_value": 0.01033,
        "http_429": 0,
        "cpu_seconds_per_1000_events": 0.444,
        "peak_rss_mb": 97.6,
        "time_to_ready_seconds": 1.48,
        "sigterm_exit_code": 0,
        "sigterm_seconds": 0.03,
        "api_requests_by_status": {"200": 93},
        "values_per_push_request": {"37": 1, "64": 1, "100": 89},
        "timeline_interval_seconds": 0.5,
        "timeline": timeline,
        "targets": dict(runtime_bench.TARGETS),
    }


def _operator_run(count: int, seconds: float, peak: float) -> dict[str, Any]:
    steps = int(seconds) + 1
    timeline = [
        {
            "t": float(i),
            "deployments": min(count, count * (i + 1) // steps),
            "pods_running": min(count, count * i // steps),
            "ready": min(count, count * i // (steps - 1)),
            "operator_rss_mb": round(90 + (peak - 90) * i / (steps - 1)),
        }
        for i in range(steps)
    ]
    return {
        "resources": count,
        "all_ready": True,
        "ready": count,
        "seconds_to_create": 0.4,
        "seconds_until_all_ready": seconds,
        "operator_peak_rss_mb": peak,
        "cpu_seconds_by_process": {"operator": 3.7, "kube-apiserver": 9.1},
        "seconds_until_all_deployments": seconds - 2,
        "seconds_until_all_pods_running": seconds - 1,
        "timeline_every_10th_sample": timeline[::10],
        "operator_rss_mb_before_creates": 88.2,
        "timeline": timeline,
        "targets": {"seconds": 120.0, "rss_mb": 250.0},
        "meets_targets": True,
        "cpus": 2,
        "memory_mb": 8192,
        "python": "3.11.7",
        "measured_at": "2026-01-02T04:05:06Z",
    }


def _scaling() -> dict[str, Any]:
    return results.scaling_from_runs([_operator_run(40, 23.5, 161.4), _operator_run(15, 7.5, 104.8)])


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, path
    assert len(data) > 10_000, f"{path} is suspiciously small ({len(data)} bytes)"
    # IHDR is the first chunk: its width and height follow the chunk's length and type.
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 600 and height >= 300, (path, width, height)


def test_throughput_series_is_the_rate_over_the_window() -> None:
    timeline = [{"t": i * 0.5, "values_acked": 250 * i} for i in range(20)]
    series = charts.throughput_series(timeline, window=2.0)
    assert [round(rate) for _, rate in series] == [500] * 19


def test_requests_per_value_starts_with_the_first_value() -> None:
    timeline = [
        {"t": 0.0, "values_acked": 0, "api_requests": 2},
        {"t": 0.5, "values_acked": 100, "api_requests": 3},
        {"t": 1.0, "values_acked": 300, "api_requests": 5},
    ]
    assert charts.requests_per_value_series(timeline) == [(0.5, 0.03), (1.0, 5 / 300)]


def test_every_chart_and_the_page(tmp_path: Path) -> None:
    runtime, scaling = _runtime(), _scaling()
    drawn = charts.draw_all(runtime, scaling, tmp_path)
    assert set(drawn) == set(results.CHARTS)
    for key, path in drawn.items():
        assert path == tmp_path / results.CHARTS[key]
        _assert_png(path)
    page = report.write(tmp_path, runtime, scaling, drawn).read_text()
    for name in results.CHARTS.values():
        assert f"]({name})" in page, name
    assert [run["resources"] for run in scaling["runs"]] == [15, 40]
    for number in ("481.3 values/s", "96.3%", "0.01033", "61,234 events/s", "97.6 MB", "1.48 s"):
        assert number in page, number
    for number in ("23.5 s", "161.4 MB", "| 15 | 0.4 | 5.5 | 6.5 | 7.5 | 104.8 | 3.7 | yes |"):
        assert number in page, number
    targets = ("≥ 95% of the budget (475 values/s)", "≤ 0.011", "≤ 120 MB", "≤ 3 s", "≤ 120 s", "≤ 250 MB")
    for target in targets:
        assert target in page, target
    assert "2 cores" in page and "8.0 GB RAM" in page and "Python 3.11.7" in page
    assert "2026-01-02 03:04:05 UTC" in page
    assert "make bench" in page and "--charts-only" in page and "BENCH_ARGS" in page
    assert "**no**" not in page


def test_a_missed_target_is_marked(tmp_path: Path) -> None:
    runtime = {**_runtime(), "share_of_budget": 0.728, "values_per_second": 364.0}
    page = report.render(runtime, None, {})
    throughput = next(line for line in page.splitlines() if "Throughput" in line)
    assert throughput.endswith("| **no** |")


def test_charts_only_redraws_from_the_json_in_place(tmp_path: Path) -> None:
    (tmp_path / results.RUNTIME_JSON).write_text(json.dumps(_runtime()))
    (tmp_path / results.SCALING_JSON).write_text(json.dumps(_scaling()))
    assert run_all.main(["--charts-only", "--output-dir", str(tmp_path)]) == 0
    for name in results.CHARTS.values():
        _assert_png(tmp_path / name)
    assert "481.3 values/s" in (tmp_path / results.PAGE).read_text()


def test_results_without_timelines_leave_those_charts_out(tmp_path: Path) -> None:
    # runtime.json and operator.json as the scripts wrote them before they recorded timelines.
    runtime = {k: v for k, v in _runtime().items() if k not in ("timeline", "values_per_push_request")}
    operator_run = {k: v for k, v in _operator_run(500, 62.3, 238.7).items() if k != "timeline"}
    (tmp_path / results.RUNTIME_JSON).write_text(json.dumps(runtime))
    (tmp_path / results.OPERATOR_JSON).write_text(json.dumps(operator_run))
    stale = tmp_path / results.CHARTS["throughput"]
    stale.write_bytes(PNG_SIGNATURE)
    drawn = run_all.publish(tmp_path)
    assert drawn["throughput"] is None and drawn["requests_per_value"] is None and drawn["rss"] is None
    assert not stale.exists()
    _assert_png(tmp_path / results.CHARTS["operator_scaling"])
    page = (tmp_path / results.PAGE).read_text()
    assert page.count("*No chart") == 3
    assert "62.3 s" in page and "238.7 MB" in page


@pytest.mark.parametrize("text", ["50", "500,50,100", "10, 20"])
def test_sizes_are_sorted_numbers(text: str) -> None:
    assert run_all._sizes(text) == sorted({int(part) for part in text.split(",")})
