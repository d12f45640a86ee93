"""The container termination message: the one line Kubernetes shows for a failed container."""

from __future__ import annotations

from pathlib import Path

from connector_runtime import redaction


def write_termination_message(path: Path, message: str) -> bool:
    """Write ``message`` (masked, one line) to ``path`` when it is writable; never raise. Returns
    whether it was written."""
    try:
        path.write_text(redaction.one_line(message, limit=4000) + "\n", encoding="utf-8")
    except OSError:
        return False
    return True
