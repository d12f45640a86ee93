"""Which node runs the demo's runtime Pod: the real one (kubelet + containerd + runc) whenever this
machine can run it, else the local stand-in for a kubelet, and then always with the reason.

The choice is made before anything starts, from facts the user can check: ``SIS_REAL_NODE=0``,
the real node's prerequisites (root, Debian's containerd/runc/CNI plugins, a memory cgroup), and
whether another real node already holds this machine's one Pod bridge.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from testbed.node.realnode import BRIDGE, NodeUnavailable, check_prerequisites

STAND_IN = "LOCAL STAND-IN FOR A KUBELET"


@dataclass(frozen=True)
class NodeChoice:
    """``real`` or not, and when not, why (one line, shown to the user)."""

    real: bool
    reason: str = ""


def choose_node(env: Mapping[str, str] | None = None) -> NodeChoice:
    """The real node unless the user opted out or this machine cannot run one right now."""
    env = os.environ if env is None else env
    if env.get("SIS_REAL_NODE", "1") == "0":
        return NodeChoice(False, "SIS_REAL_NODE=0 asked for it")
    try:
        check_prerequisites()
    except NodeUnavailable as exc:
        return NodeChoice(False, str(exc))
    if Path("/sys/class/net", BRIDGE).exists():
        # One real node per machine: starting a second one would take the first one's bridge away.
        return NodeChoice(
            False,
            f"the Pod bridge {BRIDGE} exists, so another real node runs on this machine "
            f"(one at a time; if none does, remove it: ip link del {BRIDGE})",
        )
    return NodeChoice(True)


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except OSError:
        return "?"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else "?"


def node_versions(bin_dir: Path) -> str:
    """``kubelet v… + containerd … + runc …``, as the binaries themselves report it."""
    kubelet = _first_line([str(bin_dir / "kubelet"), "--version"]).replace("Kubernetes ", "")
    containerd = _first_line(["containerd", "--version"]).split()
    runc = _first_line(["runc", "--version"]).split()
    return (
        f"kubelet {kubelet} + containerd {containerd[2] if len(containerd) > 2 else '?'} "
        f"+ runc {runc[2] if len(runc) > 2 else '?'}"
    )
