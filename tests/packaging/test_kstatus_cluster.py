"""kstatus (sigs.k8s.io/cli-utils and Flux's fork) on SekoiaIntelSyncs read back from the real API
server: a fresh resource, and every status the operator writes, written through the status
subresource as the operator does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from operator_statuses import cases
from packaging_helpers import CRD, EXAMPLES, KSTATUS_LIBRARIES, kstatus_verdicts

pytestmark = pytest.mark.cluster

CRD_NAME = "crd/sekoiaintelsyncs.sync.sekoia-intel.dev"


def _install_crd(cluster: Any) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    cluster.kubectl("wait", "--for=condition=Established", CRD_NAME, "--timeout=60s")


def _example_spec() -> dict[str, Any]:
    docs = yaml.safe_load_all((EXAMPLES / "sekoiaintelsync.yaml").read_text())
    return next(d for d in docs if d and d["kind"] == "SekoiaIntelSync")["spec"]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _create(cluster: Any, tmp_path: Path, namespace: str, name: str, suspend: bool) -> dict[str, Any]:
    obj = {
        "apiVersion": "sync.sekoia-intel.dev/v1alpha1",
        "kind": "SekoiaIntelSync",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {**_example_spec(), "suspend": suspend},
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(obj))
    return json.loads(cluster.kubectl("create", "-f", str(path), "-o", "json").stdout)


def _get(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("-n", namespace, "get", "sis", name, "-o", "json").stdout)


def _rebase(status: dict[str, Any], case_generation: int, generation: int) -> dict[str, Any]:
    """The case's status moved from its generation to the live object's, keeping any lag."""
    shift = generation - case_generation
    out = dict(status)
    out["observedGeneration"] = status["observedGeneration"] + shift
    out["conditions"] = [
        {**c, "observedGeneration": c["observedGeneration"] + shift} if "observedGeneration" in c else c
        for c in status.get("conditions", [])
    ]
    return out


def test_fresh_resource_is_in_progress(cluster: Any, namespace: str, tmp_path: Path) -> None:
    _install_crd(cluster)
    _create(cluster, tmp_path, namespace, "fresh", suspend=False)
    fresh = _get(cluster, namespace, "fresh")
    # The API server fills in the CRD's status default; the operator has written nothing.
    assert fresh["status"] == {"observedGeneration": 0}
    assert fresh["metadata"]["generation"] == 1
    assert kstatus_verdicts([fresh]) == [dict.fromkeys(KSTATUS_LIBRARIES, "InProgress")]


def test_operator_statuses_read_back(cluster: Any, namespace: str, tmp_path: Path) -> None:
    _install_crd(cluster)
    names: dict[str, str] = {}
    for case, (obj, _, _) in cases().items():
        if "conditions" not in obj["status"]:
            continue  # the fresh resource: see test_fresh_resource_is_in_progress
        name = _slug(case)
        live = _create(cluster, tmp_path, namespace, name, suspend=obj["spec"]["suspend"])
        live["status"] = _rebase(obj["status"], obj["metadata"]["generation"], live["metadata"]["generation"])
        path = tmp_path / f"{name}-status.json"
        path.write_text(json.dumps(live))
        cluster.kubectl("replace", "--subresource=status", "-f", str(path))
        names[case] = name
    objs = [_get(cluster, namespace, name) for name in names.values()]
    got = dict(zip(names, kstatus_verdicts(objs), strict=True))
    want = {case: dict.fromkeys(KSTATUS_LIBRARIES, cases()[case][2]) for case in names}
    assert got == want
    assert len(names) >= 10  # every state but the fresh one went through the API server


def test_deleting_resource_is_terminating(cluster: Any, namespace: str, tmp_path: Path) -> None:
    _install_crd(cluster)
    _create(cluster, tmp_path, namespace, "going", suspend=False)
    cluster.kubectl(
        "-n",
        namespace,
        "patch",
        "sis",
        "going",
        "--type=merge",
        "-p",
        json.dumps({"metadata": {"finalizers": ["test.sekoia-intel.dev/hold"]}}),
    )
    cluster.kubectl("-n", namespace, "delete", "sis", "going", "--wait=false")
    going = _get(cluster, namespace, "going")
    try:
        assert kstatus_verdicts([going]) == [dict.fromkeys(KSTATUS_LIBRARIES, "Terminating")]
    finally:
        cluster.kubectl(
            "-n",
            namespace,
            "patch",
            "sis",
            "going",
            "--type=merge",
            "-p",
            json.dumps({"metadata": {"finalizers": None}}),
        )
