"""Stream messages become push / revoke / ignore decisions; malformed input never raises."""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connector_runtime import metrics
from connector_runtime.stream.events import OPENCTI_EXTENSION, Action, opencti_url_of, parse_event
from connector_runtime.stream.listener import report_undeliverable


def _payload(obj: dict, **extra: object) -> str:
    return json.dumps({"version": "4", "type": "create", "data": obj, **extra})


INDICATOR = {
    "id": "indicator--1",
    "type": "indicator",
    "pattern_type": "stix",
    "pattern": "[ipv4-addr:value = '1.2.3.4']",
    "revoked": False,
}


def test_create_and_update_push() -> None:
    assert parse_event("create", "1-0", _payload(INDICATOR)).action is Action.PUSH
    assert parse_event("update", "1-0", _payload(INDICATOR)).action is Action.PUSH


def test_delete_and_revoked_update_revoke() -> None:
    assert parse_event("delete", "1-0", _payload(INDICATOR)).action is Action.REVOKE
    revoked = {**INDICATOR, "revoked": True}
    assert parse_event("update", "1-0", _payload(revoked)).action is Action.REVOKE


def test_update_remembers_the_previous_pattern_from_the_reverse_patch() -> None:
    context = {
        "reverse_patch": [{"op": "replace", "path": "/pattern", "value": "[ipv4-addr:value = '9.9.9.9']"}]
    }
    event = parse_event("update", "1-0", _payload(INDICATOR, context=context))
    assert event.previous_pattern == "[ipv4-addr:value = '9.9.9.9']"


def test_everything_else_is_ignored_with_a_reason() -> None:
    cases = {
        ("heartbeat", "x"): "event-heartbeat",
        ("create", "{not json"): "malformed-json",
        ("create", json.dumps({"data": "x"})): "malformed-payload",
        ("create", _payload({"type": "malware", "id": "malware--1"})): "not-an-indicator",
        ("create", _payload({**INDICATOR, "pattern_type": "yara"})): "not-stix-pattern",
        ("merge", _payload(INDICATOR)): "merge",
    }
    for (name, data), reason in cases.items():
        event = parse_event(name, "1-0", data)
        assert event.action is Action.IGNORE
        assert event.ignore_reason == reason


def test_opencti_url_of_uses_the_internal_id() -> None:
    obj = {**INDICATOR, "extensions": {OPENCTI_EXTENSION: {"id": "abc"}}}
    assert (
        opencti_url_of(obj, "https://cti.example/")
        == "https://cti.example/dashboard/observations/indicators/abc"
    )
    assert opencti_url_of(INDICATOR, "https://cti.example") is None


@given(st.text(), st.one_of(st.none(), st.text(), st.binary()))
def test_parse_event_never_raises(name: str, data: str | bytes | None) -> None:
    event = parse_event(name, "1-0", data)
    assert event.action in set(Action)
    if event.action is Action.IGNORE:
        assert event.ignore_reason


def test_an_ignored_indicator_is_reported_not_dropped_quietly(caplog: pytest.LogCaptureFixture) -> None:
    yara = {
        **INDICATOR,
        "id": "indicator--yara",
        "pattern_type": "yara",
        "pattern": "rule x { condition: true }",
    }
    event = parse_event("create", "1-0", _payload(yara))
    assert event.action is Action.IGNORE and event.indicator_id == "indicator--yara"
    before = _skipped("not-stix-pattern")
    with caplog.at_level(logging.INFO, logger="connector_runtime.stream.listener"):
        report_undeliverable(event)
    assert _skipped("not-stix-pattern") == before + 1
    record = next(r for r in caplog.records if r.getMessage() == "comparisons skipped")
    assert record.indicator == "indicator--yara"  # type: ignore[attr-defined]
    assert record.skipped == [{"comparison": "yara", "reason": "not-stix-pattern"}]  # type: ignore[attr-defined]
    # Objects that are not indicators carry nothing to report.
    assert parse_event("create", "1-0", _payload({"type": "malware", "id": "malware--1"})).indicator is None


def _skipped(reason: str) -> float:
    value = metrics.REGISTRY.get_sample_value("sis_values_skipped_total", {"reason": reason})
    return value or 0.0
