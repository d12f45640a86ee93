"""A real node's containers seen from the host: the process containerd started for a container,
and what the kernel says about it (user, capabilities, root mount). Evidence that a Pod really runs
as its security context says, read where no API can embellish it."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def container_pid(node: Any, container_id: str) -> int:
    """Host PID of a running container's process, from ``ctr tasks ls`` on the node's containerd.
    ``container_id`` may carry the CRI's ``containerd://`` prefix."""
    bare = container_id.split("://", 1)[-1]
    for line in node.ctr("tasks", "ls").stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == bare:
            return int(fields[1])
    raise LookupError(f"container {bare} has no running task")


def status_field(pid: int, key: str) -> str:
    """One field of ``/proc/<pid>/status`` (``Uid``, ``CapEff``, ``Seccomp``...)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return line.split(":", 1)[1].strip()
    raise LookupError(f"{key} not in /proc/{pid}/status")


def root_mount_options(pid: int) -> list[str]:
    """Mount options of the process's root file system (``ro`` for a read-only root)."""
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            return fields[5].split(",")
    raise LookupError(f"no root mount in /proc/{pid}/mountinfo")


def memory_cgroup(pid: int) -> Path:
    """The process's memory cgroup directory (cgroup v1, as on this machine)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return Path("/sys/fs/cgroup/memory") / path.lstrip("/")
    raise LookupError(f"process {pid} is in no memory cgroup (cgroup v1 expected on this machine)")
