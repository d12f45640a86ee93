"""SIGTERM with a backlog: the grace period may end mid-flush, and that is a shutdown, not a failure."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from connector_runtime.config import DescriptionMode, ValidityGranularity
from connector_runtime.delivery.engine import DeliveryEngine, EngineSettings
from connector_runtime.delivery.grouping import SharedFieldsPolicy
from connector_runtime.delivery.positions import PositionTracker
from connector_runtime.sekoia.models import AddOutcome
from connector_runtime.stream.events import parse_event
from testbed.workload import build_workload


class SlowSekoia:
    """Accepts everything, slowly, so that the grace period ends with requests still to send."""

    def add_values(self, values: list[Any], shared: Any) -> AddOutcome:
        time.sleep(0.3)
        return AddOutcome()


def test_grace_period_ending_mid_flush_is_not_an_engine_failure() -> None:
    fatal: list[str] = []
    tracker = PositionTracker(None)
    policy = SharedFieldsPolicy(
        next(iter(DescriptionMode)), next(iter(ValidityGranularity)), "http://cti", "s", "c"
    )
    engine = DeliveryEngine(
        SlowSekoia(),  # type: ignore[arg-type]
        tracker,
        policy,
        EngineSettings(linger_seconds=0.0, max_in_flight=1),
        fatal.append,
        threading.Event(),
    )
    engine.start()
    work = build_workload(400, seed=3, churn=0.0)
    for n, op in enumerate(work.operations):
        event = parse_event("create", f"{n + 1}-0", _payload(op.obj))
        assert engine.submit(event, tracker.begin(event.event_id))
    assert engine.shutdown(grace_seconds=1.0) is False  # not everything could be sent in 1 s
    time.sleep(1.5)  # the sequencer notices the end of the pool on its next submit
    assert fatal == []
    assert not engine.alive()
    assert tracker.pending_count() > 0  # what was not acknowledged stays pending: the next run gets it


def _payload(obj: dict[str, Any]) -> str:
    return json.dumps({"version": "4", "type": "create", "data": obj})
