"""The connector runtime as a real child process, for end-to-end tests, benchmarks and the demo.

pycti SIGTERMs its own process on stream failures, so the runtime is never run inside the
caller's process: it is started with ``connector-runtime run`` and observed over its health and
metrics endpoints.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from testbed.processes import ManagedProcess, free_port, wait_until


def runtime_command() -> list[str]:
    """argv that starts the runtime with the current interpreter's installation."""
    script = shutil.which("connector-runtime", path=str(Path(sys.executable).parent))
    return [script, "run"] if script else [sys.executable, "-m", "connector_runtime.cli", "run"]


def runtime_env(
    opencti_url: str,
    opencti_token: str,
    stream_id: str,
    sekoia_url: str,
    sekoia_key: str,
    collection: str,
    connector_id: str,
    **extra: str,
) -> dict[str, str]:
    """Environment for a runtime using the seed's variable names plus test-friendly tuning."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "OPENCTI_URL": opencti_url,
        "OPENCTI_TOKEN": opencti_token,
        "CONNECTOR_ID": connector_id,
        "CONNECTOR_NAME": "sekoia-intel-sync-test",
        "CONNECTOR_LOG_LEVEL": "info",
        "CONNECTOR_LIVE_STREAM_ID": stream_id,
        "SEKOIA_INTEL_URL": sekoia_url,
        "SEKOIA_INTEL_APIKEY": sekoia_key,
        "SEKOIA_INTEL_IOC_COLLECTION_UUID": collection,
        "SEKOIA_INTEL_BATCH_LINGER_SECONDS": "0.2",
        "RUNTIME_STATE_SAVE_INTERVAL_SECONDS": "1",
    }
    env.update(extra)
    return env


class RuntimeProcess:
    """One runtime process with its own health port and log file."""

    def __init__(self, env: Mapping[str, str], log_path: Path, name: str = "connector-runtime") -> None:
        self.port = int(env.get("RUNTIME_HTTP_PORT") or free_port())
        self.env = {**env, "RUNTIME_HTTP_PORT": str(self.port)}
        self.env.setdefault("RUNTIME_TERMINATION_LOG", str(log_path.with_suffix(".termination")))
        self.termination_log = Path(self.env["RUNTIME_TERMINATION_LOG"])
        self.process = ManagedProcess(name, runtime_command(), log_path, env=self.env)
        self.started_at = 0.0

    def start(self) -> RuntimeProcess:
        """Start the process (returns at once)."""
        self.started_at = time.monotonic()
        self.process.start()
        return self

    def get(self, path: str) -> tuple[int, str]:
        """(status, body) of a GET on the runtime's HTTP port."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def readiness(self) -> tuple[bool, str]:
        """(ready, reason) from ``/readyz``."""
        try:
            status, body = self.get("/readyz")
        except OSError as exc:
            return False, f"not answering: {exc}"
        return status == 200, json.loads(body).get("reason", "") if body.startswith("{") else body

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Wait until ``/readyz`` answers 200; return the seconds since start."""
        wait_until(
            lambda: self._check_alive() and self.readiness()[0],
            timeout,
            "the runtime to be ready",
            interval=0.05,
            on_timeout=lambda: f"readiness: {self.readiness()}\n{self.process.log_tail()}",
        )
        return time.monotonic() - self.started_at

    def _check_alive(self) -> bool:
        if not self.process.alive():
            raise AssertionError(f"the runtime exited early:\n{self.process.log_tail()}")
        return True

    def metric(self, name: str) -> float:
        """Sum of every sample of a metric family (all label sets)."""
        _, text = self.get("/metrics")
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                key = line.split(" ", 1)[0]
                if key == name or key.startswith(name + "{"):
                    total += float(line.rsplit(" ", 1)[1])
        return total

    def terminate(self, timeout: float = 15.0) -> tuple[int | None, float]:
        """SIGTERM; return (exit code, seconds it took to exit)."""
        began = time.monotonic()
        code = self.process.stop(timeout=timeout)
        return code, time.monotonic() - began

    def kill(self) -> None:
        """SIGKILL (a crash: nothing is flushed or saved)."""
        self.process.kill()

    def log(self) -> str:
        """The whole log of this process."""
        return self.process.log_path.read_text(errors="replace") if self.process.log_path.exists() else ""
