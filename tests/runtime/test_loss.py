"""Loss test: 10,000 events through faults and repeated SIGKILLs; the collection ends exact."""

from __future__ import annotations

import random
import time

from conftest import COLLECTION, RuntimeFactory

from testbed.emulators.opencti.emulator import OpenCTIEmulator
from testbed.emulators.sekoia.server import SekoiaEmulator
from testbed.processes import wait_until
from testbed.workload import build_workload, emit

EVENTS = 10_000
KILLS = 6


def test_no_value_is_lost_or_left_active_across_kills_and_faults(
    opencti: OpenCTIEmulator, sekoia: SekoiaEmulator, start_runtime: RuntimeFactory
) -> None:
    rnd = random.Random(2026)
    work = build_workload(EVENTS, seed=11)
    assert work.counts()["revoke"] > 300 and work.counts()["delete"] > 300
    # Keep stream order: split into consecutive slices instead of interleaved ones.
    size = len(work.operations) // (KILLS + 1) + 1
    chunks = [work.operations[i : i + size] for i in range(0, len(work.operations), size)]

    sekoia.set_options(rate_limit=60, retry_after=True)
    sekoia.set_faults(
        error_ratio=0.05, drop_ratio=0.02, drop_after_apply=True, latency=0.002, latency_jitter=0.02
    )
    tuning = {
        "SEKOIA_INTEL_REQUESTS_PER_SECOND": "80",
        "SEKOIA_INTEL_MAX_BACKOFF_SECONDS": "1",
        "SEKOIA_INTEL_MAX_IN_FLIGHT": "8",
    }
    list(emit(opencti, chunks[0]))
    runtime = start_runtime(**tuning)
    kills = 0
    for index, chunk in enumerate(chunks[1:], start=1):
        runtime.wait_ready(timeout=60)
        if index == 2:
            sekoia.storm(429, seconds=2.0, retry_after=None)
            sekoia.set_options(retry_after=False)
        if index == 4:
            sekoia.storm(503, seconds=2.0)
        time.sleep(rnd.uniform(1.0, 3.0))
        runtime.kill()
        kills += 1
        list(emit(opencti, chunk))
        runtime = start_runtime(**tuning)
    assert kills >= 5

    expected = work.expected_values()
    wait_until(
        lambda: sekoia.active_values(COLLECTION) == expected,
        600,
        "the collection to hold exactly the active values",
        interval=1.0,
        on_timeout=lambda: (
            f"missing {len(expected - sekoia.active_values(COLLECTION))}, "
            f"wrongly active {len(sekoia.active_values(COLLECTION) - expected)}\n{runtime.log()[-2000:]}"
        ),
    )
    assert runtime.metric("sis_values_rejected_total") == 0
    code, seconds = runtime.terminate()
    assert code == 0 and seconds < 10
