"""The emulator's recovery mode (`?recover=<date>`), as the platform serves it: the current
version of each object updated between the start position and the date, as `create` events
with their update time as id, then the live stream from the date on."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from opencti_fixtures import LIVE_STREAM_ID, OPENCTI_TOKEN
from opencti_helpers import SseReader

from testbed.emulators.opencti import OpenCTIEmulator


@pytest.fixture
def emulator() -> Iterator[OpenCTIEmulator]:
    emu = OpenCTIEmulator(
        token=OPENCTI_TOKEN, streams={LIVE_STREAM_ID: None}, heartbeat_interval=0.5, recovery=True
    )
    emu.start()
    yield emu
    emu.stop()


def _indicator(n: int, value: str) -> dict[str, object]:
    return {
        "type": "indicator",
        "id": f"indicator--{uuid.UUID(int=n)}",
        "pattern": f"[domain-name:value = '{value}']",
        "pattern_type": "stix",
    }


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_recovery_sends_current_objects_then_goes_live(emulator: OpenCTIEmulator) -> None:
    emu = emulator
    old = emu.create(_indicator(1, "old.example"))
    time.sleep(0.01)
    start_ms = int(time.time() * 1000)
    time.sleep(0.01)
    emu.create(_indicator(2, "kept.example"))
    emu.update(_indicator(2, "changed.example"))
    emu.create(_indicator(3, "gone.example"))
    emu.delete(_indicator(3, "gone.example")["id"])
    time.sleep(0.01)
    until_ms = int(time.time() * 1000)
    time.sleep(0.01)
    url = f"{emu.base_url}/stream/{LIVE_STREAM_ID}?recover={_iso(until_ms)}"
    _, reader = SseReader.open(url, OPENCTI_TOKEN, last_event_id=f"{start_ms}-0")
    try:
        live = emu.create(_indicator(4, "live.example"))
        first, second = reader.take(2)
        # One create for the object changed in the window, in its current version; the deleted
        # one and the one older than the start are not sent.
        payload = first.json()
        assert first.event == "create" and payload["origin"]["referer"] == "init-create"
        assert payload["data"]["pattern"] == "[domain-name:value = 'changed.example']"
        assert start_ms <= int(first.id.split("-")[0]) <= until_ms
        assert (second.event, second.id) == ("create", live)
        assert old not in {first.id, second.id}
    finally:
        reader.close()
    assert emu.stream_connections()[-1]["recover"] == _iso(until_ms)
