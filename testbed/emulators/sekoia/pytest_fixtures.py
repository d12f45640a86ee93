"""Helpers for tests that need a running Sekoia emulator.

Test modules define their own small fixtures on top of `running_emulator` (importing a fixture object
across modules confuses linters), e.g.:

    @pytest.fixture
    def emulator():
        with running_emulator() as emu:
            yield emu
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .options import EmulatorOptions
from .server import SekoiaEmulator

TEST_KEY = "sk-test-5b1f0c2e9a7d4e3b"
COLLECTION_UUID = "6f1c3bde-2a4e-4c8f-9d0b-7e5a1c2d3f40"
COLLECTION_ID = "ioc-collection--" + COLLECTION_UUID
LOCAL_NO_PROXY = "127.0.0.1,localhost"


@contextmanager
def running_emulator(
    api_keys: Mapping[str, Any] | Iterable[str] | None = None,
    collections: Iterable[str] | None = None,
    **options: Any,
) -> Iterator[SekoiaEmulator]:
    """A started emulator (key TEST_KEY and collection COLLECTION_UUID unless told otherwise)."""
    emulator = SekoiaEmulator(
        {TEST_KEY} if api_keys is None else api_keys,
        [COLLECTION_UUID] if collections is None else collections,
        EmulatorOptions(**options),
    )
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
