"""The real runtime (pycti inside) when Sekoia's answers acknowledge nothing, or refuse one value.

A redirect or a proxy page in place of Sekoia must never move the committed stream position; one
value Sekoia refuses must never stop the feed.
"""

from __future__ import annotations

import copy
import json
import random
import uuid

import pytest
from conftest import COLLECTION, RuntimeFactory

from connector_runtime.sekoia import protocol
from testbed.emulators.opencti.emulator import OpenCTIEmulator
from testbed.emulators.sekoia.server import SekoiaEmulator
from testbed.processes import wait_until
from testbed.workload import build_workload, emit, make_indicator

FAST = {"SEKOIA_INTEL_MAX_BACKOFF_SECONDS": "1"}


def _committed(opencti: OpenCTIEmulator, connector_id: str) -> str:
    """The committed stream position; "0-0" (the stream's start) until the runtime saved a state,
    which it may do at any moment after start-up with that same position."""
    state = opencti.connector_state(connector_id)
    if isinstance(state, str):
        state = json.loads(state)
    return (state or {}).get("start_from") or "0-0"


def _error_lines(log: str) -> list[dict]:
    lines = []
    for line in log.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("level") == "ERROR":
                lines.append(entry)
    return lines


@pytest.mark.parametrize("fault", ["redirect", "html"])
def test_writes_that_acknowledge_nothing_never_move_the_position_and_lose_nothing(
    opencti: OpenCTIEmulator, sekoia: SekoiaEmulator, start_runtime: RuntimeFactory, fault: str
) -> None:
    work = build_workload(120, seed=3, churn=0.0)
    expected = work.expected_values()
    if fault == "redirect":
        # What a root without its /api prefix gets: the same path under /api.
        location = f"{sekoia.base_url}/api{protocol.API_PREFIX}/{COLLECTION}/indicators"
        sekoia.set_faults(redirect_location=location)
        reason = "SekoiaURLRedirects"
        words = [location, f"set the Sekoia URL to {sekoia.base_url}/api"]
    else:
        sekoia.set_faults(html_answers=True)
        reason = "SekoiaUnexpectedAnswer"
        words = ["200 with a text/html body"]
    list(emit(opencti, work.operations))
    runtime = start_runtime(**FAST)
    connector_id = runtime.env["CONNECTOR_ID"]
    before = _committed(opencti, connector_id)

    wait_until(
        lambda: runtime.readiness()[1].startswith(reason),
        60,
        f"/readyz to fail with {reason}",
        on_timeout=lambda: f"{runtime.readiness()}\n{runtime.log()[-2000:]}",
    )
    ready, why = runtime.readiness()
    assert not ready and all(word in why for word in words), why
    # Several retries, several state saves: still nothing committed, nothing in Sekoia.
    wait_until(lambda: sum(1 for r in sekoia.requests() if r["method"] == "POST") >= 4, 30, "retried writes")
    assert runtime.process.alive()
    assert _committed(opencti, connector_id) == before
    assert sekoia.active_values(COLLECTION) == set()
    errors = _error_lines(runtime.log())
    assert errors and all(word in errors[0]["message"] for word in words), errors[:1]
    assert runtime.metric("sis_values_pushed_total") == 0

    sekoia.set_faults(redirect_location=None, html_answers=False)
    wait_until(
        lambda: sekoia.active_values(COLLECTION) == expected,
        60,
        "every value once Sekoia answers properly",
        on_timeout=lambda: (
            f"{len(sekoia.active_values(COLLECTION))}/{len(expected)}\n{runtime.log()[-2000:]}"
        ),
    )
    runtime.wait_ready(timeout=30)
    code, _ = runtime.terminate()
    assert code == 0, runtime.log()[-2000:]
    assert _committed(opencti, connector_id) == opencti.event_ids()[-1]


def test_a_value_refused_by_a_search_is_counted_and_the_next_1000_events_flow(
    opencti: OpenCTIEmulator, sekoia: SekoiaEmulator, start_runtime: RuntimeFactory
) -> None:
    long_url = "http://long.example/" + "a" * 700
    odd = copy.deepcopy(make_indicator(900_001, random.Random(1)))
    odd["pattern"] = f"[url:value = '{long_url}']"
    odd["name"] = long_url
    opencti.create(odd)
    first = start_runtime()
    wait_until(lambda: long_url in sekoia.active_values(COLLECTION), 60, "the long URL pushed")
    assert first.terminate()[0] == 0

    # A fresh runtime knows no indicator id: revoking means searching the value, and the gateway
    # refuses the long term with 414.
    sekoia.set_faults(max_term_length=300)
    opencti.delete(odd)
    work = build_workload(1000, seed=8)
    list(emit(opencti, work.operations))
    runtime = start_runtime()
    expected = work.expected_values() | {long_url}
    wait_until(
        lambda: sekoia.active_values(COLLECTION) == expected,
        180,
        "the 1,000 events after the refused value",
        on_timeout=lambda: (
            f"missing {len(expected - sekoia.active_values(COLLECTION))}\n{runtime.log()[-3000:]}"
        ),
    )
    assert runtime.metric("sis_values_rejected_total") == 1
    _, metrics_text = runtime.get("/metrics")
    assert 'sis_values_rejected_total{reason="too_long"} 1.0' in metrics_text
    assert 414 in {r["status"] for r in sekoia.requests()}
    rejected = [
        json.loads(line)
        for line in runtime.log().splitlines()
        if line.startswith("{") and "revocation rejected" in line
    ]
    assert len(rejected) == 1 and rejected[0]["indicator"] == odd["id"] and "414" in rejected[0]["reason"]
    wait_until(lambda: runtime.metric("sis_pending_events") == 0, 30, "nothing pending")
    code, _ = runtime.terminate()
    assert code == 0, runtime.log()[-2000:]
    assert _committed(opencti, runtime.env["CONNECTOR_ID"]) == opencti.event_ids()[-1]


def test_an_unknown_collection_blocks_without_committing_until_it_exists(
    opencti: OpenCTIEmulator, sekoia: SekoiaEmulator, start_runtime: RuntimeFactory
) -> None:
    missing = f"ioc-collection--{uuid.uuid4()}"
    work = build_workload(50, seed=5, churn=0.0)
    list(emit(opencti, work.operations))
    runtime = start_runtime(
        SEKOIA_INTEL_IOC_COLLECTION_UUID=missing, SEKOIA_INTEL_AUTH_RETRY_SECONDS="1", **FAST
    )
    connector_id = runtime.env["CONNECTOR_ID"]
    before = _committed(opencti, connector_id)
    wait_until(
        lambda: runtime.readiness()[1].startswith("SekoiaCollectionNotFound"),
        60,
        "/readyz to fail with SekoiaCollectionNotFound",
        on_timeout=lambda: f"{runtime.readiness()}\n{runtime.log()[-2000:]}",
    )
    wait_until(lambda: sum(1 for r in sekoia.requests() if r["method"] == "POST") >= 3, 30, "retried writes")
    assert runtime.process.alive()  # a crash loop would replay, this waits
    assert _committed(opencti, connector_id) == before
    wait_until(
        lambda: any("SekoiaCollectionNotFound" in e["message"] for e in _error_lines(runtime.log())),
        30,
        "an ERROR line naming SekoiaCollectionNotFound",
    )

    sekoia.add_collection(missing)
    wait_until(
        lambda: sekoia.active_values(missing) == work.expected_values(),
        60,
        "every value once the collection exists",
        on_timeout=lambda: runtime.log()[-2000:],
    )
    runtime.wait_ready(timeout=30)
    assert runtime.terminate()[0] == 0
    assert _committed(opencti, connector_id) == opencti.event_ids()[-1]
