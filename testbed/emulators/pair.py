"""Both emulators at once, for tests that run one sync end to end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from testbed.emulators.opencti.emulator import OpenCTIEmulator
from testbed.emulators.sekoia.server import SekoiaEmulator


@contextmanager
def running_emulators(
    opencti_token: str, stream: str, sekoia_key: str, collection: str, **opencti_options: Any
) -> Iterator[tuple[OpenCTIEmulator, SekoiaEmulator]]:
    """An OpenCTI emulator serving ``stream`` (quick heartbeats and retries unless overridden) and a
    Sekoia emulator holding ``collection``; both stopped on exit, whatever happened."""
    options: dict[str, Any] = {"heartbeat_interval": 1.0, "retry_ms": 200, **opencti_options}
    opencti = OpenCTIEmulator(token=opencti_token, streams=[stream], **options)
    sekoia = SekoiaEmulator(api_keys={sekoia_key}, collections=[collection])
    opencti.start()
    try:
        sekoia.start()
        try:
            yield opencti, sekoia
        finally:
            sekoia.stop()
    finally:
        opencti.stop()
