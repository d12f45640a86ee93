"""Shared per-request fields: validity rounding and description modes."""

from __future__ import annotations

from connector_runtime.config import DescriptionMode, ValidityGranularity
from connector_runtime.delivery.grouping import SharedFieldsPolicy, kill_chain_of, round_valid_until
from connector_runtime.stream.events import OPENCTI_EXTENSION


def test_valid_until_is_rounded_up_never_down() -> None:
    assert round_valid_until("2026-01-01T10:20:00Z", ValidityGranularity.DAY) == "2026-01-02T00:00:00Z"
    assert round_valid_until("2026-01-01T00:00:00Z", ValidityGranularity.DAY) == "2026-01-01T00:00:00Z"
    assert round_valid_until("2026-01-01T10:20:00.123Z", ValidityGranularity.HOUR) == "2026-01-01T11:00:00Z"
    assert round_valid_until("2026-01-01T10:20:00Z", ValidityGranularity.EXACT) == "2026-01-01T10:20:00Z"
    assert round_valid_until("2026-01-01T10:20:00Z", ValidityGranularity.WEEK) == "2026-01-05T00:00:00Z"
    assert round_valid_until("2026-01-05T00:00:00Z", ValidityGranularity.WEEK) == "2026-01-05T00:00:00Z"
    assert round_valid_until("2026-01-31T10:20:00Z", ValidityGranularity.MONTH) == "2026-02-01T00:00:00Z"
    assert round_valid_until("2026-12-02T00:00:00Z", ValidityGranularity.MONTH) == "2027-01-01T00:00:00Z"
    assert round_valid_until("2026-02-01T00:00:00Z", ValidityGranularity.MONTH) == "2026-02-01T00:00:00Z"
    assert round_valid_until("2026-02-01T00:00:00Z", ValidityGranularity.NONE) is None
    assert round_valid_until(None, ValidityGranularity.DAY) is None
    assert round_valid_until("soon", ValidityGranularity.DAY) == "soon"


def test_kill_chain_is_a_sorted_hashable_tuple() -> None:
    phases = [
        {"kill_chain_name": "b", "phase_name": "x"},
        {"kill_chain_name": "a", "phase_name": "y"},
        {"kill_chain_name": "a", "phase_name": "y"},
        {"bogus": 1},
    ]
    assert kill_chain_of({"kill_chain_phases": phases}) == (("a", "y"), ("b", "x"))


def test_stream_description_lets_indicators_share_a_request() -> None:
    policy = SharedFieldsPolicy(
        DescriptionMode.STREAM, ValidityGranularity.DAY, "https://cti", "live", "sync"
    )
    one = {"valid_until": "2026-01-01T10:00:00Z", "extensions": {OPENCTI_EXTENSION: {"id": "1"}}}
    two = {"valid_until": "2026-01-01T18:00:00Z", "extensions": {OPENCTI_EXTENSION: {"id": "2"}}}
    assert policy.for_value(one, "ipv4-addr.value") == policy.for_value(two, "ipv4-addr.value")
    assert policy.for_value(one, "ipv4-addr.value") != policy.for_value(one, "domain-name.value")


def test_indicator_url_description_is_the_seed_behaviour() -> None:
    policy = SharedFieldsPolicy(
        DescriptionMode.INDICATOR_URL, ValidityGranularity.EXACT, "https://cti", "live", "sync"
    )
    shared = policy.for_value({"extensions": {OPENCTI_EXTENSION: {"id": "42"}}}, "url.value")
    assert shared.description == "https://cti/dashboard/observations/indicators/42"
    none = SharedFieldsPolicy(DescriptionMode.NONE, ValidityGranularity.EXACT, "https://cti", "live", "sync")
    assert none.for_value({}, "url.value").description is None
