"""Argo CD health script (real Lua 5.1) and kstatus rules against the statuses the operator writes."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml
from kstatus_rules import compute
from operator_statuses import cases, observation, sync_object
from packaging_helpers import EXAMPLES, HEALTH_LUA, ROOT, ArgoHealth, bin_dir

CASES = cases()
ARGO_KEY = "resource.customizations.health.sync.sekoia-intel.dev_SekoiaIntelSync"


@pytest.fixture(scope="module")
def argo() -> ArgoHealth:
    return ArgoHealth()


@pytest.mark.parametrize("name", list(CASES))
def test_argocd_health_of_operator_statuses(argo: ArgoHealth, name: str) -> None:
    obj, expected, _ = CASES[name]
    status, message = argo(obj)
    assert status == expected, message
    assert message  # Argo CD shows it next to the status: never leave it empty


@pytest.mark.parametrize("name", list(CASES))
def test_kstatus_of_operator_statuses(name: str) -> None:
    obj, _, expected = CASES[name]
    assert compute(obj) == expected


def test_operator_statuses_mean_the_same_with_or_without_the_ready_rule() -> None:
    """Plain kstatus ignores Ready; Flux-style readers use it. Once the operator has written a
    status they agree, because every Ready=False comes with Reconciling or Stalled."""
    for name, (obj, _, _) in CASES.items():
        if "status" in obj:
            assert compute(obj, ready_rule=False) == compute(obj), name
    # Before the first status only the Ready rule sees that nothing happened yet.
    assert compute(sync_object(None), ready_rule=False) == "Current"


def test_suspended_needs_both_the_spec_and_the_operator(argo: ArgoHealth) -> None:
    # spec.suspend just set, operator not caught up (same generation, runtime still running).
    obj = sync_object(observation(), suspend=True)
    assert argo(obj)[0] == "Healthy"


def test_deleting_and_odd_shapes(argo: ArgoHealth) -> None:
    obj: dict[str, Any] = sync_object(observation())
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert argo(obj)[0] == "Progressing"
    assert compute(obj) == "Terminating"
    assert argo({"metadata": {"generation": 1}, "status": {"conditions": []}})[0] == "Progressing"
    bare_ready = {
        "metadata": {"generation": 1},
        "status": {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "False"}]},
    }
    assert argo(bare_ready) == ("Progressing", "Waiting for the Ready condition")


def test_argocd_config_renders_the_script_verbatim() -> None:
    out = subprocess.run(
        [str(bin_dir() / "kubectl"), "kustomize", str(ROOT / "deploy" / "argocd")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cm = yaml.safe_load(out)
    assert (cm["kind"], cm["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    assert cm["data"] == {ARGO_KEY: HEALTH_LUA.read_text()}


def test_example_application_points_at_the_examples() -> None:
    app = yaml.safe_load((EXAMPLES / "argocd-application.yaml").read_text())
    kustomization = yaml.safe_load((EXAMPLES / "kustomization.yaml").read_text())
    assert (ROOT / app["spec"]["source"]["path"] / "kustomization.yaml").is_file()
    assert app["spec"]["destination"]["namespace"] == kustomization["namespace"]
    flux = yaml.safe_load((EXAMPLES / "flux-kustomization.yaml").read_text())
    check = flux["spec"]["healthChecks"][0]
    assert (check["kind"], check["namespace"]) == ("SekoiaIntelSync", kustomization["namespace"])
