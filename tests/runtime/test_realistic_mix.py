"""The realistic mix (testbed/feedmix.py) between the emulators: nothing lost, and what Sekoia
holds keeps what detection needs even when requests were coarsened to stay full."""

from __future__ import annotations

from datetime import datetime

from conftest import COLLECTION, RuntimeFactory

from connector_runtime.conversion import convert_indicator
from testbed.emulators.opencti.emulator import OpenCTIEmulator
from testbed.emulators.sekoia.server import SekoiaEmulator
from testbed.feedmix import build_realistic
from testbed.processes import wait_until
from testbed.workload import emit

EVENTS = 3_000


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_backlog_of_the_realistic_mix_arrives_whole_in_full_requests(
    opencti: OpenCTIEmulator, sekoia: SekoiaEmulator, start_runtime: RuntimeFactory
) -> None:
    work = build_realistic(EVENTS, seed=3)
    counts = work.counts()
    assert counts["update"] > 100 and counts["revoke"] > 20
    list(emit(opencti, work.operations))
    # A budget well above the default keeps the test short; the backlog still has to be grouped.
    runtime = start_runtime(SEKOIA_INTEL_REQUESTS_PER_SECOND="40", SEKOIA_INTEL_MAX_IN_FLIGHT="4")
    expected = work.expected_values()
    wait_until(
        lambda: sekoia.active_values(COLLECTION) == expected,
        300,
        "the collection to hold exactly the active values",
        interval=0.5,
        on_timeout=lambda: (
            f"{len(expected ^ sekoia.active_values(COLLECTION))} values differ\n{runtime.log()[-2000:]}"
        ),
    )
    stored = {item["value"]: item for item in sekoia.indicators(COLLECTION) if not item["revoked"]}
    for obj in work.active.values():
        (value,) = convert_indicator(obj).values
        item = stored[obj["name"]]
        assert item["type"] == value.type
        assert item["valid_from"] == obj["valid_from"]  # per value: never coarsened
        assert _when(item["valid_until"]) >= _when(obj["valid_until"]), "validity shortened"
        own = {(p["kill_chain_name"], p["phase_name"]) for p in obj.get("kill_chain_phases", [])}
        held = {(p["kill_chain_name"], p["phase_name"]) for p in item["kill_chain_phases"]}
        assert own <= held and bool(own) == bool(held)

    pushes = [r for r in sekoia.requests() if r["method"] == "POST"]
    pushed = sum(r["values"] for r in pushes)
    assert pushed >= len(expected)
    # Before the ladder this mix took ~0.14 requests per value; a loaded machine reads the stream
    # slower, so the bound leaves room for a smaller backlog than the ideal one.
    assert len(pushes) / pushed <= 0.03, f"{len(pushes)} push requests for {pushed} values"
    assert runtime.metric("sis_values_coarsened_total") > 0
    assert runtime.metric("sis_values_rejected_total") == 0
    code, _ = runtime.terminate()
    assert code == 0
