"""Readiness and the reported status while Sekoia's answers acknowledge nothing; the status
report itself never follows a redirect."""

from __future__ import annotations

import pytest
import requests

from connector_runtime.delivery.positions import PositionTracker
from connector_runtime.health import Health
from connector_runtime.progress import BearerToken, StatusApi, progress_snapshot
from testbed.emulators.sekoia.pytest_fixtures import LOCAL_NO_PROXY, running_emulator


def _connected() -> Health:
    health = Health()
    health.stream_seen()
    health.sekoia_state(True)
    return health


def test_a_block_fails_readiness_with_its_reason_until_its_source_clears_it() -> None:
    health = _connected()
    assert health.readiness() == (True, "ok")
    health.block("delivery", "SekoiaURLRedirects", "answered 301\nredirecting to https://x/api")
    ready, reason = health.readiness()
    assert not ready and reason == "SekoiaURLRedirects: answered 301 redirecting to https://x/api"
    since = health.blocked().since  # type: ignore[union-attr]
    health.block("delivery", "SekoiaURLRedirects", "again")
    assert health.blocked().since == since  # type: ignore[union-attr]  # same reason: same start
    health.block("preflight", "SekoiaCollectionNotFound", "404")
    health.unblock("delivery")
    assert health.readiness() == (False, "SekoiaCollectionNotFound: 404")
    health.unblock("preflight")
    assert health.readiness() == (True, "ok")
    assert health.liveness() == (True, "ok")  # blocked is not dead: restarting would not help


def test_the_status_snapshot_carries_the_block_and_clears_it_with_null() -> None:
    health = _connected()
    tracker = PositionTracker()
    assert progress_snapshot(tracker, blocked=None)["blocked"] is None  # a merge patch removes it
    health.block("delivery", "SekoiaUnexpectedAnswer", "200 with a text/html body")
    block = health.blocked()
    assert block is not None
    snapshot = progress_snapshot(tracker, blocked=block.as_status())
    assert snapshot["blocked"]["reason"] == "SekoiaUnexpectedAnswer"
    assert snapshot["blocked"]["message"] == "200 with a text/html body"
    assert snapshot["blocked"]["since"].endswith("Z")


def test_status_reporting_never_follows_a_redirect(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ServiceAccount token goes to the API server only: a redirect is an error, not a hop."""
    monkeypatch.setenv("NO_PROXY", LOCAL_NO_PROXY)
    with running_emulator() as elsewhere, running_emulator() as server:
        server.set_faults(redirect_location=f"{elsewhere.base_url}/steal", redirect_scope="all")
        api = StatusApi(server.base_url, BearerToken(lambda: ("sa-token-x", [])), True, None)
        with pytest.raises(requests.HTTPError) as info:
            api.patch_status("ns", "feed", {"status": {"progress": {}}})
        assert "redirected (301)" in str(info.value)
        assert [r["status"] for r in server.requests()] == [301]
        assert elsewhere.requests() == []  # nothing, and no token, reached the Location
