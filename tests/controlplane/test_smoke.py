"""The local control plane is a real one: workloads run, GC, RBAC and Pod Security are enforced."""

from __future__ import annotations

import json
import operator
from pathlib import Path

import pytest

from testbed.controlplane.cluster import LocalCluster
from testbed.processes import wait_until

pytestmark = pytest.mark.cluster


def _apply(cluster: LocalCluster, namespace: str, manifest: dict) -> None:
    cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(manifest))


def _deployment(name: str) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": "example.invalid/smoke:1"}]},
            },
        },
    }


def _pod_phases(cluster: LocalCluster, namespace: str, selector: str) -> list[str]:
    out = cluster.kubectl("-n", namespace, "get", "pods", "-l", selector, "-o", "json").stdout
    return [pod["status"].get("phase", "") for pod in json.loads(out)["items"]]


def test_stdlib_operator_module_is_untouched_and_the_operator_package_imports() -> None:
    import sekoia_intel_operator

    assert operator.add(1, 2) == 3
    assert Path(operator.__file__).parent.name.startswith("python3")
    assert Path(sekoia_intel_operator.__file__).parent.name == "operator"


def test_api_server_reports_its_pinned_version(cluster: LocalCluster) -> None:
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert version["major"] == "1"
    assert version["gitVersion"].startswith("v1.")
    assert int(version["minor"]) >= 30


def test_deployment_reaches_a_running_pod(cluster: LocalCluster, namespace: str) -> None:
    _apply(cluster, namespace, _deployment("smoke"))
    wait_until(
        lambda: _pod_phases(cluster, namespace, "app=smoke") == ["Running"],
        90,
        "the Deployment's Pod to be Running on the kwok node",
    )
    status = json.loads(cluster.kubectl("-n", namespace, "get", "deploy", "smoke", "-o", "json").stdout)
    wait_until(
        lambda: (
            json.loads(cluster.kubectl("-n", namespace, "get", "deploy", "smoke", "-o", "json").stdout)[
                "status"
            ].get("availableReplicas")
            == 1
        ),
        60,
        "the Deployment to report one available replica",
    )
    assert status["metadata"]["name"] == "smoke"


def test_deleting_an_owner_garbage_collects_its_dependents(cluster: LocalCluster, namespace: str) -> None:
    cluster.kubectl("-n", namespace, "create", "configmap", "owner")
    owner_uid = cluster.kubectl(
        "-n", namespace, "get", "configmap", "owner", "-o", "jsonpath={.metadata.uid}"
    ).stdout
    dependent = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "dependent",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner_uid}],
        },
    }
    _apply(cluster, namespace, dependent)
    cluster.kubectl("-n", namespace, "delete", "configmap", "owner")
    wait_until(
        lambda: (
            cluster.kubectl("-n", namespace, "get", "configmap", "dependent", check=False).returncode != 0
        ),
        60,
        "the garbage collector to delete the dependent ConfigMap",
    )


def test_rbac_denies_what_a_role_does_not_grant(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    cluster.kubectl("-n", namespace, "create", "serviceaccount", "reader")
    cluster.kubectl(
        "-n", namespace, "create", "role", "cm-reader", "--verb=get,list", "--resource=configmaps"
    )
    cluster.kubectl(
        "-n",
        namespace,
        "create",
        "rolebinding",
        "cm-reader",
        "--role=cm-reader",
        f"--serviceaccount={namespace}:reader",
    )
    cluster.kubectl("-n", namespace, "create", "secret", "generic", "hidden", "--from-literal=k=v")
    kubeconfig = cluster.kubeconfig_for_token(
        cluster.token_for(namespace, "reader"), tmp_path / "reader.kubeconfig"
    )

    allowed = cluster.kubectl("-n", namespace, "get", "configmaps", kubeconfig=kubeconfig, check=False)
    denied = cluster.kubectl("-n", namespace, "get", "secret", "hidden", kubeconfig=kubeconfig, check=False)

    assert allowed.returncode == 0, allowed.stderr
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()


def test_restricted_namespace_rejects_a_privileged_pod(cluster: LocalCluster, namespace: str) -> None:
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged"},
        "spec": {
            "containers": [
                {"name": "main", "image": "example.invalid/x:1", "securityContext": {"privileged": True}}
            ]
        },
    }
    done = cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(pod), check=False)
    assert done.returncode != 0
    assert "violates PodSecurity" in done.stderr
    assert "restricted" in done.stderr


def test_api_server_restart_keeps_data_and_controllers_reconnect() -> None:
    # Its own control plane: the soak restarts kube-apiserver under running clients, and the
    # session's shared cluster must not see that.
    with LocalCluster() as own:
        own.kubectl("create", "namespace", "before")
        own.kubectl("-n", "before", "create", "configmap", "kept", "--from-literal=k=v")
        down = own.restart_apiserver(down_seconds=1.0)
        assert down >= 1.0
        data = json.loads(own.kubectl("-n", "before", "get", "configmap", "kept", "-o", "json").stdout)
        assert data["data"] == {"k": "v"}
        # Created after the restart: the controller-manager, scheduler and kwok have reconnected.
        _apply(own, "before", _deployment("after-restart"))
        wait_until(
            lambda: _pod_phases(own, "before", "app=after-restart") == ["Running"],
            90,
            "a Pod of a Deployment created after the restart to run",
        )
