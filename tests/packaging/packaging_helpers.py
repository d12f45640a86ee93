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
from testbed.kstatus_runner import LIBRARIES as KSTATUS_LIBRARIES
from testbed.kstatus_runner import kstatus, kstatus_verdicts

__all__ = ["KSTATUS_LIBRARIES", "kstatus", "kstatus_verdicts"]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "sekoia-intel-sync"
CRD = ROOT / "deploy" / "crds" / "sekoiaintelsyncs.yaml"
EXAMPLES = ROOT / "deploy" / "examples"
HEALTH_LUA = ROOT / "deploy" / "argocd" / "health.lua"


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
    """deploy/argocd/health.lua in a real Lua 5.1 interpreter (Argo CD embeds gopher-lua, a 5.1)."""

    def __init__(self) -> None:
        from lupa import lua51

        self.lua = lua51.LuaRuntime(unpack_returned_tuples=True)
        # Argo CD runs the script as a chunk with `obj` set as a global; so does this.
        self.fn = self.lua.eval("function(src) return assert(loadstring(src, 'health.lua')) end")(
            HEALTH_LUA.read_text()
        )

    def _to_lua(self, value: Any) -> Any:
        if isinstance(value, Mapping):
            return self.lua.table_from({k: self._to_lua(v) for k, v in value.items()})
        if isinstance(value, list):
            return self.lua.table_from([self._to_lua(v) for v in value])
        return value

    def __call__(self, obj: Mapping[str, Any]) -> tuple[str, str]:
        self.lua.globals().obj = self._to_lua(obj)
        result = self.fn()
        return str(result["status"]), str(result["message"])


ARGOCD_DIR = ROOT / "deploy" / "argocd"
ARGOCD_HARNESS_BUILD = ROOT / "testbed" / "argocdhealth" / "build.sh"


def argocd_harness(directory: Path = ARGOCD_DIR) -> list[dict[str, Any]]:
    """testbed/argocdhealth (gopher-lua, set up as Argo CD sets it up) on `directory`'s
    health_test.yaml: one {inputPath, want, got} per test."""
    built = subprocess.run(["bash", str(ARGOCD_HARNESS_BUILD)], capture_output=True, text=True, check=False)
    if built.returncode != 0:
        raise AssertionError(f"building testbed/argocdhealth failed:\n{built.stderr[-3000:]}")
    binary = built.stdout.strip().splitlines()[-1]
    done = subprocess.run([binary, str(directory)], capture_output=True, text=True, check=False, timeout=60)
    if done.returncode != 0:
        raise AssertionError(f"argocdhealth failed ({done.returncode}): {done.stderr}")
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result
