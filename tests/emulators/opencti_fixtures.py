"""Pytest fixtures for the OpenCTI emulator; import them explicitly into a test module."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from testbed.emulators.opencti import OpenCTIEmulator

OPENCTI_TOKEN = "emulator-test-token-0f3c"
LIVE_STREAM_ID = "live-indicators"

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def opencti_emulator() -> Iterator[OpenCTIEmulator]:
    """A started emulator with one live stream, fast heartbeats and a short client retry."""
    emulator = OpenCTIEmulator(
        token=OPENCTI_TOKEN, streams={LIVE_STREAM_ID: None}, heartbeat_interval=0.5, retry_ms=200
    )
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
