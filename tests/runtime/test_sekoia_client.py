"""Contract tests of the Sekoia client against the emulator over real HTTP, plus its helpers."""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from connector_runtime.metrics import REGISTRY
from connector_runtime.sekoia import (
    NewValue,
    RateLimiter,
    RetryPolicy,
    SekoiaAuthError,
    SekoiaClient,
    SekoiaNotFound,
    SekoiaRedirected,
    SekoiaUnavailable,
    SekoiaUnexpectedAnswer,
    SekoiaValueRejected,
    SharedFields,
    Stopped,
    normalize_base_url,
    normalize_collection_id,
    protocol,
)
from connector_runtime.sekoia.retry import parse_retry_after
from testbed.emulators.sekoia import SekoiaEmulator
from testbed.emulators.sekoia.pytest_fixtures import (
    COLLECTION_ID,
    COLLECTION_UUID,
    LOCAL_NO_PROXY,
    TEST_KEY,
    running_emulator,
)

IP = "ipv4-addr.value"
DOMAIN = "domain-name.value"
NO_SHARED = SharedFields()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", LOCAL_NO_PROXY)
    monkeypatch.setenv("no_proxy", LOCAL_NO_PROXY)


@pytest.fixture
def emu() -> Iterator[SekoiaEmulator]:
    with running_emulator() as emulator:
        yield emulator


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave a retrying thread behind


def fast_policy(**overrides: float) -> RetryPolicy:
    settings = {"base": 0.01, "cap": 0.05, "auth_interval": 0.05, "floor": 0.0, **overrides}
    return RetryPolicy(rng=random.Random(1), **settings)


def make_client(
    emulator: SekoiaEmulator,
    stop: threading.Event,
    *,
    key: str = TEST_KEY,
    collection: str = COLLECTION_ID,
    limiter: RateLimiter | None = None,
    policy: RetryPolicy | None = None,
    on_auth_state: object = None,
    timeout: float = 5,
) -> SekoiaClient:
    return SekoiaClient(
        emulator.base_url + "/v2/inthreat/ioc-collections/",
        key,
        collection,
        limiter=limiter or RateLimiter(rate=500, burst=50),
        retry_policy=policy or fast_policy(),
        stop=stop,
        timeout=timeout,
        on_auth_state=on_auth_state,  # type: ignore[arg-type]
    )


def ips(count: int, prefix: str = "10.1") -> list[NewValue]:
    return [NewValue(f"{prefix}.{i // 250}.{i % 250}", IP) for i in range(count)]


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# -- normalisation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("https://api.sekoia.io", "https://api.sekoia.io"),
        ("https://api.sekoia.io/", "https://api.sekoia.io"),
        ("  HTTPS://api.sekoia.io//  ", "https://api.sekoia.io"),
        ("https://app.usa1.sekoia.io/api", "https://app.usa1.sekoia.io/api"),
        ("https://app.usa1.sekoia.io/api/", "https://app.usa1.sekoia.io/api"),
        ("https://api.sekoia.io/v2/inthreat/ioc-collections", "https://api.sekoia.io"),
        ("https://app.fra2.sekoia.io/api/v2/inthreat/ioc-collections/", "https://app.fra2.sekoia.io/api"),
        ("", "https://api.sekoia.io"),
    ],
)
def test_normalize_base_url(given: str, root: str) -> None:
    assert normalize_base_url(given) == root


@pytest.mark.parametrize("bad", ["api.sekoia.io", "ftp://api.sekoia.io", "https://"])
def test_normalize_base_url_refuses_non_http(bad: str) -> None:
    with pytest.raises(ValueError):
        normalize_base_url(bad)


@pytest.mark.parametrize(
    "given", [COLLECTION_UUID, COLLECTION_ID, f"  {COLLECTION_ID.upper()}\n", COLLECTION_UUID.upper()]
)
def test_normalize_collection_id(given: str) -> None:
    assert normalize_collection_id(given) == COLLECTION_UUID


@pytest.mark.parametrize("bad", ["", "abc", "ioc-collection--", "indicator--" + COLLECTION_UUID, "x\ny"])
def test_normalize_collection_id_refuses_with_one_line(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        normalize_collection_id(bad)
    assert "\n" not in str(info.value)
    assert "UUID" in str(info.value)


# -- preflight -----------------------------------------------------------------------------------------


def test_check_collection_ok(emu: SekoiaEmulator, stop: threading.Event) -> None:
    assert make_client(emu, stop).check_collection()["id"] == COLLECTION_ID


def test_check_collection_typed_errors_never_show_the_key(stop: threading.Event) -> None:
    keys = {TEST_KEY: {"permissions": ["all"]}, "view-nothing": {"permissions": []}}
    with running_emulator(api_keys=keys) as emulator:
        with pytest.raises(SekoiaAuthError) as unauthorized:
            make_client(emulator, stop, key="sk-wrong-secret").check_collection()
        assert unauthorized.value.status == 401 and not unauthorized.value.forbidden
        assert "sk-wrong-secret" not in str(unauthorized.value)
        with pytest.raises(SekoiaAuthError) as forbidden:
            make_client(emulator, stop, key="view-nothing").check_collection()
        assert forbidden.value.forbidden
        with pytest.raises(SekoiaNotFound):
            make_client(emulator, stop, collection=str(uuid.uuid4())).check_collection()
        emulator.storm(503, count=1)
        with pytest.raises(SekoiaUnavailable):
            make_client(emulator, stop).check_collection()
        url = emulator.base_url
    client = SekoiaClient(
        url,
        TEST_KEY,
        COLLECTION_ID,
        limiter=RateLimiter(100),
        retry_policy=fast_policy(),
        stop=stop,
        timeout=2,
    )
    with pytest.raises(SekoiaUnavailable):  # the emulator is stopped: nothing listens any more
        client.check_collection()


@pytest.mark.parametrize("form", ["uuid", "prefixed"])
def test_client_finds_the_collection_id_form_the_api_takes(form: str, stop: threading.Event) -> None:
    with running_emulator(collection_id_form=form) as emulator:
        for given in (COLLECTION_UUID, COLLECTION_ID):
            client = make_client(emulator, stop, collection=given)
            assert client.check_collection()["uuid"] == COLLECTION_UUID
            assert set(client.add_values(ips(3), NO_SHARED).ids) == {v.value for v in ips(3)}


# -- add -----------------------------------------------------------------------------------------------


def test_add_groups_by_type_and_maps_every_value_to_its_id(
    emu: SekoiaEmulator, stop: threading.Event
) -> None:
    values = [NewValue("192.0.2.1", IP), NewValue("evil.example.org", DOMAIN), NewValue("192.0.2.2", IP)]
    shared = SharedFields(
        valid_until="2031-01-01T00:00:00Z",
        kill_chain_phases=(("mitre-attack", "execution"),),
        description="https://opencti.example/indicator/1",
    )
    outcome = make_client(emu, stop).add_values(values, shared)
    assert outcome.rejected == []
    assert outcome.accepted_without_id == []
    state = {i["value"]: i for i in emu.indicators()}
    assert outcome.ids == {value: state[value]["id"] for value in state}
    assert state["evil.example.org"]["type"] == DOMAIN
    assert state["192.0.2.1"]["valid_until"] == "2031-01-01T00:00:00Z"
    assert state["192.0.2.1"]["kill_chain_phases"] == [
        {"kill_chain_name": "mitre-attack", "phase_name": "execution"}
    ]
    assert [r["values"] for r in emu.requests()] == [2, 1]  # one request per type


def test_add_full_batch_of_100_in_one_request(emu: SekoiaEmulator, stop: threading.Event) -> None:
    outcome = make_client(emu, stop).add_values(ips(100), SharedFields(type=IP))
    assert len(outcome.ids) == 100
    assert [r["values"] for r in emu.requests()] == [100]


def test_add_refuses_programming_errors(emu: SekoiaEmulator, stop: threading.Event) -> None:
    client = make_client(emu, stop)
    with pytest.raises(ValueError):
        client.add_values(ips(101), NO_SHARED)
    with pytest.raises(ValueError):
        client.add_values([NewValue("evil.example.org", DOMAIN)], SharedFields(type=IP))
    assert emu.requests() == []


@pytest.mark.parametrize("status", [400, 422])
def test_validation_error_splits_the_batch_to_isolate_bad_values(status: int, stop: threading.Event) -> None:
    with running_emulator(validation_status=status) as emulator:
        values = ips(40)
        bad = {7: "10.1.0.0/24", 8: "999.1.1.1", 33: "not-an-ip"}
        for index, text in bad.items():
            values[index] = NewValue(text, IP)
        before = metric("sis_values_rejected_total", reason="invalid_value")
        outcome = make_client(emulator, stop).add_values(values, SharedFields(type=IP))
        assert sorted(r.value for r in outcome.rejected) == sorted(bad.values())
        assert all(r.value in r.reason for r in outcome.rejected)
        good = {v.value for v in values} - set(bad.values())
        assert set(outcome.ids) == good
        assert emulator.active_values() == good
        assert metric("sis_values_rejected_total", reason="invalid_value") - before == 3


def test_quota_refusal_is_reported_not_dropped(stop: threading.Event) -> None:
    with running_emulator(quota=3) as emulator:
        outcome = make_client(emulator, stop).add_values(ips(5), NO_SHARED)
        assert len(outcome.ids) == 3
        assert len(outcome.rejected) == 2
        assert all("quota" in r.reason.lower() for r in outcome.rejected)


def test_ids_match_case_insensitively_for_domains(emu: SekoiaEmulator, stop: threading.Event) -> None:
    client = make_client(emu, stop)
    first = client.add_values([NewValue("evil.example.org", DOMAIN)], NO_SHARED)
    again = client.add_values([NewValue("EVIL.example.ORG", DOMAIN)], NO_SHARED)
    assert again.ids == {"EVIL.example.ORG": first.ids["evil.example.org"]}


def test_asynchronous_202_answer_counts_values_as_accepted_without_id(stop: threading.Event) -> None:
    with running_emulator(structured_add_mode="async") as emulator:
        outcome = make_client(emulator, stop).add_values(ips(4), NO_SHARED)
        assert outcome.ids == {}
        assert outcome.accepted == [v.value for v in ips(4)]
        assert emulator.wait_tasks(5)
        assert len(emulator.active_values()) == 4


# -- retries -------------------------------------------------------------------------------------------


def test_429_storm_is_honoured_and_pauses_the_shared_limiter(
    emu: SekoiaEmulator, stop: threading.Event
) -> None:
    limiter = RateLimiter(rate=500, burst=50)
    emu.storm(429, count=1, retry_after=1)
    started = time.monotonic()
    outcome = make_client(emu, stop, limiter=limiter).add_values(ips(10), NO_SHARED)
    assert time.monotonic() - started >= 0.95  # waited the whole Retry-After
    assert len(outcome.ids) == 10
    emu.storm(429, count=5, retry_after=0)
    retries = metric("sis_sekoia_retries_total", cause="rate_limited")
    assert len(make_client(emu, stop, limiter=limiter).add_values(ips(10, "10.2"), NO_SHARED).ids) == 10
    assert metric("sis_sekoia_retries_total", cause="rate_limited") - retries == 5
    assert [r["status"] for r in emu.requests()][-6:] == [429] * 5 + [200]


def test_429_without_retry_after_backs_off(stop: threading.Event) -> None:
    with running_emulator(rate_limit=2, retry_after=False) as emulator:
        client = make_client(emulator, stop, policy=fast_policy(base=0.1, cap=0.4))
        for start in range(0, 6):
            client.add_values([NewValue(f"192.0.2.{start}", IP)], NO_SHARED)
        assert len(emulator.active_values()) == 6
        assert emulator.counts()["by_status"].get("429", 0) >= 1


def test_server_errors_are_retried_without_loss(emu: SekoiaEmulator, stop: threading.Event) -> None:
    emu.set_faults(error_ratio=0.5)
    client = make_client(emu, stop)
    for start in range(0, 500, 100):
        outcome = client.add_values(ips(100, f"10.{start // 100 + 10}"), NO_SHARED)
        assert len(outcome.ids) == 100
    assert len(emu.active_values()) == 500
    assert emu.counts()["by_status"]["503"] >= 1


def test_dropped_connections_are_retried_and_do_not_duplicate(
    emu: SekoiaEmulator, stop: threading.Event
) -> None:
    emu.set_faults(drop_ratio=0.5, drop_after_apply=True)
    client = make_client(emu, stop)
    ids: dict[str, str] = {}
    for start in range(0, 50, 10):
        outcome = client.add_values(ips(50)[start : start + 10], NO_SHARED)
        assert len(outcome.ids) == 10
        ids.update(outcome.ids)
    assert emu.counts()["by_status"].get("dropped", 0) >= 1  # seeded: the same drops on every run
    states = emu.indicators()
    assert len(states) == 50  # re-sent values merged, never duplicated
    assert ids == {s["value"]: s["id"] for s in states}


def test_timeouts_are_retried(emu: SekoiaEmulator, stop: threading.Event) -> None:
    emu.set_faults(latency=0.6)
    client = make_client(emu, stop, timeout=0.3)
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(client.add_values(ips(1), NO_SHARED)))
    thread.start()
    time.sleep(0.8)
    emu.set_faults(latency=0.0)
    thread.join(5)
    assert result and emu.active_values() == {"10.1.0.0"}


def test_401_reports_auth_state_then_recovers_when_the_key_is_added(
    stop: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    events: list[tuple[bool, str]] = []
    with running_emulator(api_keys=set()) as emulator:
        client = make_client(
            emulator, stop, key="sk-late-key-7f3e", on_auth_state=lambda ok, why: events.append((ok, why))
        )
        result: list[object] = []
        worker = threading.Thread(target=lambda: result.append(client.add_values(ips(2), NO_SHARED)))
        worker.start()
        deadline = time.monotonic() + 5
        while not events and time.monotonic() < deadline:
            time.sleep(0.01)
        assert events and events[0][0] is False and "401" in events[0][1]
        time.sleep(0.2)  # several retries happen, but the state is reported once
        emulator.add_api_key("sk-late-key-7f3e")
        worker.join(5)
        assert result and len(result[0].ids) == 2  # type: ignore[attr-defined]
    assert events[-1] == (True, "")
    assert [ok for ok, _ in events] == [False, True]
    assert "sk-late-key-7f3e" not in caplog.text
    assert all("sk-late-key-7f3e" not in why for _, why in events)


def test_403_reports_missing_permission(stop: threading.Event) -> None:
    events: list[tuple[bool, str]] = []
    with running_emulator(api_keys={"ro": {"permissions": ["view"]}}) as emulator:
        client = make_client(emulator, stop, key="ro", on_auth_state=lambda ok, why: events.append((ok, why)))
        errors: list[BaseException] = []

        def revoke() -> None:
            try:
                client.revoke("indicator--x")
            except Stopped as exc:
                errors.append(exc)

        worker = threading.Thread(target=revoke)
        worker.start()
        time.sleep(0.3)
        stop.set()
        worker.join(2)
        assert not worker.is_alive()
    assert len(errors) == 1  # retried slowly until stopped, never given up
    assert events[0][0] is False and "403" in events[0][1]


def test_stop_interrupts_retries_promptly(emu: SekoiaEmulator, stop: threading.Event) -> None:
    emu.storm(503, seconds=30)
    client = make_client(emu, stop, policy=fast_policy(base=5, cap=30))
    errors: list[BaseException] = []

    def push() -> None:
        try:
            client.add_values(ips(5), NO_SHARED)
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=push)
    worker.start()
    time.sleep(0.3)
    stopped_at = time.monotonic()
    stop.set()
    worker.join(2)
    assert not worker.is_alive()
    assert time.monotonic() - stopped_at < 1
    assert len(errors) == 1 and isinstance(errors[0], Stopped)


def test_retry_warnings_are_rate_limited(
    emu: SekoiaEmulator, stop: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="connector_runtime.sekoia.client")
    emu.storm(503, count=30)
    make_client(emu, stop).add_values(ips(1), NO_SHARED)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert 1 <= len(warnings) <= 2


# -- search and revoke ---------------------------------------------------------------------------------


def test_find_ids_pages_and_matches_exactly(emu: SekoiaEmulator, stop: threading.Event) -> None:
    client = make_client(emu, stop)
    client.add_values([NewValue("evil.example.org", DOMAIN)], NO_SHARED)
    for start in range(0, 150, 75):
        batch = [NewValue(f"h{i}.evil.example.org", DOMAIN) for i in range(start, start + 75)]
        client.add_values(batch, NO_SHARED)
    target = {i["value"]: i["id"] for i in emu.indicators()}["evil.example.org"]
    assert client.find_ids("evil.example.org") == [target]
    searches = [r for r in emu.requests() if r["method"] == "GET"]
    assert len(searches) == 2  # 151 fuzzy hits over two pages
    assert "offset=100" in searches[1]["query"]
    assert client.find_ids("absent.example.org") == []


def test_find_ids_skips_revoked_unless_asked(emu: SekoiaEmulator, stop: threading.Event) -> None:
    client = make_client(emu, stop)
    indicator_id = client.add_values([NewValue("192.0.2.50", IP)], NO_SHARED).ids["192.0.2.50"]
    assert client.revoke(indicator_id) is True
    assert client.find_ids("192.0.2.50") == []
    assert client.find_ids("192.0.2.50", include_revoked=True) == [indicator_id]


def test_revoke_unknown_indicator_counts_as_done(emu: SekoiaEmulator, stop: threading.Event) -> None:
    assert make_client(emu, stop).revoke(f"indicator--{uuid.uuid4()}") is False


def test_revoke_is_retried_through_faults(emu: SekoiaEmulator, stop: threading.Event) -> None:
    client = make_client(emu, stop)
    indicator_id = client.add_values([NewValue("192.0.2.60", IP)], NO_SHARED).ids["192.0.2.60"]
    emu.storm(502, count=3)
    assert client.revoke(indicator_id) is True
    assert emu.active_values() == set()


def test_operations_on_a_missing_collection_raise_not_found(
    emu: SekoiaEmulator, stop: threading.Event
) -> None:
    client = make_client(emu, stop, collection=str(uuid.uuid4()))
    with pytest.raises(SekoiaNotFound):
        client.add_values(ips(1), NO_SHARED)
    with pytest.raises(SekoiaNotFound):
        client.revoke("indicator--x")
    with pytest.raises(SekoiaNotFound):
        client.find_ids("192.0.2.1")


def test_request_metrics_are_counted(emu: SekoiaEmulator, stop: threading.Event) -> None:
    before = metric("sis_sekoia_requests_total", operation="add", status="200")
    make_client(emu, stop).add_values(ips(3), NO_SHARED)
    assert metric("sis_sekoia_requests_total", operation="add", status="200") - before == 1
    assert metric("sis_sekoia_request_seconds_count", operation="add") >= 1


# -- answers that acknowledge nothing ------------------------------------------------------------------

OPERATIONS = ["add", "search", "revoke", "check"]


def _call(client: SekoiaClient, operation: str, indicator_id: str) -> object:
    if operation == "add":
        return client.add_values(ips(3, "10.9"), NO_SHARED)
    if operation == "search":
        return client.find_ids("192.0.2.70")
    if operation == "revoke":
        return client.revoke(indicator_id)
    return client.check_collection()


def _seeded(emu: SekoiaEmulator, stop: threading.Event) -> tuple[SekoiaClient, str]:
    client = make_client(emu, stop)
    indicator_id = client.add_values([NewValue("192.0.2.70", IP)], NO_SHARED).ids["192.0.2.70"]
    return client, indicator_id


@pytest.mark.parametrize("status", [301, 302, 307, 308])
@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_redirect_is_an_error_naming_the_url_and_its_location(
    emu: SekoiaEmulator, stop: threading.Event, operation: str, status: int
) -> None:
    client, indicator_id = _seeded(emu, stop)
    # Where a root without its /api prefix points: the same API path under /api, credentials and all.
    location = (
        f"http://someone:pa55word@127.0.0.1:{emu.base_url.rsplit(':', 1)[1]}/api{protocol.API_PREFIX}/x?sig=1"
    )
    emu.set_faults(redirect_location=location, redirect_status=status, redirect_scope="all")
    seen = len(emu.requests())
    with pytest.raises(SekoiaRedirected) as info:
        _call(client, operation, indicator_id)
    message = str(info.value)
    assert info.value.reason == "SekoiaURLRedirects"
    assert info.value.status == status
    assert f"{emu.base_url}{protocol.API_PREFIX}/" in message  # the URL asked
    assert f"127.0.0.1:{emu.base_url.rsplit(':', 1)[1]}/api{protocol.API_PREFIX}/x" in message  # Location
    assert info.value.suggestion == emu.base_url + "/api"
    assert f"set the Sekoia URL to {emu.base_url}/api" in message
    assert "pa55word" not in message and "someone" not in message and "sig=1" not in message
    assert TEST_KEY not in message
    assert len(emu.requests()) == seen + 1  # not followed
    assert emu.active_values() == {"192.0.2.70"}  # nothing applied, nothing revoked


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_200_with_an_html_page_is_not_an_acknowledgement(
    emu: SekoiaEmulator, stop: threading.Event, operation: str
) -> None:
    client, indicator_id = _seeded(emu, stop)
    emu.set_faults(html_answers=True, proxy_scope="all")
    with pytest.raises(SekoiaUnexpectedAnswer) as info:
        _call(client, operation, indicator_id)
    assert info.value.reason == "SekoiaUnexpectedAnswer"
    assert "200 with a text/html body" in str(info.value)
    assert emu.base_url in str(info.value)
    assert emu.active_values() == {"192.0.2.70"}


@pytest.mark.parametrize("operation", ["add", "search", "check"])
def test_a_200_of_the_wrong_json_shape_is_not_an_acknowledgement(
    emu: SekoiaEmulator, stop: threading.Event, operation: str
) -> None:
    client, indicator_id = _seeded(emu, stop)
    emu.set_faults(wrong_shape_answers=True, proxy_scope="all")
    with pytest.raises(SekoiaUnexpectedAnswer) as info:
        _call(client, operation, indicator_id)
    assert "200 with a JSON body, not Sekoia's JSON" in str(info.value)


def test_a_redirected_add_is_never_taken_for_success(emu: SekoiaEmulator, stop: threading.Event) -> None:
    """The reported loss: every write answered 301 to the search path. `requests` would follow it as
    a GET and get {"items": []}, which looked like an acknowledgement."""
    client = make_client(emu, stop)
    search_url = f"{emu.base_url}{protocol.API_PREFIX}/{COLLECTION_ID}/indicators"
    emu.set_faults(redirect_location=search_url)
    with pytest.raises(SekoiaRedirected):
        client.add_values(ips(5), NO_SHARED)
    assert [r["method"] for r in emu.requests()] == ["POST"]
    emu.set_faults(redirect_location=None)
    assert len(client.add_values(ips(5), NO_SHARED).ids) == 5


def test_a_search_term_too_long_rejects_that_value_only(emu: SekoiaEmulator, stop: threading.Event) -> None:
    client = make_client(emu, stop)
    emu.set_faults(max_term_length=30)
    long_value = "http://" + "a" * 40 + ".example/"
    before = metric("sis_values_rejected_total", reason="too_long")
    with pytest.raises(SekoiaValueRejected) as info:
        client.find_ids(long_value)
    assert info.value.status == 414 and info.value.label == "too_long"
    assert metric("sis_values_rejected_total", reason="too_long") - before == 1
    assert client.find_ids("192.0.2.1") == []  # other values still go through


@pytest.mark.parametrize(
    ("location", "suggestion"),
    [
        # http:// behind an https redirect
        ("https://api.sekoia.io/v2/inthreat/ioc-collections/c/indicators", "https://api.sekoia.io"),
        # a regional root without /api, redirected by the web app
        ("/api/v2/inthreat/ioc-collections/c/indicators", "https://app.fra1.sekoia.io/api"),
        # credentials and query never make it into the suggestion
        ("https://u:p@api.sekoia.io/v2/inthreat/ioc-collections/c?sig=2", "https://api.sekoia.io"),
        # a login page: no API path, nothing to suggest
        ("https://sso.example.com/login?next=/v2", None),
        ("ftp://api.sekoia.io/v2/inthreat/ioc-collections/c", None),
    ],
)
def test_the_url_to_use_instead_is_read_from_the_redirect(location: str, suggestion: str | None) -> None:
    asked = "https://app.fra1.sekoia.io/v2/inthreat/ioc-collections/c/indicators"
    assert protocol.suggested_base_url(asked, location) == suggestion


def test_answer_shapes() -> None:
    assert protocol.add_answer_problem({"items": [], "total": 0}) is None
    assert protocol.add_answer_problem({"task_id": "t-1"}) is None
    assert protocol.add_answer_problem({"status": "ok"}) and protocol.add_answer_problem(None)
    assert protocol.search_answer_problem({"items": [], "has_more": False}) is None
    assert protocol.search_answer_problem({"items": [], "has_more": "no"})
    assert protocol.search_answer_problem([{"id": "x"}])
    assert protocol.collection_answer_problem({"id": COLLECTION_ID}) is None
    assert protocol.collection_answer_problem({"items": []})  # a search page is not a collection
    assert protocol.revoke_answer_problem(None, empty=True) is None
    assert protocol.revoke_answer_problem({"id": "indicator--x"}, empty=False) is None
    assert protocol.revoke_answer_problem(None, empty=False)  # a body that is not JSON


def test_rejection_labels_form_a_closed_set() -> None:
    labels = {
        protocol.rejection_label(status, code)
        for status in (400, 404, 409, 413, 414, 422, 451)
        for code in ("", "INTHREAT_VALIDATION_ERROR", "INTHREAT_QUOTA_EXCEEDED", "x" * 300, "evil\ud800")
    }
    assert labels <= set(protocol.REJECTION_LABELS)


# -- limiter and retry policy --------------------------------------------------------------------------


def test_limiter_spaces_requests_after_the_burst(stop: threading.Event) -> None:
    limiter = RateLimiter(rate=20, burst=2)
    started = time.monotonic()
    for _ in range(8):
        limiter.acquire(stop)
    assert 0.25 <= time.monotonic() - started < 1.5  # 6 tokens beyond the burst at 20/s


def test_limiter_pause_holds_every_thread_and_stop_releases(stop: threading.Event) -> None:
    limiter = RateLimiter(rate=1000, burst=10)
    limiter.pause_until(time.monotonic() + 0.3)
    started = time.monotonic()
    limiter.acquire(stop)
    assert time.monotonic() - started >= 0.28
    limiter.pause_until(time.monotonic() + 60)
    assert limiter.paused_for() > 50
    threading.Timer(0.1, stop.set).start()
    started = time.monotonic()
    with pytest.raises(Stopped):
        limiter.acquire(stop)
    assert time.monotonic() - started < 0.5


def test_parse_retry_after() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("7") == 7
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    http_date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(http_date, now=lambda: now) == 30
    assert parse_retry_after(format_datetime(now - timedelta(seconds=5), usegmt=True), now=lambda: now) == 0


def test_retry_policy_bounds() -> None:
    policy = RetryPolicy(base=1, cap=8, auth_interval=30, max_retry_after=120, floor=0, rng=random.Random(3))
    assert all(0 <= policy.backoff(n) <= min(8, 2**n) for n in range(20) for _ in range(5))
    assert policy.rate_limited("12", attempt=0) == 12
    assert policy.rate_limited("9999", attempt=0) == 120
    assert 0 <= policy.rate_limited(None, attempt=2) <= 4
    assert policy.auth_failed() == 30


def test_protocol_add_body_shape() -> None:
    body = protocol.build_add_body(
        [NewValue("192.0.2.1", IP, "2025-01-01T00:00:00Z"), NewValue("192.0.2.2", IP)],
        SharedFields(type=IP, valid_until="2026-01-01T00:00:00Z", description="d" * 600),
        IP,
    )
    assert body["indicators"] == [
        {"value": "192.0.2.1", "valid_from": "2025-01-01T00:00:00Z"},
        {"value": "192.0.2.2"},
    ]
    assert body["default_fields"]["type"] == IP
    assert len(body["default_fields"]["description"]) == protocol.MAX_DESCRIPTION
