"""Resync on demand with the real runtime (pycti inside) between the emulators: the platform's
recovery mode refills a collection emptied by hand, events after the old position still apply,
and the same request is never honoured twice."""

from __future__ import annotations

import json

from conftest import COLLECTION, DATA_FILE, RuntimeFactory

from connector_runtime.conversion import convert_indicator
from testbed.emulators.opencti.emulator import OpenCTIEmulator
from testbed.emulators.sekoia.remote import RemoteEmulator
from testbed.emulators.sekoia.server import SekoiaEmulator
from testbed.processes import wait_until

RESYNC_FROM = "2020-01-01T00:00:00Z"


def _indicators() -> list[dict]:
    rows = [json.loads(line) for line in DATA_FILE.read_text().splitlines() if line.strip()]
    return [row for row in rows if convert_indicator(row).values][:30]


def _values(indicators: list[dict]) -> set[str]:
    return {v.value for ind in indicators for v in convert_indicator(ind).values}


def _wait_active(sekoia: SekoiaEmulator, expected: set[str], what: str) -> None:
    wait_until(
        lambda: sekoia.active_values(COLLECTION) == expected,
        60,
        what,
        on_timeout=lambda: (
            f"missing {sorted(expected - sekoia.active_values(COLLECTION))[:5]} "
            f"extra {sorted(sekoia.active_values(COLLECTION) - expected)[:5]}"
        ),
    )


def test_resync_refills_an_emptied_collection_once(
    opencti: OpenCTIEmulator, sekoia: SekoiaEmulator, start_runtime: RuntimeFactory
) -> None:
    opencti.recovery = True  # serve ?recover=<date> as the platform does
    indicators = _indicators()
    opencti.add_bundle(indicators[:25])
    opencti.delete(indicators[0])
    first = start_runtime()
    first.wait_ready()
    _wait_active(sekoia, _values(indicators[1:25]), "the first sync")
    assert first.terminate()[0] == 0
    connector_id = first.env["CONNECTOR_ID"]
    committed = opencti.connector_state(connector_id)["start_from"]

    # While the runtime is away: the collection is emptied by hand, and OpenCTI moves on.
    remote = RemoteEmulator(sekoia.base_url)
    assert remote.revoke_all(COLLECTION) == len(_values(indicators[1:25]))
    remote.close()
    opencti.add_bundle(indicators[25:])
    opencti.delete(indicators[1])
    should_be_active = _values(indicators[2:])

    # The operator rolls the runtime with the request (spec.opencti.resyncFrom + resyncToken).
    resync = start_runtime(RUNTIME_RESYNC_FROM=RESYNC_FROM, RUNTIME_RESYNC_TOKEN="refill-1")
    resync.wait_ready()
    _wait_active(sekoia, should_be_active, "the resync to refill the collection, live events included")
    wait_until(lambda: "resync completed" in resync.log(), 30, "the resync to end", on_timeout=resync.log)
    assert resync.metric("sis_resync_in_progress") == 0
    assert resync.terminate()[0] == 0
    state = opencti.connector_state(connector_id)
    record = state["resync"]
    assert record["token"] == "refill-1" and record["from"] == "2020-01-01T00:00:00.000Z"
    assert record["ended_at"] and state["start_from"] >= committed
    # The platform was asked to recover from the requested date up to the old position.
    recovering = [c for c in opencti.stream_connections() if c["last_event_id"] == "1577836800000-0"]
    assert recovering and recovering[0]["recover"] == record["until"]

    # The same request again (e.g. a restart with the same spec): nothing is replayed.
    requests_before = len(sekoia.requests())
    again = start_runtime(RUNTIME_RESYNC_FROM=RESYNC_FROM, RUNTIME_RESYNC_TOKEN="refill-1")
    again.wait_ready()
    wait_until(lambda: again.metric("sis_stream_events_total") == 0 and again.readiness()[0], 10, "ready")
    assert [c["last_event_id"] for c in opencti.stream_connections()][-1] == state["start_from"]
    assert not [r for r in sekoia.requests()[requests_before:] if r["method"] == "POST"]
    assert again.terminate()[0] == 0
