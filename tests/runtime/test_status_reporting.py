"""The runtime reports progress into its own resource's status, with the identity the operator
gives it (per-resource Role), against the real API server; it may touch nothing else."""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path

import pytest
import requests
from sekoia_intel_operator import naming
from sekoia_intel_operator.workload import (
    SyncRef,
    desired_role,
    desired_role_binding,
    desired_service_account,
)

from connector_runtime.progress import StatusReporter, status_api_from_environment
from testbed.controlplane.cluster import LocalCluster
from testbed.processes import wait_until

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


def _runtime_identity(cluster: LocalCluster, namespace: str) -> str:
    """The CRD, one resource ``mine`` and the runtime's ServiceAccount/Role/RoleBinding; returns
    the ServiceAccount name."""
    cluster.kubectl("apply", "--server-side", "-f", str(CRD))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/{naming.PLURAL}.{naming.API_GROUP}")
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(_resource("mine")))
    uid = cluster.kubectl(
        "-n", namespace, "get", naming.PLURAL, "mine", "-o", "jsonpath={.metadata.uid}"
    ).stdout
    ref = SyncRef(namespace, "mine", uid)
    for manifest in (desired_service_account(ref), desired_role(ref), desired_role_binding(ref)):
        cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(manifest))
    return str(desired_service_account(ref)["metadata"]["name"])


class _BoundTokens:
    """ServiceAccount tokens each bound to its own Secret: deleting the Secret revokes the token,
    as deleting a Pod revokes the token the kubelet projected into it."""

    def __init__(self, cluster: LocalCluster, namespace: str, service_account: str) -> None:
        self.cluster, self.namespace, self.service_account = cluster, namespace, service_account

    def issue(self) -> tuple[str, str]:
        """(token, name of the Secret it is bound to)."""
        holder = f"holder-{uuid.uuid4().hex[:8]}"
        self.cluster.kubectl("-n", self.namespace, "create", "secret", "generic", holder)
        uid = self.cluster.kubectl(
            "-n", self.namespace, "get", "secret", holder, "-o", "jsonpath={.metadata.uid}"
        ).stdout
        return self.cluster.bound_token(self.namespace, self.service_account, holder, uid), holder

    def revoke(self, token: str, holder: str) -> None:
        """Delete the bound Secret and wait until the API server refuses the token."""
        self.cluster.kubectl("-n", self.namespace, "delete", "secret", holder)
        ca = str(self.cluster.pki.ca_cert) if self.cluster.pki else True

        def refused() -> bool:
            answer = requests.get(
                f"{self.cluster.server}/apis/{naming.API_GROUP}/{naming.API_VERSION}/namespaces/"
                f"{self.namespace}/{naming.PLURAL}/mine",
                headers={"Authorization": f"Bearer {token}"},
                verify=ca,
                timeout=10,
            )
            return answer.status_code == 401

        wait_until(refused, 60, "the API server to refuse the revoked token")


def _progress(cluster: LocalCluster, namespace: str) -> dict:
    body = json.loads(cluster.kubectl("-n", namespace, "get", naming.PLURAL, "mine", "-o", "json").stdout)
    return dict(body["status"]["progress"])


def test_progress_survives_a_rotated_token_file(
    cluster: LocalCluster, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kubeconfig with ``tokenFile`` (the demo's and soak's set-up): the runtime follows the file."""
    tokens = _BoundTokens(cluster, namespace, _runtime_identity(cluster, namespace))
    first, first_holder = tokens.issue()
    token_file = tmp_path / "token"
    token_file.write_text(first)
    kubeconfig = cluster.kubeconfig_for_token_file(token_file, tmp_path / "kc")
    monkeypatch.setitem(os.environ, "KUBECONFIG", str(kubeconfig))
    progress = {"valuesPushed": 1}
    reporter = StatusReporter(f"{namespace}/mine", lambda: dict(progress), 60)
    assert reporter.report_once()

    second, _ = tokens.issue()
    token_file.write_text(second)
    tokens.revoke(first, first_holder)
    progress["valuesPushed"] = 2
    assert reporter.report_once()
    assert _progress(cluster, namespace)["valuesPushed"] == 2


def _padded(token: str) -> str:
    # Every token file the same size (readers strip the newlines), so a rewrite can be invisible.
    assert len(token) < 4000
    return token + "\n" * (4000 - len(token))


def test_progress_survives_rotation_of_the_projected_token_in_a_pod(
    cluster: LocalCluster,
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """In-cluster identity, laid out as the kubelet projects it (``token -> ..data/token``, the
    ``..data`` symlink swapped atomically at each rotation); a rewrite the file's metadata does not
    show is caught by the API server's 401."""
    tokens = _BoundTokens(cluster, namespace, _runtime_identity(cluster, namespace))
    mount = tmp_path / "serviceaccount"
    mount.mkdir()

    def project(token: str, generation: int) -> None:
        data = mount / f"..{generation}"
        data.mkdir()
        (data / "token").write_text(_padded(token))
        (data / "ca.crt").write_bytes(cluster.pki.ca_cert.read_bytes() if cluster.pki else b"")
        link = mount / "..data_tmp"
        link.symlink_to(data.name)
        link.replace(mount / "..data")
        for name in ("token", "ca.crt"):
            if not (mount / name).is_symlink():
                (mount / name).symlink_to(f"..data/{name}")

    first, first_holder = tokens.issue()
    project(first, 1)
    host, port = cluster.server.removeprefix("https://").rsplit(":", 1)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    progress = {"valuesPushed": 10}
    reporter = StatusReporter(
        f"{namespace}/mine", lambda: dict(progress), 60, lambda: status_api_from_environment(mount)
    )
    assert reporter.report_once()

    # Rotation as the kubelet does it, then the old token revoked.
    second, second_holder = tokens.issue()
    project(second, 2)
    tokens.revoke(first, first_holder)
    progress["valuesPushed"] = 20
    assert reporter.report_once()
    assert _progress(cluster, namespace)["valuesPushed"] == 20

    # The file rewritten in place with its size and time kept: only the 401 can tell.
    third, _ = tokens.issue()
    current = (mount / "token").resolve()
    before = current.stat()
    current.write_text(_padded(third))
    os.utime(current, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = current.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    tokens.revoke(second, second_holder)
    progress["valuesPushed"] = 30
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="connector_runtime.progress"):
        assert reporter.report_once()
    assert "refused the ServiceAccount token" in caplog.text  # found by the 401, not by the file
    assert _progress(cluster, namespace)["valuesPushed"] == 30


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
    denied = api.session.get(
        f"{api.server}/api/v1/namespaces/{namespace}/secrets", headers=api.headers(), verify=api.verify
    )
    assert denied.status_code == 403
