"""``connector-runtime check``: a preflight report against both (emulated) APIs."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import COLLECTION, OPENCTI_TOKEN, SEKOIA_KEY, STREAM_ID

from testbed.emulators.opencti.emulator import OpenCTIEmulator
from testbed.emulators.sekoia.server import SekoiaEmulator
from testbed.runtime_process import runtime_env


def _check(
    opencti: OpenCTIEmulator, sekoia: SekoiaEmulator, **override: str
) -> subprocess.CompletedProcess[str]:
    env = runtime_env(
        opencti.base_url, OPENCTI_TOKEN, STREAM_ID, sekoia.base_url, SEKOIA_KEY, COLLECTION, "check-1"
    )
    env.update(override)
    env["PATH"] = os.environ["PATH"]
    return subprocess.run(
        [sys.executable, "-m", "connector_runtime.cli", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_passes_when_everything_is_reachable(opencti: OpenCTIEmulator, sekoia: SekoiaEmulator) -> None:
    done = _check(opencti, sekoia)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "preflight passed" in done.stdout
    assert done.stdout.count("ok  ") == 4
    # a preflight must not register a connector nor leave a stream position behind
    assert opencti.connector("check-1") is None


def test_check_names_each_problem(opencti: OpenCTIEmulator, sekoia: SekoiaEmulator) -> None:
    cases = {
        "OPENCTI_TOKEN": ("wrong-token", "token refused"),
        "CONNECTOR_LIVE_STREAM_ID": ("no-such-stream", "does not exist"),
        "SEKOIA_INTEL_APIKEY": ("wrong-key", "API key is invalid or expired"),
        "SEKOIA_INTEL_IOC_COLLECTION_UUID": ("6f1d0c2b-0000-4000-8000-000000000000", "not found"),
    }
    for variable, (value, message) in cases.items():
        done = _check(opencti, sekoia, **{variable: value})
        assert done.returncode == 1, variable
        assert message in done.stdout, (variable, done.stdout)
        assert value not in done.stdout or variable not in {"OPENCTI_TOKEN", "SEKOIA_INTEL_APIKEY"}
        assert "Traceback" not in done.stderr
