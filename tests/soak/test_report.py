"""The soak's report fits on one screen and says PASS only for a clean verdict."""

from __future__ import annotations

import json

from testbed.soak.faults import SCHEDULE, Injected
from testbed.soak.report import as_json, render
from testbed.soak.scenario import SoakResult, SoakSettings
from testbed.soak.traffic import Expectations
from testbed.soak.verify import judge, read_runtime_log


def _result(missing: bool) -> SoakResult:
    expect = Expectations(frozenset({"1.1.1.1", "2.2.2.2"}), {}, frozenset(), frozenset())
    present = [{"value": "1.1.1.1", "revoked": False}]
    if not missing:
        present.append({"value": "2.2.2.2", "revoked": False})
    result = SoakResult(
        settings=SoakSettings(),
        traffic_kinds={"create": 2},
        events_sent=2,
        indicator_events=2,
        faults=[Injected(f.kind, f.at * 300, f.hold, f"did {f.kind}") for f in SCHEDULE],
        verdict=judge(expect, present, read_runtime_log([]), []),
        timings={"total": 754.2, "set_up": 10, "stream_and_faults": 320, "settle": 400},
    )
    return result


def test_a_clean_run_passes_and_fits_one_screen() -> None:
    result = _result(missing=False)
    text = render(result)
    assert result.passed and text.startswith("SOAK PASS")
    assert "wall 12m34s" in text and f"{len(SCHEDULE)} injected" in text
    assert len(text.splitlines()) <= 40 and max(len(line) for line in text.splitlines()) <= 200
    assert json.loads(json.dumps(as_json(result), default=str))["passed"] is True


def test_a_lost_value_or_a_fault_not_injected_fails() -> None:
    lost = _result(missing=True)
    assert not lost.passed and "missing 1 (e.g. 2.2.2.2)" in render(lost)
    assert as_json(lost)["verdict"]["missing"] == {"count": 1, "examples": ["2.2.2.2"]}
    not_injected = _result(missing=False)
    not_injected.faults[0].ok = False
    assert not not_injected.passed and "1 could not be injected" in render(not_injected)
