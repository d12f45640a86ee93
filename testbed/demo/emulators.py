"""The OpenCTI and Sekoia emulators as separate processes, as a user would run them.

Credentials go through the environment (not the command line) so they never show in `ps`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from testbed.emulators.sekoia.remote import RemoteEmulator
from testbed.processes import ManagedProcess, wait_until


@dataclass
class EmulatorProcess:
    """A running emulator and the base URL it printed."""

    name: str
    process: ManagedProcess
    base_url: str


def _printed_url(log_path: Path) -> str | None:
    # The emulators print their base URL alone on one stdout line once listening.
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith(("http://", "https://")):
            return line.strip()
    return None


def _start(name: str, module: str, args: list[str], env: dict[str, str], log_dir: Path) -> EmulatorProcess:
    log_path = log_dir / f"{name}.log"
    process = ManagedProcess(
        name, [sys.executable, "-P", "-m", module, *args], log_path, env={**os.environ, **env}
    ).start()
    try:
        wait_until(
            lambda: process.alive() and _printed_url(log_path) is not None,
            30,
            f"the {name} to print its address",
            on_timeout=lambda: process.log_tail(2000),
        )
    except BaseException:
        process.stop()
        raise
    url = _printed_url(log_path)
    assert url is not None
    return EmulatorProcess(name, process, url)


def start_opencti(
    log_dir: Path, token: str, stream_id: str, data_file: Path, host: str = "127.0.0.1"
) -> EmulatorProcess:
    """OpenCTI emulator serving one live stream that starts with a create event per indicator.
    ``host`` is the address it listens on (a real node's Pods reach the host at its Pod gateway)."""
    # --recovery: the platform's recovery mode, which a resync (spec.opencti.resyncFrom) uses.
    args = ["--host", host, "--port", "0", "--stream-id", stream_id, "--load", str(data_file), "--recovery"]
    return _start(
        "opencti-emulator", "testbed.emulators.opencti", args, {"OPENCTI_EMULATOR_TOKEN": token}, log_dir
    )


def start_sekoia(log_dir: Path, api_key: str, collection: str, host: str = "127.0.0.1") -> EmulatorProcess:
    """Sekoia emulator with one empty IOC collection, listening on ``host``."""
    args = ["--host", host, "--port", "0", "--collection", collection]
    return _start(
        "sekoia-emulator", "testbed.emulators.sekoia", args, {"SEKOIA_EMULATOR_API_KEYS": api_key}, log_dir
    )


class OpenCTIAdmin:
    """The one admin call the demo needs from the OpenCTI emulator: delete an object."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()
        self._session.trust_env = False  # loopback: never through a proxy

    def delete(self, stix_id: str) -> str:
        """Emit a `delete` event for ``stix_id`` on the stream; returns the event id."""
        answer = self._session.post(
            f"{self.base_url}/_emulator/events/delete", json={"id": stix_id}, timeout=10
        )
        answer.raise_for_status()
        return str(answer.json()["event_id"])


def sekoia_admin(base_url: str) -> RemoteEmulator:
    """Client of the Sekoia emulator's admin API (collection contents)."""
    return RemoteEmulator(base_url)
