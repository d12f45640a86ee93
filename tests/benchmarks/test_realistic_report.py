"""The realistic-mix section of the benchmark page and its charts, from small synthetic results."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import realistic_bench  # noqa: E402
import realistic_report  # noqa: E402
import results  # noqa: E402

COLLECTION = realistic_bench.rb.COLLECTION


def _request(t: float, method: str, path: str, values: int = 0, status: int = 200) -> dict[str, Any]:
    return {"time": t, "duration": 0.1, "method": method, "path": path, "status": status, "values": values}


def test_push_figures_count_revocations_against_the_budget() -> None:
    add = f"/v2/inthreat/ioc-collections/{COLLECTION}/indicators"
    log = [_request(0.0, "GET", f"/v2/inthreat/ioc-collections/{COLLECTION}")]  # start-up check: ignored
    log += [_request(1 + i * 0.2, "POST", add, values=100) for i in range(10)]  # 2 s of full pushes
    log += [_request(3 + i * 0.2, "DELETE", f"{add}/indicator--{i}") for i in range(5)]  # 1 s of revokes
    figures = realistic_bench.push_figures(log)
    assert figures["push_requests"] == 10 and figures["values_pushed"] == 1000
    assert figures["other_requests"] == 5
    assert figures["push_requests_per_value"] == 0.01
    # 15 requests in 2.9 s of a 5/s budget (~1.03 used), pushes full: share ~1.
    assert 0.95 <= figures["share_of_budget"] <= 1.1
    assert figures["values_per_second"] < 500  # the revocations took their share of the time


def _doc(label: str, vpr: float, p95: float) -> dict[str, Any]:
    bulk = {
        "events": 1000,
        "values_per_push_request": vpr,
        "push_requests_per_value": round(1 / vpr, 5),
        "share_of_budget": vpr / 100,
        "values_per_second": vpr * 5,
        "timeline": [{"t": t, "values_acked": int(t * vpr * 5)} for t in range(10)],
        "workload": {"operations": {"create": 1000}, "distinct_kill_chains": 9},
    }
    live = {
        "delay_p95_seconds": p95,
        "push_requests_per_value": 0.5,
        "delays_seconds": [p95 * i / 20 for i in range(21)],
    }
    burst = {"share_of_budget": vpr / 100, "acked_over_time": [[t, t * vpr * 5] for t in range(5)]}
    return {
        "label": label,
        "scenarios": {"bulk": bulk, "live-2": live, "live-8": live, "burst": burst},
        "projection_500k_minutes": 500_000 / (vpr * 5) / 60,
    }


def test_the_section_compares_before_and_after_with_charts(tmp_path: Path) -> None:
    (tmp_path / realistic_report.BEFORE_JSON).write_text(json.dumps(_doc("before", 7.3, 14.0)))
    (tmp_path / realistic_report.AFTER_JSON).write_text(json.dumps(_doc("after", 98.0, 1.5)))
    (tmp_path / results.PAGE).write_text("# Benchmarks\n")
    drawn = realistic_report.append(tmp_path)
    assert all(path is not None and path.read_bytes().startswith(b"\x89PNG") for path in drawn.values())
    page = (tmp_path / results.PAGE).read_text()
    assert page.startswith("# Benchmarks\n")
    assert "| bulk | values per push request | 7.3 | 98.0 |  |" in page
    assert "| live-8 | p95 event -> ack, s | 14.0 | 1.5 | <= 5 |" in page
    for path in drawn.values():
        assert path is not None and f"]({path.name})" in page


def test_nothing_measured_leaves_the_page_alone(tmp_path: Path) -> None:
    (tmp_path / results.PAGE).write_text("# Benchmarks\n")
    drawn = realistic_report.append(tmp_path)
    assert set(drawn.values()) == {None}
    assert (tmp_path / results.PAGE).read_text() == "# Benchmarks\n"
