"""Tests of the Sekoia IOC-collections API emulator itself, over real HTTP."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from testbed.emulators.sekoia import EmulatorOptions, RemoteEmulator, SekoiaEmulator
from testbed.emulators.sekoia.pytest_fixtures import (
    COLLECTION_UUID,
    LOCAL_NO_PROXY,
    TEST_KEY,
    running_emulator,
)

PREFIX = "/v2/inthreat/ioc-collections"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", LOCAL_NO_PROXY)
    monkeypatch.setenv("no_proxy", LOCAL_NO_PROXY)


@pytest.fixture
def emu() -> Iterator[SekoiaEmulator]:
    with running_emulator() as emulator:
        yield emulator


class Api:
    """Tiny raw HTTP helper bound to one emulator and key."""

    def __init__(
        self, emulator: SekoiaEmulator, key: str | None = TEST_KEY, cid: str = COLLECTION_UUID
    ) -> None:
        self.base = emulator.base_url
        self.cid = cid
        self.session = requests.Session()
        if key is not None:
            self.session.headers["Authorization"] = f"Bearer {key}"

    def url(self, suffix: str = "", cid: str | None = None) -> str:
        return f"{self.base}{PREFIX}/{cid or self.cid}{suffix}"

    def get_collection(self, cid: str | None = None) -> requests.Response:
        return self.session.get(self.url(cid=cid), timeout=5)

    def add(self, values: list[str], **defaults: Any) -> requests.Response:
        body: dict[str, Any] = {"indicators": [{"value": v} for v in values]}
        if defaults:
            body["default_fields"] = defaults
        return self.session.post(self.url("/indicators"), json=body, timeout=5)

    def add_text(self, text: str, **fields: Any) -> requests.Response:
        return self.session.post(self.url("/indicators/text"), json={"indicators": text, **fields}, timeout=5)

    def search(self, term: str, limit: int = 100, offset: int = 0) -> requests.Response:
        params: dict[str, str | int] = {"term": term, "limit": limit, "offset": offset}
        return self.session.get(self.url("/indicators"), params=params, timeout=5)

    def revoke(self, indicator_id: str) -> requests.Response:
        return self.session.delete(self.url(f"/indicators/{indicator_id}"), timeout=5)


# -- auth, ids, routing --------------------------------------------------------------------------------


def test_missing_and_invalid_keys_get_401(emu: SekoiaEmulator) -> None:
    for key in (None, "wrong-key"):
        answer = Api(emu, key=key).get_collection()
        assert answer.status_code == 401
        assert set(answer.json()) == {"message", "code"}


def test_permissions_are_checked_per_method() -> None:
    keys = {"viewer": {"permissions": ["view"]}, "writer": {"permissions": ["manage"]}}
    with running_emulator(api_keys=keys) as emulator:
        assert Api(emulator, "viewer").get_collection().status_code == 200
        assert Api(emulator, "viewer").add(["1.2.3.4"]).status_code == 403
        assert Api(emulator, "writer").get_collection().status_code == 403
        assert Api(emulator, "writer").add(["1.2.3.4"]).status_code == 200


def test_unknown_collection_is_404_with_sekoia_code(emu: SekoiaEmulator) -> None:
    answer = Api(emu).get_collection(cid=str(uuid.uuid4()))
    assert answer.status_code == 404
    assert answer.json() == {"message": "IOC Collection not found", "code": "INTHREAT2500"}
    assert Api(emu).get_collection(cid="not-a-uuid").status_code == 404


@pytest.mark.parametrize(
    ("form", "bare_ok", "prefixed_ok"),
    [("both", True, True), ("uuid", True, False), ("prefixed", False, True)],
)
def test_collection_id_form_option(form: str, bare_ok: bool, prefixed_ok: bool) -> None:
    with running_emulator(collection_id_form=form) as emulator:
        api = Api(emulator)
        assert (api.get_collection(COLLECTION_UUID).status_code == 200) is bare_ok
        prefixed = "ioc-collection--" + COLLECTION_UUID.upper()
        assert (api.get_collection(prefixed).status_code == 200) is prefixed_ok


def test_collection_answer_describes_it(emu: SekoiaEmulator) -> None:
    Api(emu).add(["1.2.3.4", "example.com"])
    body = Api(emu).get_collection().json()
    assert body["id"] == "ioc-collection--" + COLLECTION_UUID
    assert body["indicators_count"] == 2


def test_unknown_route_and_method(emu: SekoiaEmulator) -> None:
    api = Api(emu)
    assert api.session.get(f"{emu.base_url}/v2/other", timeout=5).status_code == 404
    assert api.session.put(api.url("/indicators"), json={}, timeout=5).status_code == 405


# -- structured add -----------------------------------------------------------------------------------


def test_structured_add_answers_stix_like_items(emu: SekoiaEmulator) -> None:
    answer = Api(emu).add(
        ["1.2.3.4", "example.com", SHA256],
        valid_until="2031-01-01T00:00:00Z",
        description="from OpenCTI",
        kill_chain_phases=[{"kill_chain_name": "mitre-attack", "phase_name": "execution"}],
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["total"] == 3
    by_name = {item["name"]: item for item in body["items"]}
    ip = by_name["1.2.3.4"]
    assert ip["id"].startswith("indicator--")
    assert ip["pattern"] == "[ipv4-addr:value = '1.2.3.4']"
    assert ip["revoked"] is False
    assert ip["valid_until"] == "2031-01-01T00:00:00Z"
    assert ip["valid_from"]
    assert ip["x_ic_observable_types"] == ["ipv4-addr"]
    assert by_name[SHA256]["pattern"] == f"[file:hashes.'SHA-256' = '{SHA256}']"
    state = {i["value"]: i for i in emu.indicators()}
    assert state["example.com"]["type"] == "domain-name.value"
    assert state["example.com"]["description"] == "from OpenCTI"
    assert state["example.com"]["kill_chain_phases"] == [
        {"kill_chain_name": "mitre-attack", "phase_name": "execution"}
    ]


@pytest.mark.parametrize("count", [0, 101])
@pytest.mark.parametrize("status", [400, 422])
def test_structured_add_takes_1_to_100_values(count: int, status: int) -> None:
    with running_emulator(validation_status=status) as emulator:
        answer = Api(emulator).add([f"10.0.{i // 256}.{i % 256}" for i in range(count)])
        assert answer.status_code == status
        assert set(answer.json()) == {"message", "code"}
        assert Api(emulator).add([f"10.0.0.{i}" for i in range(100)]).status_code == 200


@pytest.mark.parametrize(
    ("sekoia_type", "good", "bad"),
    [
        ("ipv4-addr.value", "192.0.2.10", "192.0.2.0/24"),
        ("ipv4-addr.value", "198.51.100.1", "2001:db8::1"),
        ("ipv6-addr.value", "2001:db8::1", "2001:db8::/32"),
        ("domain-name.value", "evil.example.org", "not a domain"),
        ("url.value", "http://evil.example.org/x?y=1", "evil.example.org/x"),
        ("email-addr.value", "bad@evil.example.org", "bad@@evil"),
        ("file.hashes", "d41d8cd98f00b204e9800998ecf8427e", "d41d8cd98f00b204e9800998ecf8427"),
        (
            "file.hashes",
            "da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "zz39a3ee5e6b4b0d3255bfef95601890afd80709",
        ),
    ],
)
def test_values_are_validated_against_the_declared_type(
    emu: SekoiaEmulator, sekoia_type: str, good: str, bad: str
) -> None:
    api = Api(emu)
    assert api.add([good], type=sekoia_type).status_code == 200
    refused = api.add([bad], type=sekoia_type)
    assert refused.status_code == 400
    assert bad in refused.json()["message"]


def test_types_are_inferred_without_default_type_and_cidr_is_refused(emu: SekoiaEmulator) -> None:
    values = ["192.0.2.1", "2001:db8::2", "a.example.net", "https://x.example.net/p", "u@example.net", SHA256]
    assert Api(emu).add(values).status_code == 200
    types = {i["value"]: i["type"] for i in emu.indicators()}
    assert types == {
        "192.0.2.1": "ipv4-addr.value",
        "2001:db8::2": "ipv6-addr.value",
        "a.example.net": "domain-name.value",
        "https://x.example.net/p": "url.value",
        "u@example.net": "email-addr.value",
        SHA256: "file.hashes",
    }
    answer = Api(emu).add(["10.0.0.0/8"])
    assert answer.status_code == 400
    assert "CIDR" in answer.json()["message"]


def test_one_bad_value_refuses_the_whole_request(emu: SekoiaEmulator) -> None:
    assert Api(emu).add(["192.0.2.1", "nope nope", "192.0.2.2"]).status_code == 400
    assert emu.active_values() == set()


def test_field_validation(emu: SekoiaEmulator) -> None:
    api = Api(emu)
    assert api.add(["192.0.2.1"], description="x" * 501).status_code == 400
    assert api.add(["192.0.2.1"], valid_until="tomorrow").status_code == 400
    body = {"indicators": [{"value": "192.0.2.1", "valid_from": "2030-01-01T00:00:00Z"}]}
    body["default_fields"] = {"valid_until": "2029-01-01T00:00:00Z"}  # type: ignore[assignment]
    assert api.session.post(api.url("/indicators"), json=body, timeout=5).status_code == 400
    assert api.session.post(api.url("/indicators"), data=b"{not json", timeout=5).status_code == 400
    assert api.add(["192.0.2.1"], kill_chain_phases=[{"phase_name": "x"}]).status_code == 400


def test_readding_an_active_value_updates_it_in_place(emu: SekoiaEmulator) -> None:
    api = Api(emu)
    first = api.add(["Example.COM"]).json()["items"][0]
    second = api.add(["example.com"], valid_until="2032-01-01T00:00:00Z").json()["items"][0]
    assert first["id"] == second["id"]
    [indicator] = emu.indicators()
    assert indicator["valid_until"] == "2032-01-01T00:00:00Z"
    assert emu.counts()["active"] == 1


@pytest.mark.parametrize("mode", ["sync_202", "async"])
def test_structured_add_status_modes(mode: str) -> None:
    with running_emulator(structured_add_mode=mode) as emulator:
        answer = Api(emulator).add(["192.0.2.7"])
        assert answer.status_code == 202
        if mode == "async":
            assert set(answer.json()) == {"task_id"}
            assert emulator.wait_tasks(5)
        else:
            assert answer.json()["items"][0]["name"] == "192.0.2.7"
        assert emulator.active_values() == {"192.0.2.7"}


# -- text add ------------------------------------------------------------------------------------------


def test_text_add_is_asynchronous_and_skips_bad_lines() -> None:
    with running_emulator(async_delay=0.2) as emulator:
        answer = Api(emulator).add_text("192.0.2.1\n\nnot valid\nevil.example.org\n", description="d")
        assert answer.status_code == 200
        task_id = answer.json()["task_id"]
        assert set(answer.json()) == {"task_id"}
        assert emulator.active_values() == set()  # not applied yet
        assert emulator.wait_tasks(5)
        assert emulator.active_values() == {"192.0.2.1", "evil.example.org"}
        [task] = [t for t in emulator.tasks() if t["task_id"] == task_id]
        assert task["applied"] == 2
        assert [s["value"] for s in task["skipped"]] == ["not valid"]


def test_text_add_format_forces_the_type(emu: SekoiaEmulator) -> None:
    Api(emu).add_text("192.0.2.1\nevil.example.org", format="domain-name.value")
    assert emu.wait_tasks(5)
    assert emu.active_values() == {"evil.example.org"}
    assert Api(emu).add_text("x", format="mac-addr.value").status_code == 400
    assert Api(emu).add_text("x", description="y" * 501).status_code == 400


# -- revoke and search ---------------------------------------------------------------------------------


def test_revoke_marks_revoked_and_unknown_is_404(emu: SekoiaEmulator) -> None:
    api = Api(emu)
    indicator_id = api.add(["192.0.2.1"]).json()["items"][0]["id"]
    answer = api.revoke(indicator_id)
    assert answer.status_code == 200
    assert answer.json()["revoked"] is True
    assert emu.indicators()[0]["revoked"] is True
    assert emu.active_values() == set()
    assert api.revoke(f"indicator--{uuid.uuid4()}").status_code == 404


@pytest.mark.parametrize("mode", ["reactivate", "create_new", "reject"])
def test_readding_a_revoked_value(mode: str) -> None:
    with running_emulator(readd_revoked=mode) as emulator:
        api = Api(emulator)
        old_id = api.add(["192.0.2.1"]).json()["items"][0]["id"]
        api.revoke(old_id)
        answer = api.add(["192.0.2.1"])
        states = emulator.indicators()
        if mode == "reactivate":
            assert answer.json()["items"][0]["id"] == old_id
            assert [s["revoked"] for s in states] == [False]
        elif mode == "create_new":
            assert answer.json()["items"][0]["id"] != old_id
            assert [s["revoked"] for s in states] == [True, False]
        else:
            assert answer.status_code == 400
            assert "revoked" in answer.json()["message"]
            assert [s["revoked"] for s in states] == [True]


def test_search_pages_with_has_more_and_fuzzy_term(emu: SekoiaEmulator) -> None:
    api = Api(emu)
    for start in range(0, 250, 100):
        api.add([f"h{i}.evil.example.org" for i in range(start, min(start + 100, 250))])
    api.add(["other.example.com"])
    pages, offset = [], 0
    while True:
        body = api.search("EVIL.example", limit=100, offset=offset).json()
        pages.append(len(body["items"]))
        offset += len(body["items"])
        if not body["has_more"]:
            break
    assert pages == [100, 100, 50]
    assert body["total"] == 250
    assert api.search("x", limit=101).status_code == 400
    assert api.search("x", limit=0).status_code == 400


@pytest.mark.parametrize("include", [True, False])
def test_search_includes_revoked_option(include: bool) -> None:
    with running_emulator(search_includes_revoked=include) as emulator:
        api = Api(emulator)
        items = api.add(["192.0.2.1", "192.0.2.2"]).json()["items"]
        api.revoke(items[0]["id"])
        found = api.search("192.0.2").json()["items"]
        assert [(i["name"], i["revoked"]) for i in found] == (
            [("192.0.2.1", True), ("192.0.2.2", False)] if include else [("192.0.2.2", False)]
        )


# -- quota ---------------------------------------------------------------------------------------------


def test_quota_per_community_spans_collections() -> None:
    other = str(uuid.uuid4())
    with running_emulator(collections=[COLLECTION_UUID, other], quota=5) as emulator:
        assert Api(emulator).add([f"192.0.2.{i}" for i in range(4)]).status_code == 200
        refused = Api(emulator, cid=other).add(["198.51.100.1", "198.51.100.2"])
        assert refused.status_code == 400
        assert "quota" in refused.json()["message"].lower()
        assert emulator.active_values(other) == set()  # all or nothing
        assert Api(emulator, cid=other).add(["198.51.100.1"]).status_code == 200
        # Updating an existing value needs no room.
        assert Api(emulator).add(["192.0.2.0"]).status_code == 200


def test_quota_per_collection_and_revocation_frees_room() -> None:
    other = str(uuid.uuid4())
    with running_emulator(
        collections=[COLLECTION_UUID, other], quota=2, quota_scope="collection", quota_status=403
    ) as emulator:
        items = Api(emulator).add(["192.0.2.1", "192.0.2.2"]).json()["items"]
        assert Api(emulator, cid=other).add(["192.0.2.1", "192.0.2.2"]).status_code == 200
        assert Api(emulator).add(["192.0.2.3"]).status_code == 403
        Api(emulator).revoke(items[0]["id"])
        assert Api(emulator).add(["192.0.2.3"]).status_code == 200


# -- rate limit and faults -----------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after_per_key() -> None:
    with running_emulator(api_keys={TEST_KEY, "other"}, rate_limit=3) as emulator:
        api = Api(emulator)
        statuses = [api.get_collection().status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = api.get_collection()
        assert limited.headers["Retry-After"] == "1"
        assert Api(emulator, "other").get_collection().status_code == 200
        time.sleep(1.05)
        assert api.get_collection().status_code == 200


def test_global_rate_limit_counts_every_key_together() -> None:
    # A shared egress: three clients with their own keys share one limit of 3 per window.
    with running_emulator(
        api_keys={TEST_KEY, "other", "third"}, rate_limit=3, rate_scope="global"
    ) as emulator:
        statuses = [Api(emulator, key).get_collection().status_code for key in (TEST_KEY, "other", "third")]
        assert statuses == [200, 200, 200]
        assert Api(emulator, "other").get_collection().status_code == 429
        assert Api(emulator, TEST_KEY).get_collection().status_code == 429
        time.sleep(1.05)
        assert Api(emulator, "third").get_collection().status_code == 200


def test_rate_scope_is_checked() -> None:
    with pytest.raises(ValueError, match="rate_scope must be one of key, global"):
        EmulatorOptions(rate_scope="tenant")


def test_rate_limit_without_retry_after() -> None:
    with running_emulator(rate_limit=1, retry_after=False) as emulator:
        api = Api(emulator)
        api.get_collection()
        limited = api.get_collection()
        assert limited.status_code == 429
        assert "Retry-After" not in limited.headers


def test_injected_server_errors_are_seeded_and_reproducible() -> None:
    def statuses(seed: int) -> list[int]:
        with running_emulator(seed=seed) as emulator:
            emulator.set_faults(error_ratio=0.5, error_status=502)
            api = Api(emulator)
            return [api.get_collection().status_code for _ in range(20)]

    first = statuses(7)
    assert first == statuses(7)
    assert set(first) == {200, 502}


def test_dropped_connections_close_without_answer(emu: SekoiaEmulator) -> None:
    emu.set_faults(drop_ratio=1.0)
    with pytest.raises(requests.ConnectionError):
        Api(emu).add(["192.0.2.1"])
    assert emu.active_values() == set()
    emu.set_faults(drop_after_apply=True)
    with pytest.raises(requests.ConnectionError):
        Api(emu).add(["192.0.2.1"])
    assert emu.active_values() == {"192.0.2.1"}  # applied, but the client never heard it
    assert emu.counts()["by_status"] == {"dropped": 2}
    assert [r["values"] for r in emu.requests()] == [0, 1]


def test_latency_is_added(emu: SekoiaEmulator) -> None:
    emu.set_faults(latency=0.2, latency_jitter=0.1)
    started = time.monotonic()
    Api(emu).get_collection()
    assert 0.2 <= time.monotonic() - started < 2


def test_storm_by_count_then_by_time(emu: SekoiaEmulator) -> None:
    api = Api(emu)
    emu.storm(429, count=2)
    answers = [api.get_collection() for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "1"
    emu.storm(503, seconds=0.3)
    assert api.get_collection().status_code == 503
    time.sleep(0.35)
    assert api.get_collection().status_code == 200
    emu.storm(429, count=5, retry_after=0)
    assert api.get_collection().headers["Retry-After"] == "0"
    emu.calm()
    assert api.get_collection().status_code == 200


def test_fault_settings_are_validated(emu: SekoiaEmulator) -> None:
    with pytest.raises(ValueError):
        emu.set_faults(error_ratio=2)
    with pytest.raises(ValueError):
        emu.set_faults(nonsense=1)
    with pytest.raises(ValueError):
        emu.storm(404, count=1)
    with pytest.raises(ValueError):
        EmulatorOptions(validation_status=418)


def test_redirect_fault_answers_writes_with_location_and_applies_nothing(emu: SekoiaEmulator) -> None:
    api = Api(emu)
    indicator_id = api.add(["192.0.2.9"]).json()["items"][0]["id"]
    remote = RemoteEmulator(emu.base_url)
    remote.set_faults(redirect_location="https://sekoia.example/api/v2/inthreat/ioc-collections/x")
    for answer in (
        api.session.post(
            api.url("/indicators"),
            json={"indicators": [{"value": "192.0.2.10"}]},
            allow_redirects=False,
            timeout=5,
        ),
        api.session.delete(api.url(f"/indicators/{indicator_id}"), allow_redirects=False, timeout=5),
    ):
        assert answer.status_code == 301
        assert answer.headers["Location"] == "https://sekoia.example/api/v2/inthreat/ioc-collections/x"
    assert api.search("192.0.2").status_code == 200  # reads are left alone in the "writes" scope
    assert emu.active_values() == {"192.0.2.9"}  # neither the add nor the revoke was applied
    remote.set_faults(redirect_scope="all", redirect_status=308)
    assert api.session.get(api.url(), allow_redirects=False, timeout=5).status_code == 308
    remote.set_faults(redirect_location=None)
    assert api.add(["192.0.2.10"]).status_code == 200
    assert [r["status"] for r in emu.requests()] == [200, 301, 301, 200, 308, 200]
    remote.close()


def test_html_fault_answers_200_with_a_login_page(emu: SekoiaEmulator) -> None:
    api = Api(emu)
    remote = RemoteEmulator(emu.base_url)
    remote.set_faults(html_answers=True)
    answer = api.add(["192.0.2.11"])
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    assert answer.text.lstrip().lower().startswith("<!doctype html")
    assert api.get_collection().headers["Content-Type"] == "application/json"
    remote.set_faults(proxy_scope="all")
    assert api.get_collection().headers["Content-Type"].startswith("text/html")
    assert emu.active_values() == set()
    remote.set_faults(html_answers=False)
    assert api.add(["192.0.2.11"]).json()["total"] == 1
    remote.close()


def test_wrong_shape_fault_answers_200_with_another_json_object(emu: SekoiaEmulator) -> None:
    api = Api(emu)
    emu.set_faults(wrong_shape_answers=True, proxy_scope="all")
    for answer in (api.add(["192.0.2.12"]), api.get_collection(), api.search("192")):
        assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
    assert emu.active_values() == set()


def test_long_search_terms_get_414(emu: SekoiaEmulator) -> None:
    api = Api(emu)
    RemoteEmulator(emu.base_url).set_faults(max_term_length=20)
    assert api.search("a" * 20 + ".example").status_code == 414
    assert api.search("short.example").status_code == 200
    assert api.add(["x" * 30 + ".example.org"]).status_code == 200  # only search terms are concerned


def test_new_fault_settings_are_validated(emu: SekoiaEmulator) -> None:
    for bad in (
        {"redirect_status": 200},
        {"redirect_scope": "some"},
        {"proxy_scope": "x"},
        {"max_term_length": 0},
    ):
        with pytest.raises(ValueError):
            emu.set_faults(**bad)


# -- inspection, admin API, concurrency, process ------------------------------------------------------


def test_request_log_records_method_path_status_and_values(emu: SekoiaEmulator) -> None:
    api = Api(emu)
    api.add(["192.0.2.1", "192.0.2.2"])
    api.search("192")
    log = emu.requests()
    assert [(r["method"], r["status"], r["values"]) for r in log] == [("POST", 200, 2), ("GET", 200, 0)]
    assert log[0]["path"] == f"{PREFIX}/{COLLECTION_UUID}/indicators"
    assert "term=192" in log[1]["query"]
    assert emu.requests(since=log[0]["seq"]) == log[1:]


def test_admin_api_drives_the_emulator(emu: SekoiaEmulator) -> None:
    remote = RemoteEmulator(emu.base_url)
    Api(emu).add(["192.0.2.1"])
    assert remote.active_values() == {"192.0.2.1"}
    assert remote.summary()["active"] == 1
    assert len(remote.requests()) == 1
    remote.set_faults(storm={"status": 503, "count": 1})
    assert Api(emu).get_collection().status_code == 503
    remote.set_options(validation_status=422)
    assert Api(emu).add([]).status_code == 422
    remote.add_api_key("new-key", ["view"])
    assert Api(emu, "new-key").get_collection().status_code == 200
    assert requests.delete(f"{emu.base_url}/_emulator/api-keys/new-key", timeout=5).json() == {
        "removed": True
    }
    bad = requests.post(f"{emu.base_url}/_emulator/options", json={"nope": 1}, timeout=5)
    assert bad.status_code == 400
    remote.reset()
    assert remote.summary()["requests"] == 0
    assert remote.active_values() == set()
    assert emu.options.validation_status == 400
    remote.close()


def test_concurrent_adds_are_all_kept(emu: SekoiaEmulator) -> None:
    def worker(n: int) -> None:
        api = Api(emu)
        for batch in range(5):
            values = [f"10.{n}.{batch}.{i}" for i in range(100)]
            assert api.add(values).status_code == 200

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert emu.counts()["active"] == 4000
    assert emu.counts()["by_status"] == {"200": 40}


def test_process_mode_prints_base_url_and_serves() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "testbed.emulators.sekoia",
            "--port",
            "0",
            "--api-key",
            "proc-key",
            "--api-key",
            "ro:view",
            "--collection",
            COLLECTION_UUID,
            "--rate-limit",
            "50",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        headers = {"Authorization": "Bearer proc-key"}
        body = {"indicators": [{"value": "192.0.2.9"}]}
        url = f"{base_url}{PREFIX}/ioc-collection--{COLLECTION_UUID}/indicators"
        assert requests.post(url, json=body, headers=headers, timeout=5).status_code == 200
        ro = {"Authorization": "Bearer ro"}
        assert requests.post(url, json=body, headers=ro, timeout=5).status_code == 403
        remote = RemoteEmulator(base_url)
        assert remote.active_values() == {"192.0.2.9"}
        assert remote.summary()["options"]["rate_limit"] == 50
        remote.close()
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_token_bucket_rate_limit_tolerates_bursts_but_not_a_higher_average() -> None:
    from testbed.emulators.sekoia.faults import SlidingWindowLimiter

    limiter = SlidingWindowLimiter()
    # a burst of 5 passes, the 6th waits for a refill of 1/5 s
    assert all(limiter.check("k", 5, 1.0, burst=5) is None for _ in range(5))
    wait = limiter.check("k", 5, 1.0, burst=5)
    assert wait is not None and 0.15 < wait <= 0.2
    # the strict sliding window refuses the 6th in the same second as well
    assert all(limiter.check("s", 5, 1.0) is None for _ in range(5))
    assert limiter.check("s", 5, 1.0) is not None
