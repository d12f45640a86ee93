"""The runtime reports progress into its own resource's status, with the identity the operator
gives it (per-resource Role), against the real API server; it may touch nothing else."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sekoia_intel_operator import naming
from sekoia_intel_operator.workload import (
    SyncRef,
    desired_role,
    desired_role_binding,
    desired_service_account,
)

from connector_runtime.progress import StatusReporter, status_api_from_environment
from testbed.controlplane.cluster import LocalCluster

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "deploy" / "crds" / "sekoiaintelsyncs.yaml"


def _resource(name: str) -> dict:
    return {
        "apiVersion": f"{naming.API_GROUP}/{naming.API_VERSION}",
        "kind": "SekoiaIntelSync",
        "metadata": {"name": name},
        "spec": {
            "opencti": {"url": "https://opencti.example.org", "streamId": "live"},
            "sekoia": {"collectionId": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"},
            "credentialsSecretRef": {"name": "creds"},
        },
    }


def test_runtime_identity_patches_only_its_own_status(
    cluster: LocalCluster, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster.kubectl("apply", "--server-side", "-f", str(CRD))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{naming.PLURAL}.{naming.API_GROUP}")
    for name in ("mine", "other"):
        cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(_resource(name)))
    uid = cluster.kubectl(
        "-n", namespace, "get", naming.PLURAL, "mine", "-o", "jsonpath={.metadata.uid}"
    ).stdout
    ref = SyncRef(namespace, "mine", uid)
    for manifest in (desired_service_account(ref), desired_role(ref), desired_role_binding(ref)):
        cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(manifest))
    service_account = desired_service_account(ref)["metadata"]["name"]
    kubeconfig = cluster.kubeconfig_for_token(cluster.token_for(namespace, service_account), tmp_path / "kc")
    monkeypatch.setitem(os.environ, "KUBECONFIG", str(kubeconfig))

    progress = {"valuesPushed": 42, "lastCommittedEventId": "1700000000000-1"}
    mine = StatusReporter(f"{namespace}/mine", lambda: progress, 60)
    assert mine.report_once()
    status = json.loads(cluster.kubectl("-n", namespace, "get", naming.PLURAL, "mine", "-o", "json").stdout)
    assert status["status"]["progress"]["valuesPushed"] == 42

    other = StatusReporter(f"{namespace}/other", lambda: progress, 60)
    assert not other.report_once()
    api = status_api_from_environment()
    denied = api.session.get(f"{api.server}/api/v1/namespaces/{namespace}/secrets", verify=api.verify)
    assert denied.status_code == 403
