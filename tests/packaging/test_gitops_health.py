"""Argo CD health script (gopher-lua, as Argo CD runs it: testbed/argocdhealth) and the real
kstatus libraries (sigs.k8s.io/cli-utils and Flux's fork, testbed/kstatus) against the statuses
the operator writes."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml
from operator_statuses import cases, observation, sync_object
from packaging_helpers import (
    ARGOCD_DIR,
    EXAMPLES,
    HEALTH_LUA,
    KSTATUS_LIBRARIES,
    ROOT,
    ArgoHealth,
    argocd_harness,
    bin_dir,
    kstatus_verdicts,
)

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


def test_kstatus_of_operator_statuses() -> None:
    """Both libraries, every state the operator writes (one process for the whole table)."""
    verdicts = kstatus_verdicts([obj for obj, _, _ in CASES.values()])
    got = dict(zip(CASES, verdicts, strict=True))
    want = {name: dict.fromkeys(KSTATUS_LIBRARIES, expected) for name, (_, _, expected) in CASES.items()}
    assert got == want


def test_kstatus_needs_the_crd_status_default() -> None:
    """Without the CRD's status default, kstatus would call a resource nobody looked at Current:
    the default is what keeps a Flux health check waiting."""
    bare = sync_object(None)
    del bare["status"]
    assert kstatus_verdicts([bare]) == [dict.fromkeys(KSTATUS_LIBRARIES, "Current")]


def test_suspended_needs_both_the_spec_and_the_operator(argo: ArgoHealth) -> None:
    # spec.suspend just set, operator not caught up (same generation, runtime still running).
    obj = sync_object(observation(), suspend=True)
    assert argo(obj)[0] == "Healthy"


def test_deleting_and_odd_shapes(argo: ArgoHealth) -> None:
    obj: dict[str, Any] = sync_object(observation())
    obj["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert argo(obj)[0] == "Progressing"
    assert kstatus_verdicts([obj]) == [dict.fromkeys(KSTATUS_LIBRARIES, "Terminating")]
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


def test_argocd_layout_passes_under_gopher_lua() -> None:
    """deploy/argocd's health_test.yaml, run by gopher-lua as Argo CD runs health scripts."""
    results = argocd_harness()
    assert len(results) >= len(CASES)
    failed = [r for r in results if r["got"] != r["want"]]
    assert failed == []


def test_argocd_testdata_follow_the_operator() -> None:
    """Each operator state has a testdata file with the operator's current conditions and the
    expected health, so the shipped tests cannot drift from what the operator writes."""
    tests = yaml.safe_load((ARGOCD_DIR / "health_test.yaml").read_text())["tests"]
    expected = {t["inputPath"]: t["healthStatus"]["status"] for t in tests}

    def shape(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
        conds = (obj.get("status") or {}).get("conditions") or []
        return [(c["type"], c["status"], c["reason"]) for c in conds]

    for name, (obj, health, _) in CASES.items():
        path = "testdata/" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + ".yaml"
        assert expected.get(path) == health, name
        shipped = yaml.safe_load((ARGOCD_DIR / path).read_text())
        assert shape(shipped) == shape(obj), name
        assert shipped.get("spec") == obj["spec"] and shipped["metadata"] == obj["metadata"], name
