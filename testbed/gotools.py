"""The test bed's small Go programs (testbed/<name>/), built from the Go module proxy by
testbed/gotool.sh and cached by a hash of their sources."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

BUILD_SCRIPT = Path(__file__).resolve().parent / "gotool.sh"


class GoToolUnavailable(RuntimeError):
    """A test bed Go program could not be built."""


@functools.cache
def go_tool(name: str) -> Path:
    """The built program testbed/<name> (from the cache when its sources have not changed)."""
    done = subprocess.run(["bash", str(BUILD_SCRIPT), name], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise GoToolUnavailable(f"building testbed/{name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1])
