"""Shared helpers for the packaging tests: the chart, helm without a cluster, the Argo CD script,
the real kstatus libraries."""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from testbed.controlplane.binaries import ensure_binaries
from testbed.gotools import go_tool
from testbed.kstatus_runner import LIBRARIES as KSTATUS_LIBRARIES
from testbed.kstatus_runner import kstatus, kstatus_verdicts

__all__ = ["KSTATUS_LIBRARIES", "kstatus", "kstatus_verdicts"]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "sekoia-intel-sync"
CRD = ROOT / "deploy" / "crds" / "sekoiaintelsyncs.yaml"
EXAMPLES = ROOT / "deploy" / "examples"
ARGOCD_DIR = ROOT / "deploy" / "argocd"
HEALTH_LUA = ARGOCD_DIR / "health.lua"


@functools.cache
def bin_dir() -> Path:
    """The pinned helm/kubectl (built or reused from the cache, like the control plane's)."""
    return ensure_binaries()


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run helm without a cluster (lint, template)."""
    done = subprocess.run(
        [str(bin_dir() / "helm"), *args], capture_output=True, text=True, check=False, timeout=120
    )
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done


def set_args(values: Mapping[str, str]) -> list[str]:
    """`--set k=v` pairs (values are helm's --set syntax, e.g. "{a,b}" for a list)."""
    args: list[str] = []
    for key, value in values.items():
        args += ["--set", f"{key}={value}"]
    return args


def render(values: Mapping[str, str] | None = None, namespace: str = "sis-system") -> list[dict[str, Any]]:
    """`helm template` output as objects (CRDs included, as `helm install` would apply them)."""
    out = helm(
        "template", "rel", str(CHART), "--namespace", namespace, "--include-crds", *set_args(values or {})
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def find(objs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """Objects of `kind` (and `name`)."""
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


class ArgoHealth:
    """deploy/argocd/health.lua run by gopher-lua, set up as Argo CD sets it up (testbed/argocdhealth)."""

    def __init__(self, script: Path = HEALTH_LUA) -> None:
        self.script = script
        self.binary = _argocd_harness_bin()

    def many(self, objs: list[Mapping[str, Any]]) -> list[tuple[str, str]]:
        """(status, message) for each object, in one run."""
        done = subprocess.run(
            [self.binary, "--objects", str(self.script)],
            input=json.dumps(objs),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if done.returncode != 0:
            raise AssertionError(f"argocdhealth failed ({done.returncode}): {done.stderr}")
        return [(h["status"], h["message"]) for h in json.loads(done.stdout)]

    def __call__(self, obj: Mapping[str, Any]) -> tuple[str, str]:
        return self.many([obj])[0]


def _argocd_harness_bin() -> str:
    return str(go_tool("argocdhealth"))


def argocd_harness(directory: Path = ARGOCD_DIR) -> list[dict[str, Any]]:
    """testbed/argocdhealth (gopher-lua, set up as Argo CD sets it up) on `directory`'s
    health_test.yaml: one {inputPath, want, got} per test."""
    done = subprocess.run(
        [_argocd_harness_bin(), str(directory)], capture_output=True, text=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise AssertionError(f"argocdhealth failed ({done.returncode}): {done.stderr}")
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result
