"""The real node's artifacts: kubelet and kube-proxy binaries, the pause image and the project image.

Both builds are shell scripts (``build-node-binaries.sh``, ``build-image.sh``) so that ``make`` can
run them without Python; each caches its results (binaries by Kubernetes version, images by the
hash of their inputs) and prints where they are.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


class NodeBuildFailed(RuntimeError):
    """A build script failed; the message carries the tail of its log."""


@dataclass(frozen=True)
class NodeArtifacts:
    """Where the node's binaries and image archives are, and the image references inside them."""

    bin_dir: Path
    pause_archive: Path
    pause_ref: str
    image_archive: Path
    image_ref: str


def _run_script(script: str, log: Path) -> list[str]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as err:
        done = subprocess.run(
            ["bash", str(HERE / script)], stdout=subprocess.PIPE, stderr=err, text=True, check=False
        )
    if done.returncode != 0:
        raise NodeBuildFailed(f"{script} failed (exit {done.returncode}):\n{log.read_text()[-3000:]}")
    return done.stdout.strip().splitlines()


def parse_image_lines(lines: list[str]) -> dict[str, tuple[Path, str]]:
    """``build-image.sh``'s ``name=<archive> <ref>`` lines, by name."""
    found: dict[str, tuple[Path, str]] = {}
    for line in lines:
        name, sep, rest = line.partition("=")
        if not sep or " " not in rest:
            continue
        archive, ref = rest.split(" ", 1)
        found[name] = (Path(archive), ref.strip())
    return found


def ensure_node_artifacts(log: Path) -> NodeArtifacts:
    """Build (or reuse) everything the real node needs; build output goes to ``log``."""
    bin_dir = Path(_run_script("build-node-binaries.sh", log)[-1])
    images = parse_image_lines(_run_script("build-image.sh", log))
    missing = {"pause", "image"} - set(images)
    if missing:
        raise NodeBuildFailed(f"build-image.sh did not report {', '.join(sorted(missing))}")
    return NodeArtifacts(
        bin_dir=bin_dir,
        pause_archive=images["pause"][0],
        pause_ref=images["pause"][1],
        image_archive=images["image"][0],
        image_ref=images["image"][1],
    )
