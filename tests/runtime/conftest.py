"""Fixtures for end-to-end runtime tests: both emulators and a way to start real runtimes."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from testbed.emulators.opencti.emulator import OpenCTIEmulator
from testbed.emulators.sekoia.server import SekoiaEmulator
from testbed.runtime_process import RuntimeProcess, runtime_env

OPENCTI_TOKEN = "opencti-e2e-token-4f9d2c"
SEKOIA_KEY = "sekoia-e2e-key-8b1e77"
STREAM_ID = "live-e2e"
COLLECTION = "ioc-collection--0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"
DATA_FILE = Path(__file__).resolve().parents[2] / "testbed" / "data" / "sekoia-apt31-indicators.jsonl"


@pytest.fixture
def opencti() -> Iterator[OpenCTIEmulator]:
    emulator = OpenCTIEmulator(token=OPENCTI_TOKEN, streams=[STREAM_ID], heartbeat_interval=1.0, retry_ms=200)
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def sekoia() -> Iterator[SekoiaEmulator]:
    emulator = SekoiaEmulator(api_keys={SEKOIA_KEY}, collections=[COLLECTION])
    emulator.start()
    yield emulator
    emulator.stop()


RuntimeFactory = Callable[..., RuntimeProcess]


@pytest.fixture
def start_runtime(
    opencti: OpenCTIEmulator, sekoia: SekoiaEmulator, tmp_path: Path
) -> Iterator[RuntimeFactory]:
    """Start runtimes (same connector id unless told otherwise); all are stopped at the end."""
    started: list[RuntimeProcess] = []
    counter = itertools.count()
    connector_id = str(uuid.uuid4())

    def start(**extra: str) -> RuntimeProcess:
        env = runtime_env(
            opencti.base_url,
            OPENCTI_TOKEN,
            STREAM_ID,
            sekoia.base_url,
            extra.pop("SEKOIA_INTEL_APIKEY", SEKOIA_KEY),
            COLLECTION,
            extra.pop("CONNECTOR_ID", connector_id),
            **extra,
        )
        runtime = RuntimeProcess(env, tmp_path / f"runtime-{next(counter)}.log").start()
        started.append(runtime)
        return runtime

    yield start
    for runtime in started:
        runtime.kill()
