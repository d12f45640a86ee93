"""The OpenCTI emulator, over raw HTTP/SSE and with the real pycti stream connector."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from opencti_fixtures import LIVE_STREAM_ID, OPENCTI_TOKEN, opencti_emulator
from opencti_helpers import ProbeProcess, SseReader, wait_for

from testbed.emulators.opencti import OPENCTI_EXTENSION, OpenCTIEmulator, parse_event_id

__all__ = ["opencti_emulator"]  # the fixture is used by name

APT31 = Path("/work/shared/data/sekoia-apt31-indicators.jsonl")
AUTH = {"Authorization": f"Bearer {OPENCTI_TOKEN}"}


def indicator(n: int, **extra: Any) -> dict[str, Any]:
    """A small, valid STIX indicator numbered `n`."""
    obj = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=n)}",
        "created": "2025-01-01T00:00:00.000Z",
        "modified": "2025-01-01T00:00:00.000Z",
        "name": f"evil-{n}.example",
        "pattern": f"[domain-name:value = 'evil-{n}.example']",
        "pattern_type": "stix",
        "valid_from": "2025-01-01T00:00:00.000Z",
        "revoked": False,
    }
    obj.update(extra)
    return obj


def gql(
    emu: OpenCTIEmulator, query: str, variables: dict[str, Any] | None = None, token: str = OPENCTI_TOKEN
) -> requests.Response:
    """POST a GraphQL document the way pycti does (no operationName)."""
    return requests.post(
        f"{emu.base_url}/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    )


def stream_url(emu: OpenCTIEmulator, stream_id: str = LIVE_STREAM_ID) -> str:
    return f"{emu.base_url}/stream/{stream_id}"


REGISTER = (
    "mutation RegisterConnector($input: RegisterConnectorInput) { registerConnector(input: $input) { id } }"
)
PING = "mutation PingConnector($id: ID!, $state: String) { pingConnector(id: $id, state: $state) { id } }"


# --------------------------------------------------------------------------------------------
# GraphQL
# --------------------------------------------------------------------------------------------
def test_graphql_health_check_and_token(opencti_emulator: OpenCTIEmulator) -> None:
    ok = gql(opencti_emulator, "query healthCheck { about { version } }")
    assert ok.status_code == 200 and "errors" not in ok.json()
    assert ok.json()["data"]["about"]["version"]
    assert gql(opencti_emulator, "query healthCheck { about { version } }", token="wrong").status_code == 401
    unknown = gql(opencti_emulator, "query SomethingElse { me { id } }").json()
    assert unknown["errors"][0]["message"] and unknown["data"] is None
    collection = gql(opencti_emulator, "query StreamCollection($id: String!) { x }", {"id": LIVE_STREAM_ID})
    assert collection.json()["data"]["streamCollection"]["stream_live"] is True


def test_register_ping_and_deletion(opencti_emulator: OpenCTIEmulator) -> None:
    emu = opencti_emulator
    seeded = {"start_from": "1700000000000-0", "recover_until": False}
    emu.set_connector_state("c-1", seeded)
    reg = gql(emu, REGISTER, {"input": {"id": "c-1", "name": "n", "type": "STREAM", "scope": ["indicator"]}})
    answer = reg.json()["data"]["registerConnector"]
    assert answer["id"] == "c-1" and "jwks" in answer and answer["config"]["connection"]["port"] == 5672
    assert "s3" not in answer["config"]  # 7.x dies on `s3: null`
    assert json.loads(answer["connector_state"]) == seeded

    sent = json.dumps({"start_from": "1700000000005-2", "recover_until": "2025-01-01T00:00:00Z"})
    pong = gql(emu, PING, {"id": "c-1", "state": sent, "connectorInfo": {"buffering": False}}).json()
    assert pong["data"]["pingConnector"]["connector_state"] == sent  # echoed unchanged
    record = emu.connector("c-1")
    assert record is not None and record["ping_count"] == 1 and record["last_ping_at"] > 0
    assert record["state"] == json.loads(sent)
    again = gql(emu, REGISTER, {"input": {"id": "c-1", "name": "n", "type": "STREAM"}}).json()
    assert again["data"]["registerConnector"]["connector_state"] == sent

    # A reset from the UI is answered once by the next ping instead of the sent state.
    emu.set_connector_state("c-1", None)
    reset = gql(emu, PING, {"id": "c-1", "state": sent}).json()
    assert reset["data"]["pingConnector"]["connector_state"] is None
    echoed = gql(emu, PING, {"id": "c-1", "state": sent}).json()
    assert echoed["data"]["pingConnector"]["connector_state"] == sent

    deletion = "mutation ConnectorDeletionMutation($id: ID!) { deleteConnector(id: $id) }"
    assert gql(emu, deletion, {"id": "c-1"}).json()["data"]["deleteConnector"] == "c-1"
    assert emu.connector("c-1")["deleted"] is True  # type: ignore[index]
    assert [c["operation"] for c in emu.graphql_calls()][:2] == ["RegisterConnector", "PingConnector"]


# --------------------------------------------------------------------------------------------
# Live stream over raw HTTP
# --------------------------------------------------------------------------------------------
def test_stream_headers_connected_and_replay_after_last_event_id(opencti_emulator: OpenCTIEmulator) -> None:
    emu = opencti_emulator
    ids = emu.load_jsonl(APT31)
    assert len(ids) == 104
    keys = [parse_event_id(i) for i in ids]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)

    response, reader = SseReader.open(stream_url(emu), OPENCTI_TOKEN, last_event_id=ids[49])
    try:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert response.headers["Cache-Control"] == "no-cache, no-transform"
        assert response.headers["Transfer-Encoding"] == "chunked"
        connected = reader.next()
        assert connected is not None and connected.event == "connected" and connected.id is None
        assert connected.json()["lastEventId"] == ids[-1] and connected.json()["streamSize"] == 104
        events = reader.take(54)
        assert [e.id for e in events] == ids[50:]
        first = events[0].json()
        assert first["version"] == "4" and first["type"] == "create" and first["scope"] == "external"
        assert first["message"].startswith("creates a Indicator") and first["origin"]["referer"]
        ext = first["data"]["extensions"][OPENCTI_EXTENSION]
        assert {"id", "type", "created_at", "updated_at"} <= ext.keys() and ext["type"] == "Indicator"
        # Heartbeats carry an id: the position this connection reached.
        heartbeat = reader.take(1, skip=())[0]
        assert heartbeat.event == "heartbeat" and heartbeat.id == ids[-1]
        assert isinstance(heartbeat.json(), str) and heartbeat.json().endswith("Z")
    finally:
        reader.close()
    connection = emu.stream_connections()[-1]
    assert connection["last_event_id"] == ids[49] and connection["headers"]["accept"] == "text/event-stream"
    assert "authorization" not in json.dumps(connection).lower()
    assert OPENCTI_TOKEN not in json.dumps(emu.stream_connections())


def test_stream_without_last_event_id_is_live_only_and_non_ascii(opencti_emulator: OpenCTIEmulator) -> None:
    emu = opencti_emulator
    emu.create(indicator(1))
    response, reader = SseReader.open(stream_url(emu), OPENCTI_TOKEN, last_event_id=None)
    try:
        assert reader.next().event == "connected"  # type: ignore[union-attr]
        new_id = emu.create(indicator(2, name="évil-ünïcode-域名.example"))
        event = reader.take(1)[0]
        assert event.id == new_id and event.json()["data"]["name"] == "évil-ünïcode-域名.example"
        assert response.encoding == "utf-8"
    finally:
        reader.close()


def test_stream_errors_401_404_410(opencti_emulator: OpenCTIEmulator) -> None:
    emu = opencti_emulator
    bad = {"Authorization": "Bearer nope"}
    assert requests.get(stream_url(emu), headers=bad, timeout=5).status_code == 401
    assert requests.get(stream_url(emu, "missing"), headers=AUTH, timeout=5).status_code == 404
    _, reader = SseReader.open(stream_url(emu), OPENCTI_TOKEN)
    assert reader.next().event == "connected"  # type: ignore[union-attr]
    emu.stop_stream(LIVE_STREAM_ID)
    assert reader.ended.wait(5), "a stopped stream must end open connections"
    assert requests.get(stream_url(emu), headers=AUTH, timeout=5).status_code == 410
    emu.start_stream(LIVE_STREAM_ID)
    ok = requests.get(f"{emu.base_url}/stream", headers=AUTH, stream=True, timeout=5)
    assert ok.status_code == 200
    ok.close()


def test_update_revoke_merge_delete_payloads(opencti_emulator: OpenCTIEmulator) -> None:
    emu = opencti_emulator
    base = indicator(10)
    emu.create(base)
    emu.create(indicator(11))
    changed = copy.deepcopy(base)
    changed["name"] = "renamed.example"
    emu.update(changed)
    emu.revoke(base["id"])
    emu.merge(indicator(11, description="merged"), [indicator(12)])
    emu.delete(base["id"])
    _, reader = SseReader.open(stream_url(emu), OPENCTI_TOKEN)
    try:
        events = reader.take(6)
    finally:
        reader.close()
    names = [e.event for e in events]
    assert names == ["create", "create", "update", "update", "merge", "delete"]
    update = events[2].json()
    assert update["type"] == "update" and update["data"]["name"] == "renamed.example"
    assert {"op": "replace", "path": "/name", "value": "renamed.example"} in update["context"]["patch"]
    assert {"op": "replace", "path": "/name", "value": base["name"]} in update["context"]["reverse_patch"]
    assert update["data"]["modified"] != base["modified"]  # bumped like the platform does
    ext_create = events[0].json()["data"]["extensions"][OPENCTI_EXTENSION]
    ext_update = update["data"]["extensions"][OPENCTI_EXTENSION]
    assert ext_update["id"] == ext_create["id"]  # same internal id across versions
    revoke = events[3].json()
    assert revoke["data"]["revoked"] is True
    assert {"op": "replace", "path": "/revoked", "value": True} in revoke["context"]["patch"]
    merge = events[4].json()
    assert [s["id"] for s in merge["context"]["sources"]] == [indicator(12)["id"]]
    deleted = events[5].json()
    assert deleted["data"]["revoked"] is True and deleted["data"]["name"] == "renamed.example"
    assert emu.current_object(base["id"]) is None


def test_listen_delete_filters_and_dependencies(opencti_emulator: OpenCTIEmulator) -> None:
    emu = opencti_emulator
    emu.add_stream("scored", predicate=lambda o: o.get("type") == "indicator" and o.get("x_score", 0) >= 50)
    author = {"type": "identity", "id": f"identity--{uuid.UUID(int=99)}", "name": "ACME"}
    emu.add_bundle({"type": "bundle", "objects": [author]})
    low = indicator(20, x_score=10, created_by_ref=author["id"])
    emu.create(low)
    emu.update({**low, "x_score": 80})  # enters the filter -> create
    emu.update({**low, "x_score": 5})  # leaves the filter -> delete
    emu.create(indicator(21, x_score=90))
    emu.delete(indicator(21)["id"])

    _, with_deletes = SseReader.open(stream_url(emu, "scored"), OPENCTI_TOKEN, **{"listen-delete": "true"})
    _, no_deletes = SseReader.open(stream_url(emu, "scored"), OPENCTI_TOKEN, **{"listen-delete": "false"})
    _, deps = SseReader.open(stream_url(emu, "scored"), OPENCTI_TOKEN, **{"no-dependencies": "false"})
    try:
        assert [e.event for e in with_deletes.take(4)] == ["create", "delete", "create", "delete"]
        got = no_deletes.take(2)
        assert [e.event for e in got] == ["create", "create"]
        dep_events = deps.take(5)
        # The author arrives first as a create reusing the triggering event's id.
        assert dep_events[0].json()["data"]["id"] == author["id"]
        assert dep_events[0].id == dep_events[1].id and dep_events[1].json()["data"]["id"] == low["id"]
    finally:
        for reader in (with_deletes, no_deletes, deps):
            reader.close()
    headers = [c["headers"] for c in emu.stream_connections()]
    assert {"listen-delete": "false"}.items() <= headers[1].items()


def test_faults_disconnect_500_stall_and_delay(opencti_emulator: OpenCTIEmulator) -> None:
    emu = opencti_emulator
    ids = [emu.create(indicator(n)) for n in range(30, 40)]

    emu.faults.disconnect_after(3)
    _, reader = SseReader.open(stream_url(emu), OPENCTI_TOKEN)
    got = reader.take(3)
    assert [e.id for e in got] == ids[:3]
    assert reader.next(timeout=5) is None and reader.end_error is not None  # cut mid-body

    emu.faults.fail_next_connects(1, status=500)
    assert requests.get(stream_url(emu), headers=AUTH, timeout=5).status_code == 500

    _, reader = SseReader.open(stream_url(emu), OPENCTI_TOKEN, last_event_id=ids[2])
    try:
        assert [e.id for e in reader.take(7)] == ids[3:]
        emu.faults.stall(1.5)
        started = time.monotonic()
        late_id = emu.create(indicator(41))
        event = reader.take(1, timeout=5, skip=())[0]
        assert time.monotonic() - started >= 1.3, "nothing (not even a heartbeat) may flow during a stall"
        assert event.id == late_id or event.event == "heartbeat"

        emu.faults.set_delay(0.3)
        started = time.monotonic()
        for n in range(42, 45):
            emu.create(indicator(n))
        reader.take(3 if event.id == late_id else 4, timeout=5)
        assert time.monotonic() - started >= 0.85
        emu.faults.clear()

        emu.faults.disconnect_now()
        assert reader.ended.wait(3)
    finally:
        reader.close()
    assert emu.faults.status()["disconnects"] == 2


def test_streams_10000_events_fast_without_blocking_others(opencti_emulator: OpenCTIEmulator) -> None:
    emu = opencti_emulator
    template = indicator(0)
    emu.add_bundle([{**template, "id": f"indicator--{uuid.UUID(int=1000 + n)}"} for n in range(10_000)])
    # A client that never reads fills its socket buffers; its writer blocks, nobody else must.
    stuck = requests.get(stream_url(emu), headers={**AUTH, "Last-Event-ID": "0-0"}, stream=True, timeout=5)
    try:
        started = time.monotonic()
        _, reader = SseReader.open(stream_url(emu), OPENCTI_TOKEN)
        try:
            events = reader.take(10_000, timeout=30)
        finally:
            reader.close()
        elapsed = time.monotonic() - started
    finally:
        stuck.close()
    keys = [parse_event_id(e.id or "") for e in events]
    assert keys == sorted(keys) and len(set(keys)) == 10_000
    assert elapsed < 10, f"10,000 events took {elapsed:.1f}s"


def test_process_mode_and_admin_api(tmp_path: Path) -> None:
    bundle = tmp_path / "few.jsonl"
    bundle.write_text("\n".join(json.dumps(indicator(n)) for n in range(3)) + "\n", encoding="utf-8")
    command = [sys.executable, "-m", "testbed.emulators.opencti", "--port", "0", "--token", OPENCTI_TOKEN]
    command += ["--stream-id", LIVE_STREAM_ID, "--load", str(bundle), "--heartbeat-interval", "0.5"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        assert process.stdout is not None
        base = process.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")
        admin = f"{base}/_emulator"
        session = requests.Session()
        session.trust_env = False
        assert len(session.get(f"{admin}/events", timeout=5).json()) == 3
        created = session.post(f"{admin}/events/create", json=indicator(7), timeout=5).json()["event_id"]
        updated = session.post(
            f"{admin}/events/update", json={"object": indicator(7, name="x.example")}, timeout=5
        ).json()["event_id"]
        revoked = session.post(f"{admin}/events/revoke", json={"id": indicator(7)["id"]}, timeout=5).json()
        deleted = session.post(f"{admin}/events/delete", json={"id": indicator(7)["id"]}, timeout=5).json()
        loaded = session.post(f"{admin}/load", json={"path": str(bundle)}, timeout=5).json()["event_ids"]
        assert parse_event_id(created) < parse_event_id(updated) < parse_event_id(revoked["event_id"])
        assert parse_event_id(deleted["event_id"]) < parse_event_id(loaded[0]) and len(loaded) == 3
        after = session.get(f"{admin}/events", params={"after": created}, timeout=5).json()
        assert [e["type"] for e in after] == ["update", "update", "delete", "create", "create", "create"]
        batch = [
            {"action": "create", "body": indicator(8)},
            {"action": "revoke", "body": {"id": indicator(8)["id"]}},
            {"action": "delete", "body": {"id": indicator(8)["id"]}},
        ]
        batched = session.post(f"{admin}/events/batch", json={"operations": batch}, timeout=5).json()
        tail = session.get(f"{admin}/events", params={"after": loaded[-1]}, timeout=5).json()
        assert [e["id"] for e in tail] == batched["event_ids"]
        assert [e["type"] for e in tail] == ["create", "update", "delete"]
        refused = session.post(f"{admin}/events/batch", json={"operations": [{"action": "nope"}]}, timeout=5)
        assert refused.status_code == 400 and "operations[0]" in refused.json()["error"]
        faults = session.post(f"{admin}/faults", json={"fail_next_connects": 1}, timeout=5).json()
        assert faults["pending_connect_failures"] == [500]
        session.post(f"{admin}/connectors/c-9/state", json={"state": {"start_from": created}}, timeout=5)
        assert session.get(f"{admin}/state", timeout=5).json() == {"c-9": {"start_from": created}}
        one = session.get(f"{admin}/connectors/c-9/state", timeout=5).json()
        assert one["state"]["start_from"] == created
        assert session.get(f"{base}/stream/{LIVE_STREAM_ID}", headers=AUTH, timeout=5).status_code == 500
        assert session.get(f"{admin}/connections", timeout=5).json()[0]["status"] == 500
        assert session.get(f"{admin}/nope", timeout=5).status_code == 404
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


# --------------------------------------------------------------------------------------------
# The real pycti client, always in a subprocess
# --------------------------------------------------------------------------------------------
def test_pycti_first_run_events_disconnect_resume_and_deletes(opencti_emulator: OpenCTIEmulator) -> None:
    emu = opencti_emulator
    ids = emu.load_jsonl(APT31)
    connector_id = str(uuid.uuid4())
    probe = ProbeProcess(emu.base_url, OPENCTI_TOKEN, connector_id, LIVE_STREAM_ID)
    try:
        events = probe.wait_events(104)
        assert [e["id"] for e in events] == ids and {e["event"] for e in events} == {"create"}
        operations = [c["operation"] for c in emu.graphql_calls()]
        assert operations[:4] == ["healthCheck", "healthCheck", "RegisterConnector", "PingConnector"]
        record = emu.connector(connector_id)
        assert record is not None and record["type"] == "STREAM" and record["ping_count"] >= 1
        first = emu.stream_connections()[0]
        assert first["last_event_id"] == "0-0" and first["recover"]  # first run: recover until now
        assert first["headers"]["listen-delete"] == "true" and first["headers"]["no-dependencies"] == "true"

        # Cut the stream after two of five new events: pycti reconnects with the last id it saw.
        emu.faults.disconnect_after(2)
        new_ids = [emu.create(indicator(n)) for n in range(100, 105)]
        events = probe.wait_events(109)
        assert [e["id"] for e in events[104:]] == new_ids  # no loss, no duplicate
        second = wait_for(lambda: emu.stream_connections()[1:], 5, "a reconnection")[0]
        assert second["last_event_id"] == new_ids[1] and second["recover"] == first["recover"]

        changed = indicator(100, name="changed.example")
        update_id = emu.update(changed)
        revoke_id = emu.revoke(changed["id"])
        delete_id = emu.delete(changed["id"])
        tail = probe.wait_events(112)[109:]
        assert [(e["event"], e["id"]) for e in tail] == [
            ("update", update_id),
            ("update", revoke_id),
            ("delete", delete_id),
        ]
        assert tail[1]["revoked"] is True and tail[0]["has_context"] and not tail[2]["has_context"]
    finally:
        probe.kill()


def test_pycti_resumes_from_seeded_state_without_deletes(opencti_emulator: OpenCTIEmulator) -> None:
    emu = opencti_emulator
    ids = emu.load_jsonl(APT31)
    connector_id = str(uuid.uuid4())
    seeded = {"start_from": ids[59], "recover_until": False}
    emu.set_connector_state(connector_id, seeded)
    probe = ProbeProcess(
        emu.base_url,
        OPENCTI_TOKEN,
        connector_id,
        LIVE_STREAM_ID,
        CONNECTOR_LIVE_STREAM_LISTEN_DELETE="false",
    )
    try:
        events = probe.wait_events(44)
        assert [e["id"] for e in events] == ids[60:]
        connection = emu.stream_connections()[0]
        assert connection["last_event_id"] == ids[59] and connection["recover"] is None
        assert connection["headers"]["listen-delete"] == "false"
        # The first ping follows registration at once and races the first events: its state is the
        # seeded one or a later position, never an earlier one and never a reset.
        first_ping = next(c for c in emu.graphql_calls() if c["operation"] == "PingConnector")
        pinged = json.loads(first_ping["variables"]["state"])
        assert pinged["recover_until"] is False
        assert parse_event_id(ids[59]) <= parse_event_id(pinged["start_from"]) <= parse_event_id(ids[-1])

        emu.delete(events[0]["stix_id"])
        last = emu.create(indicator(200))
        events = probe.wait_events(45)
        time.sleep(0.3)  # a delete delivered by mistake would arrive before `last`
        assert [(e["event"], e["id"]) for e in probe.events()[44:]] == [("create", last)]
    finally:
        probe.kill()


def test_pycti_restart_resumes_from_state_stored_by_ping(opencti_emulator: OpenCTIEmulator) -> None:
    emu = opencti_emulator
    ids = emu.load_jsonl(APT31)
    connector_id = str(uuid.uuid4())
    # PROBE_PING_INTERVAL makes the probe ping often instead of pycti's every 40 s.
    first = ProbeProcess(emu.base_url, OPENCTI_TOKEN, connector_id, LIVE_STREAM_ID, PROBE_PING_INTERVAL="0.3")
    try:
        assert [e["id"] for e in first.wait_events(104)] == ids
        state = wait_for(
            lambda: (
                (emu.connector_state(connector_id) or {}).get("start_from") == ids[-1]
                and emu.connector_state(connector_id)
            ),
            10,
            "a ping carrying the last event id",
        )
    finally:
        first.kill()  # a crash: the stored state is whatever the last ping carried
    new_ids = [emu.create(indicator(n)) for n in range(300, 303)]
    second = ProbeProcess(emu.base_url, OPENCTI_TOKEN, connector_id, LIVE_STREAM_ID)
    try:
        second.wait_events(3)
        time.sleep(0.3)
        assert [e["id"] for e in second.events()] == new_ids
        resumed = emu.stream_connections()[-1]
        assert resumed["last_event_id"] == state["start_from"]
        assert resumed["recover"] == state["recover_until"]
        assert emu.connector(connector_id)["registrations"] == 2  # type: ignore[index]
    finally:
        second.kill()


def test_pycti_dies_when_the_reconnect_is_refused(opencti_emulator: OpenCTIEmulator) -> None:
    emu = opencti_emulator
    emu.create(indicator(400))
    probe = ProbeProcess(emu.base_url, OPENCTI_TOKEN, str(uuid.uuid4()), LIVE_STREAM_ID)
    try:
        probe.wait_events(1)
        emu.faults.fail_next_connects(1, status=500)
        emu.faults.disconnect_now()
        # Documented pycti behaviour: a failed reconnect SIGTERMs the connector's own process.
        wait_for(lambda: probe.process.poll() is not None, 15, "pycti to end its process")
        assert [c["status"] for c in emu.stream_connections()] == [200, 500]
    finally:
        probe.kill()
