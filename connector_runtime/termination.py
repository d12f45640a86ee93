"""The container termination message: the one line Kubernetes shows for a failed container."""

from __future__ import annotations

from pathlib import Path


def write_termination_message(path: Path, message: str) -> bool:
    """Write ``message`` to ``path`` when it is writable; never raise. Returns whether it was written."""
    try:
        path.write_text(message[:4000] + "\n")
    except OSError:
        return False
    return True
