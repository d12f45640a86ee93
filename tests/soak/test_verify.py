"""The soak's verdict finds every kind of difference between the end state and the model."""

from __future__ import annotations

import json

from testbed.soak.traffic import Expectations
from testbed.soak.verify import judge, read_runtime_log, status_problems

EXPECT = Expectations(
    active=frozenset({"1.1.1.1", "a.example.com"}),
    skipped={"indicator--bad": frozenset({"malformed-pattern"})},
    rejected=frozenset({"bücher.example.de"}),
    never_active=frozenset({"203.0.113.1"}),
)


def _log(*entries: dict) -> list[str]:
    return [json.dumps(e, ensure_ascii=False) for e in entries]


GOOD_LOG = _log(
    {
        "message": "comparisons skipped",
        "indicator": "indicator--bad",
        "skipped": [{"reason": "malformed-pattern"}],
    },
    {"message": "value rejected by Sekoia", "value": "bücher.example.de", "reason": "not a valid domain"},
)


def _indicators(*values: str, revoked: tuple[str, ...] = ()) -> list[dict]:
    return [{"value": v, "revoked": False} for v in values] + [{"value": v, "revoked": True} for v in revoked]


def test_exact_state_with_every_refusal_accounted_for_passes() -> None:
    facts = read_runtime_log(["not json", *GOOD_LOG, "{broken"])
    assert facts.unparsable == 2
    verdict = judge(EXPECT, _indicators("1.1.1.1", "a.example.com", revoked=("9.9.9.9",)), facts, [])
    assert verdict.ok and verdict.present_active == 2


def test_missing_and_wrongly_active_values_fail() -> None:
    facts = read_runtime_log(GOOD_LOG)
    verdict = judge(EXPECT, _indicators("1.1.1.1", "203.0.113.1"), facts, [])
    assert not verdict.ok
    assert verdict.missing == ["a.example.com"] and verdict.wrongly_active == ["203.0.113.1"]


def test_unreported_or_unexpected_refusals_fail() -> None:
    active = _indicators("1.1.1.1", "a.example.com")
    silent = judge(EXPECT, active, read_runtime_log([]), [])
    assert silent.skipped_unaccounted == ["indicator--bad"]
    assert silent.rejected_unaccounted == ["bücher.example.de"] and not silent.ok
    wrong_reason = _log(
        {"message": "comparisons skipped", "indicator": "indicator--bad", "skipped": [{"reason": "negated"}]},
        {"message": "comparisons skipped", "indicator": "indicator--other", "skipped": [{"reason": "x"}]},
        {"message": "value rejected by Sekoia", "value": "bücher.example.de", "reason": " "},
        {"message": "value rejected by Sekoia", "value": "1.1.1.1", "reason": "quota"},
    )
    verdict = judge(EXPECT, active, read_runtime_log(wrong_reason), [])
    assert verdict.skipped_unaccounted == ["indicator--bad"]
    assert verdict.unexpected_skips == ["indicator--other"]
    assert verdict.unexpected_rejections == ["1.1.1.1"]
    assert verdict.refused_without_reason == ["bücher.example.de"]


def test_status_must_be_ready_current_and_caught_up() -> None:
    resource = {
        "metadata": {"generation": 2},
        "status": {
            "observedGeneration": 2,
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "Stalled", "status": "False"}],
            "progress": {"pendingEvents": 0, "lastCommittedEventId": "1700000000000-3"},
        },
    }
    assert status_problems(resource, "1700000000000-3") == []
    assert status_problems(resource, "1700000000000-2") == []  # heartbeats may commit further
    blocked = {**resource["status"]["progress"], "blocked": {"reason": "SekoiaURLRedirects", "message": "m"}}
    still = status_problems({**resource, "status": {**resource["status"], "progress": blocked}}, "1-0")
    assert still == ["progress.blocked is still set (SekoiaURLRedirects)"]
    behind = status_problems(resource, "1700000000001-0")
    assert len(behind) == 1 and "behind" in behind[0]
    stale = {"metadata": {"generation": 3}, "status": {**resource["status"], "conditions": []}}
    problems = status_problems(stale, "1-0")
    assert any("Ready is absent" in p for p in problems) and any("observedGeneration" in p for p in problems)
    assert (
        judge(EXPECT, _indicators("1.1.1.1", "a.example.com"), read_runtime_log(GOOD_LOG), problems).ok
        is False
    )
