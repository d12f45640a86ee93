"""The real runtime process (pycti inside) between the OpenCTI and Sekoia emulators."""

from __future__ import annotations

import json
import time

from conftest import COLLECTION, DATA_FILE, SEKOIA_KEY, RuntimeFactory

from connector_runtime.conversion import convert_indicator
from testbed.emulators.opencti.emulator import OpenCTIEmulator
from testbed.emulators.sekoia.server import SekoiaEmulator
from testbed.processes import wait_until


def _indicators() -> list[dict]:
    return [json.loads(line) for line in DATA_FILE.read_text().splitlines() if line.strip()]


def _expected_values(indicators: list[dict]) -> set[str]:
    return {v.value for ind in indicators for v in convert_indicator(ind).values}


def _active(sekoia: SekoiaEmulator) -> set[str]:
    return sekoia.active_values(COLLECTION)


def _wait_active(sekoia: SekoiaEmulator, expected: set[str], timeout: float = 60) -> None:
    wait_until(
        lambda: _active(sekoia) == expected,
        timeout,
        "the collection to hold exactly the expected values",
        on_timeout=lambda: (
            f"missing {sorted(expected - _active(sekoia))[:5]} extra {sorted(_active(sekoia) - expected)[:5]}"
        ),
    )


def test_real_indicators_flow_and_deletions_revoke(
    opencti: OpenCTIEmulator, sekoia: SekoiaEmulator, start_runtime: RuntimeFactory
) -> None:
    indicators = _indicators()
    opencti.add_bundle(indicators)
    runtime = start_runtime()
    runtime.wait_ready()
    expected = _expected_values(indicators)
    assert len(expected) >= 100
    _wait_active(sekoia, expected)

    # every value carries its own type (the seed applied the first comparison's type to all)
    expected_types = {v.value: v.type for ind in indicators for v in convert_indicator(ind).values}
    stored_types = {item["value"]: item["type"] for item in sekoia.indicators(COLLECTION)}
    assert stored_types == expected_types
    assert {"ipv4-addr.value", "domain-name.value", "file.hashes"} <= set(stored_types.values())

    pushes = [r for r in sekoia.requests() if r["method"] == "POST"]
    assert len(pushes) <= 12, f"{len(pushes)} push requests for {len(expected)} values"

    deleted = [ind for ind in indicators if ind["pattern"].startswith("[domain-name")][:3]
    for ind in deleted:
        opencti.delete(ind)
    still_expected = expected - {v.value for ind in deleted for v in convert_indicator(ind).values}
    _wait_active(sekoia, still_expected)

    wait_until(
        lambda: runtime.metric("sis_last_committed_event_timestamp_seconds") > 0, 10, "position metrics"
    )
    wait_until(lambda: runtime.metric("sis_pending_events") == 0, 10, "no pending events reported")
    code, seconds = runtime.terminate()
    assert code == 0, runtime.log()[-3000:]
    assert seconds < 10
    state = opencti.connector_state(runtime.env["CONNECTOR_ID"])
    assert state["start_from"] == opencti.event_ids()[-1] or state["start_from"] >= opencti.event_ids()[-1]


def test_restart_resumes_from_the_committed_position(
    opencti: OpenCTIEmulator, sekoia: SekoiaEmulator, start_runtime: RuntimeFactory
) -> None:
    indicators = _indicators()[:40]
    opencti.add_bundle(indicators)
    first = start_runtime()
    first.wait_ready()
    _wait_active(sekoia, _expected_values(indicators))
    assert first.terminate()[0] == 0
    requests_before = len(sekoia.requests())

    later = _indicators()[40:60]
    opencti.add_bundle(later)
    second = start_runtime()
    second.wait_ready()
    _wait_active(sekoia, _expected_values(indicators + later))
    new_pushes = [r for r in sekoia.requests()[requests_before:] if r["method"] == "POST"]
    pushed_values = sum(r.get("values", 0) or 0 for r in new_pushes)
    assert pushed_values <= len(_expected_values(later)) + 5, "the second run replayed the first run's events"


def test_nothing_is_lost_while_sekoia_fails_and_throttles(
    opencti: OpenCTIEmulator, sekoia: SekoiaEmulator, start_runtime: RuntimeFactory
) -> None:
    sekoia.set_options(rate_limit=3, retry_after=False)
    sekoia.set_faults(error_ratio=0.3, drop_ratio=0.1, latency=0.02)
    indicators = _indicators()
    opencti.add_bundle(indicators)
    runtime = start_runtime(
        SEKOIA_INTEL_REQUESTS_PER_SECOND="20",
        SEKOIA_INTEL_BATCH_SIZE="10",
        SEKOIA_INTEL_MAX_BACKOFF_SECONDS="1",
    )
    runtime.wait_ready(timeout=120)
    _wait_active(sekoia, _expected_values(indicators), timeout=120)
    assert runtime.metric("sis_sekoia_retries_total") > 0
    statuses = {r["status"] for r in sekoia.requests()}
    assert 429 in statuses and any(s and s >= 500 for s in statuses)


def test_a_bad_api_key_makes_the_runtime_unready_until_the_key_is_valid(
    opencti: OpenCTIEmulator, sekoia: SekoiaEmulator, start_runtime: RuntimeFactory
) -> None:
    indicators = _indicators()[:10]
    opencti.add_bundle(indicators)
    runtime = start_runtime(
        SEKOIA_INTEL_APIKEY="rotated-key-not-yet-known", SEKOIA_INTEL_AUTH_RETRY_SECONDS="1"
    )
    wait_until(
        lambda: "API key" in runtime.readiness()[1] or "401" in runtime.readiness()[1],
        60,
        "the runtime to report the refused key",
        on_timeout=lambda: str(runtime.readiness()),
    )
    assert not runtime.readiness()[0]
    assert _active(sekoia) == set()
    assert runtime.process.alive()
    time.sleep(1)
    assert "rotated-key-not-yet-known" not in runtime.log()
    assert SEKOIA_KEY not in runtime.log()

    sekoia.add_api_key("rotated-key-not-yet-known")
    runtime.wait_ready(timeout=60)
    _wait_active(sekoia, _expected_values(indicators))


def test_an_update_that_changes_the_pattern_revokes_the_dropped_value(
    opencti: OpenCTIEmulator, sekoia: SekoiaEmulator, start_runtime: RuntimeFactory
) -> None:
    indicator = next(ind for ind in _indicators() if ind["pattern"].startswith("[ipv4"))
    opencti.create(indicator)
    runtime = start_runtime()
    runtime.wait_ready()
    old_value = convert_indicator(indicator).values[0].value
    _wait_active(sekoia, {old_value})
    opencti.update({**indicator, "pattern": "[ipv4-addr:value = '203.0.113.77']"})
    _wait_active(sekoia, {"203.0.113.77"})
