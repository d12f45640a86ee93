"""The real kstatus libraries for the tests: runs testbed/kstatus (sigs.k8s.io/cli-utils and Flux's
github.com/fluxcd/cli-utils, built from the Go module proxy by testbed/gotools/build.sh)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from testbed.gotools import GoToolUnavailable, go_tool

LIBRARIES = ("cli-utils", "flux")


class KstatusUnavailable(RuntimeError):
    """testbed/kstatus could not be built or did not answer."""


def kstatus_bin() -> Path:
    """The built program (from the cache when its sources have not changed)."""
    try:
        return go_tool("kstatus")
    except GoToolUnavailable as err:
        raise KstatusUnavailable(str(err)) from err


def kstatus_verdicts(objs: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """For each object, library -> the status that library computes (Current, InProgress, ...)."""
    done = subprocess.run(
        [str(kstatus_bin())],
        input=json.dumps(list(objs)),
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if done.returncode != 0:
        raise KstatusUnavailable(f"testbed/kstatus failed ({done.returncode}): {done.stderr.strip()}")
    return [{lib: v[lib]["status"] for lib in LIBRARIES} for v in json.loads(done.stdout)]


def kstatus(obj: Mapping[str, Any]) -> str:
    """The status both libraries compute for `obj`; raises if they disagree."""
    verdict = kstatus_verdicts([obj])[0]
    if len(set(verdict.values())) != 1:
        raise AssertionError(f"the kstatus libraries disagree: {verdict}")
    return verdict[LIBRARIES[0]]


def with_conditions(
    conditions: Sequence[Mapping[str, Any]], generation: int, observed: int
) -> dict[str, Any]:
    """A SekoiaIntelSync at `generation` whose status carries `conditions` observed at `observed`."""
    return {
        "apiVersion": "sync.sekoia-intel.dev/v1alpha1",
        "kind": "SekoiaIntelSync",
        "metadata": {"name": "x", "namespace": "ns", "generation": generation},
        "status": {"observedGeneration": observed, "conditions": list(conditions)},
    }
