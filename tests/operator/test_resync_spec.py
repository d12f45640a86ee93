"""spec.opencti.resyncFrom / resyncToken -> the runtime's RUNTIME_RESYNC_* variables."""

from __future__ import annotations

import pytest
from operator_helpers import COLLECTION, STREAM, raw_spec
from sekoia_intel_operator import workload
from sekoia_intel_operator.spec import SpecError, parse_spec

REF = workload.SyncRef(namespace="intel", name="feed", uid="11111111-2222-4333-8444-555555555555")


def _env(**opencti: str) -> dict[str, str]:
    raw = raw_spec(opencti={"url": "https://opencti.example.org", "streamId": STREAM, **opencti})
    return {
        e["name"]: e["value"]
        for e in workload.runtime_env(REF, parse_spec(raw))
        if e["name"].startswith("RUNTIME_RESYNC_")
    }


def test_no_request_no_variable() -> None:
    assert _env() == {}
    assert COLLECTION  # the helper's spec is otherwise complete


def test_a_request_reaches_the_runtime_and_a_new_token_changes_the_template() -> None:
    first = _env(resyncFrom="2025-01-31T00:00:00Z", resyncToken="a")
    assert first == {"RUNTIME_RESYNC_FROM": "2025-01-31T00:00:00Z", "RUNTIME_RESYNC_TOKEN": "a"}
    assert _env(resyncFrom="2025-01-31T00:00:00Z", resyncToken="b") != first
    # Without a token the date names the request.
    assert _env(resyncFrom="2025-01-31T00:00:00Z")["RUNTIME_RESYNC_TOKEN"] == "2025-01-31T00:00:00Z"


def test_a_date_that_is_not_one_is_a_readable_error() -> None:
    raw = raw_spec(
        opencti={"url": "https://opencti.example.org", "streamId": STREAM, "resyncFrom": "yesterday"}
    )
    with pytest.raises(SpecError, match=r"spec\.opencti\.resyncFrom: .*RFC 3339"):
        parse_spec(raw)
