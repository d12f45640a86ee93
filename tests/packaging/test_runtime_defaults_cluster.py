"""Chart runtime Pod defaults on the real control plane: the runtime Deployment the operator creates
(under the chart's identity and admission policy) carries them, a refused per-resource field gets a
clear condition, an allowed one is added."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from packaging_helpers import CHART
from test_chart_install import (
    WAIT,
    ChartOperator,
    apply_examples,
    condition,
    deployment,
    ensure_crd,
    get_sync,
    make_namespace,
    runtime_like,
    wait_for,
)

from testbed.processes import wait_until

pytestmark = pytest.mark.cluster
__all__ = ["make_namespace"]  # the fixture, shared with test_chart_install

SPREAD = {
    "maxSkew": 1,
    "topologyKey": "kubernetes.io/hostname",
    "whenUnsatisfiable": "ScheduleAnyway",
    "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "connector-runtime"}},
}
AFFINITY = {
    "nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 10,
                "preference": {"matchExpressions": [{"key": "type", "operator": "In", "values": ["kwok"]}]},
            }
        ]
    }
}
TOLERATION = {"key": "dedicated", "operator": "Equal", "value": "intel", "effect": "NoSchedule"}
RESOURCES = {
    "requests": {"cpu": "20m", "memory": "100Mi", "ephemeral-storage": "32Mi"},
    "limits": {"memory": "300Mi", "ephemeral-storage": "128Mi"},
}


def test_runtime_deployment_carries_the_chart_defaults_and_refused_fields_are_reported(
    cluster: Any, make_namespace: Callable[..., str], tmp_path: Path
) -> None:
    release_ns, team = make_namespace(), make_namespace()
    release, name = "rd", "rd-sekoia-intel-sync"
    sa = f"system:serviceaccount:{release_ns}:{name}"
    priority_class = f"intel-feeds-{release_ns}"
    cluster.kubectl("create", "priorityclass", priority_class, "--value=1000")
    values = {
        # The session's releases share one CRD, applied from deploy/crds (see test_chart_install).
        "crds": {"enabled": False},
        "watchNamespaces": [team],
        "webhook": {"enabled": False},
        "runtimeDefaults": {
            "imagePullSecrets": [{"name": "regcred"}],
            "resources": RESOURCES,
            "nodeSelector": {"type": "kwok"},
            "tolerations": [TOLERATION],
            "affinity": AFFINITY,
            "topologySpreadConstraints": [SPREAD],
            "priorityClassName": priority_class,
        },
        "policy": {"imagePullSecretNames": ["team-*"]},
    }
    values_file = tmp_path / "values.yaml"
    values_file.write_text(json.dumps(values))
    ensure_crd(cluster)
    cluster.helm(
        "install",
        release,
        str(CHART),
        "-n",
        release_ns,
        "-f",
        str(values_file),
        "--wait",
        "--timeout",
        "120s",
    )
    op = ChartOperator(cluster, release_ns, name, name, tmp_path)
    try:
        # The chart's admission policy is in effect before the operator writes anything we judge.
        wait_until(
            lambda: "may only use the pull Secrets"
            in cluster.kubectl(
                f"--as={sa}", "apply", "--dry-run=server", "-f", "-",
                input=json.dumps(runtime_like(team, pull_secrets=["stolen"])), check=False,
            ).stderr,
            WAIT,
            "the ValidatingAdmissionPolicy to be in effect",
        )  # fmt: skip
        apply_examples(cluster, tmp_path, team)
        wait_for(cluster, team, "sis/apt-feed", "Ready", op)
        obj = get_sync(cluster, team, "apt-feed")
        child = obj["status"]["runtime"]["deploymentName"]
        live = deployment(cluster, team, child)
        pod = live["spec"]["template"]["spec"]
        assert pod["imagePullSecrets"] == [{"name": "regcred"}]
        assert pod["nodeSelector"] == {"type": "kwok"}
        assert pod["tolerations"] == [TOLERATION]
        assert pod["affinity"] == AFFINITY
        assert pod["topologySpreadConstraints"] == [SPREAD]
        assert pod["priorityClassName"] == priority_class
        assert pod["containers"][0]["resources"] == RESOURCES
        # What the operator wrote passes the admission policy as the operator's identity (the
        # policy was in effect before; this re-judges the live object in a server-side dry run).
        live["metadata"] = {k: live["metadata"][k] for k in ("name", "namespace", "labels", "annotations")}
        live.pop("status", None)
        done = cluster.kubectl(
            f"--as={sa}", "apply", "--dry-run=server", "-f", "-", input=json.dumps(live), check=False
        )
        assert done.returncode == 0, done.stderr

        # A pull Secret outside policy.imagePullSecretNames: Stalled, a one-line reason, no runtime.
        patch = {"spec": {"runtime": {"imagePullSecrets": [{"name": "other-robot"}]}}}
        cluster.kubectl("-n", team, "patch", "sis/apt-feed", "--type=merge", "-p", json.dumps(patch))
        wait_for(cluster, team, "sis/apt-feed", "Stalled", op)
        stalled = condition(get_sync(cluster, team, "apt-feed"), "Stalled")
        assert stalled["reason"] == "PodFieldNotAllowed"
        assert stalled["message"] == (
            "refused by the operator's policy: spec.runtime.imagePullSecrets 'other-robot' is not among "
            "the pull Secrets the operator allows"
        )
        wait_until(
            lambda: cluster.kubectl("-n", team, "get", "deployment", child, check=False).returncode != 0,
            WAIT,
            "the refused resource's runtime Deployment to go",
        )
        events = cluster.kubectl("-n", team, "get", "events", "-o", "json").stdout
        assert "other-robot" in events  # the refusal is an Event too

        # Resources above policy.maxRuntimeResources (chart default memory 2Gi): refused the same way.
        patch = {"spec": {"runtime": {"imagePullSecrets": None, "resources": {"limits": {"memory": "3Gi"}}}}}
        cluster.kubectl("-n", team, "patch", "sis/apt-feed", "--type=merge", "-p", json.dumps(patch))
        wait_until(
            lambda: (
                "limits.memory 3Gi exceeds the operator's maximum 2Gi"
                in condition(get_sync(cluster, team, "apt-feed"), "Stalled").get("message", "")
            ),
            WAIT,
            "the resources refusal",
            on_timeout=op.log,
        )

        # An allowed pull Secret is added to the defaults, and the runtime runs again.
        patch = {"spec": {"runtime": {"resources": None, "imagePullSecrets": [{"name": "team-robot"}]}}}
        cluster.kubectl("-n", team, "patch", "sis/apt-feed", "--type=merge", "-p", json.dumps(patch))
        wait_for(cluster, team, "sis/apt-feed", "Ready", op)
        pod = deployment(cluster, team, child)["spec"]["template"]["spec"]
        assert pod["imagePullSecrets"] == [{"name": "regcred"}, {"name": "team-robot"}]
    finally:
        op.stop()
        cluster.helm("uninstall", release, "-n", release_ns, "--wait", "--timeout", "120s", check=False)
        cluster.kubectl("delete", "priorityclass", priority_class, check=False)
    assert "Forbidden" not in op.full_log(), op.full_log()
