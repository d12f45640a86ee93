"""Container logs of the real node, read where the kubelet writes them, while the containers live.

The kubelet keeps a Pod's logs in ``<podLogsDir>/<namespace>_<pod>_<uid>/<container>/<restart>.log``
in the CRI format (``<time> <stream> <F|P> <text>``). It removes a container's file with the container
(only the last dead one per Pod is kept) and rotates big files by renaming them, so a harness that wants
every line of every process of a run must copy them while they exist: that is what
:class:`PodLogTail` does, into one plain file, in the order each container wrote them.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class CriLine:
    """One record of a CRI log file; ``partial`` when the runtime split a long line (tag ``P``)."""

    time: str
    stream: str
    partial: bool
    text: str


def parse_cri_line(line: str) -> CriLine | None:
    """``2026-12-07T07:10:00.1Z stdout F {...}`` as its parts; None for anything else."""
    parts = line.rstrip("\n").split(" ", 3)
    if len(parts) < 3 or parts[1] not in ("stdout", "stderr"):
        return None
    tag = parts[2].split(":")[0]
    if tag not in ("F", "P"):
        return None
    return CriLine(parts[0], parts[1], tag == "P", parts[3] if len(parts) > 3 else "")


@dataclass
class _Followed:
    """One log file being read: how far, and the start of a line the runtime split."""

    offset: int = 0
    pending: str = ""
    remainder: bytes = b""  # bytes after the last newline (a record still being written)


@dataclass
class PodLogTail:
    """Copies the text of every container log under ``pods_dir`` whose Pod directory starts with
    ``prefix`` (``<namespace>_``) into ``out``, as plain lines; :meth:`sweep` reads what is new.

    Files are followed by inode, so a rotated file (renamed by the kubelet) is read to its end and
    its successor from its start. Compressed rotations (``.gz``) are older than the newest rotation
    and were read before they were compressed, as long as sweeps come more often than rotations.
    """

    pods_dir: Path
    prefix: str
    out: Path
    lines: int = 0
    _files: dict[int, _Followed] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sweep(self) -> int:
        """Append every new complete record to ``out``; returns the lines added."""
        added = 0
        with self._lock:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            with self.out.open("a", encoding="utf-8") as sink:
                for path in self._log_files():
                    try:
                        added += self._read(path, sink)
                    except FileNotFoundError:  # removed with its container between listing and reading
                        continue
        self.lines += added
        return added

    def _log_files(self) -> list[Path]:
        if not self.pods_dir.is_dir():
            return []
        found: list[tuple[float, Path]] = []
        for pod_dir in self.pods_dir.iterdir():
            if not pod_dir.name.startswith(self.prefix):
                continue
            for path in pod_dir.glob("*/*.log*"):
                if path.suffix != ".gz":
                    try:
                        found.append((path.stat().st_mtime, path))
                    except FileNotFoundError:
                        continue
        # Oldest first: a rotated file before its successor, a dead container before its restart.
        return [path for _, path in sorted(found)]

    def _read(self, path: Path, sink: IO[str]) -> int:
        with path.open("rb") as handle:
            inode = os.fstat(handle.fileno()).st_ino
            followed = self._files.setdefault(inode, _Followed())
            handle.seek(followed.offset)
            chunk = handle.read()
        if not chunk:
            return 0
        followed.offset += len(chunk)
        data = followed.remainder + chunk
        if b"\n" not in data:
            followed.remainder = data
            return 0
        complete, _, followed.remainder = data.rpartition(b"\n")
        added = 0
        for raw in complete.decode("utf-8", errors="replace").split("\n"):
            record = parse_cri_line(raw)
            if record is None:
                continue
            if record.partial:
                followed.pending += record.text
                continue
            sink.write(followed.pending + record.text + "\n")
            followed.pending = ""
            added += 1
        return added
