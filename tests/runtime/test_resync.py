"""Planning a resync from a request and the stored stream state (pure)."""

from __future__ import annotations

import pytest

from connector_runtime.config import ConfigError, load_settings
from connector_runtime.resync import ResyncRecord, ended, plan

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
COMMITTED = "1790000000000-3"  # 2026-09-21T14:13:20Z


def test_no_request_or_an_honoured_token_plans_nothing() -> None:
    assert plan(None, None, {"start_from": COMMITTED}, NOW) is None
    done = ResyncRecord("t1", "2025-01-01T00:00:00.000Z", "x", "y", "z").as_state()
    assert plan("t1", "2025-01-01T00:00:00Z", {"start_from": COMMITTED, "resync": done}, NOW) is None
    # The same date with a new token is a new request.
    assert plan("t2", "2025-01-01T00:00:00Z", {"start_from": COMMITTED, "resync": done}, NOW) is not None


def test_the_window_ends_at_the_committed_position_or_now() -> None:
    record = plan("t1", "2025-01-01T00:00:00Z", {"start_from": COMMITTED}, NOW)
    assert record is not None
    assert record.start_id == "1735689600000-0"
    assert record.until == "2026-09-21T14:13:20.000Z"  # the committed position's time
    fresh = plan(None, "2025-01-01", {}, NOW)
    assert fresh is not None and fresh.token == "2025-01-01" and fresh.until == "2027-01-15T08:00:00.000Z"
    assert not ended(record, "1789999999999-0") and not ended(record, None)
    assert ended(record, COMMITTED) and ended(record, "1790000000001-0")
    assert ResyncRecord.from_state(record.as_state()) == record
    assert record.status("1").get("state") == "InProgress"


def test_a_bad_date_is_one_line_naming_the_variable() -> None:
    env = {
        "OPENCTI_URL": "https://opencti.example.org",
        "OPENCTI_TOKEN": "t",
        "CONNECTOR_ID": "c",
        "CONNECTOR_LIVE_STREAM_ID": "live",
        "SEKOIA_INTEL_APIKEY": "k",
        "SEKOIA_INTEL_IOC_COLLECTION_UUID": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9",
        "RUNTIME_RESYNC_FROM": "last tuesday",
    }
    with pytest.raises(ConfigError, match=r"^RUNTIME_RESYNC_FROM must be an RFC 3339 date-time"):
        load_settings(environ=env)
