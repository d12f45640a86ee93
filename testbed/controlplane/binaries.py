"""Locating (and, when missing, building) the control-plane binaries.

The build itself lives in ``build-binaries.sh`` so that ``make`` can run it without Python; this
module runs that script and returns the cache directory it prints.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

BUILD_SCRIPT = Path(__file__).with_name("build-binaries.sh")
REQUIRED = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "helm",
    "kwok",
)


class BinariesUnavailable(RuntimeError):
    """The control-plane binaries could neither be found nor built."""


def ensure_binaries(build_log: Path | None = None) -> Path:
    """Return the directory holding every binary in ``REQUIRED``, building what is missing.

    ``SIS_CONTROLPLANE_BIN_DIR`` points at a ready directory and skips the build script entirely
    (useful for binaries built elsewhere). A failed build raises with the tail of its log.
    """
    override = os.environ.get("SIS_CONTROLPLANE_BIN_DIR")
    if override:
        bin_dir = Path(override)
        _check(bin_dir)
        return bin_dir
    log_file = build_log.open("w") if build_log else subprocess.DEVNULL
    try:
        done = subprocess.run(
            ["bash", str(BUILD_SCRIPT)],
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            check=False,
        )
    finally:
        if build_log:
            log_file.close()  # type: ignore[union-attr]
    if done.returncode != 0:
        tail = build_log.read_text()[-3000:] if build_log else ""
        raise BinariesUnavailable(f"building the control plane failed (exit {done.returncode}):\n{tail}")
    bin_dir = Path(done.stdout.strip().splitlines()[-1])
    _check(bin_dir)
    return bin_dir


def _check(bin_dir: Path) -> None:
    missing = [name for name in REQUIRED if not os.access(bin_dir / name, os.X_OK)]
    if missing:
        raise BinariesUnavailable(f"{bin_dir} lacks {', '.join(missing)}")
