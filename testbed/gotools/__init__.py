"""The Go programs the test bed needs (its own kstatus and argocdhealth, and pinned upstream tools such
as actionlint and kube-score), built from the Go module proxy by build.sh beside this file and cached."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

BUILD_SCRIPT = Path(__file__).resolve().parent / "build.sh"


class GoToolUnavailable(RuntimeError):
    """A Go program could not be built."""


@functools.cache
def go_tool(name: str) -> Path:
    """The built program `name` (from the cache when its sources or pinned version have not changed)."""
    done = subprocess.run(["bash", str(BUILD_SCRIPT), name], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise GoToolUnavailable(f"building {name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1])
