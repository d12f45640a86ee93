"""The operator itself as a Pod from the chart, on the real node: helm installs it with the image
built from the Dockerfile; it becomes Ready through its probes, talks to the API server through the
`kubernetes` Service as its own ServiceAccount, and the runtime Pod it creates syncs the data set.

Its admission webhook is on, as the chart ships it: the API server calls it through the webhook
Service's ClusterIP (kube-proxy's DNAT on the node's host), presents its client certificate, and
trusts the CA the operator made and injected into the webhook configuration."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from node_helpers import Feed

from testbed.controlplane.cluster import LocalCluster
from testbed.manifests import WEBHOOK_ONLY_REFUSED_RUNTIME, WEBHOOK_REFUSAL, credentials_and_sync
from testbed.node.realnode import GATEWAY
from testbed.processes import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.real_node]

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "sekoia-intel-sync"
RELEASE = "sis"
RELEASE_NAMESPACE = "sis-system"


@dataclass
class ChartLogs:
    """The operator Pod's log through the API (what Feed.diagnostics shows)."""

    cluster: LocalCluster

    def log_tail(self, max_chars: int = 1500) -> str:
        target = f"deployment/{RELEASE}-sekoia-intel-sync"
        done = self.cluster.kubectl("-n", RELEASE_NAMESPACE, "logs", target, "--tail=60", check=False)
        return (done.stdout + done.stderr)[-max_chars:]


@dataclass
class ChartStack:
    cluster: LocalCluster
    operator: ChartLogs
    image: str


@pytest.fixture
def chart_stack(real_cluster: LocalCluster) -> Iterator[ChartStack]:
    cluster = real_cluster
    repository, tag = cluster.node_artifacts.image_ref.rsplit(":", 1)
    cluster.kubectl("create", "namespace", RELEASE_NAMESPACE)
    values = [
        f"image.repository={repository}",
        f"image.tag={tag}",
        f"policy.sekoiaUrls={{http://{GATEWAY}:*}}",
        "policy.openctiSchemes={http}",
        "rbac.clusterWideSecretAccess=true",
    ]
    sets = [arg for value in values for arg in ("--set", value)]
    try:
        cluster.helm(
            "install", RELEASE, str(CHART), "-n", RELEASE_NAMESPACE, "--wait", "--timeout", "240s", *sets
        )
        yield ChartStack(cluster, ChartLogs(cluster), cluster.node_artifacts.image_ref)
    finally:
        cluster.helm("uninstall", RELEASE, "-n", RELEASE_NAMESPACE, "--wait", "--timeout=120s", check=False)
        cluster.kubectl("delete", "namespace", RELEASE_NAMESPACE, "--wait=false", check=False)


def refused_by_the_webhook(cluster: LocalCluster, feed: Feed) -> str:
    """Apply a resource that only the webhook refuses (requests above limits) until it is refused,
    since the webhook configuration gets its CA a moment after the Pod is Ready; kubectl's error."""
    body = credentials_and_sync(
        feed.namespace,
        "over-limits",
        "over-limits-creds",
        opencti=("http://opencti.invalid", "live", "unused"),
        sekoia=("http://sekoia.invalid", f"ioc-collection--{uuid.uuid4()}", "unused"),
        runtime=WEBHOOK_ONLY_REFUSED_RUNTIME,
    )[1]
    answers: list[str] = []

    def refused() -> bool:
        done = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(body), check=False)
        answers.append(done.stdout + done.stderr)
        return done.returncode != 0 and "admission webhook" in done.stderr

    def why() -> str:
        calls = [
            line
            for line in cluster.all_processes()["kube-apiserver"].log_tail(200_000).splitlines()
            if "calling webhook" in line or "validate.sync.sekoia-intel.dev" in line
        ]
        return "last answer: " + (answers[-1] if answers else "none") + "\n" + "\n".join(calls[-10:])

    wait_until(refused, 120, "the API server to call the chart's webhook", interval=2.0, on_timeout=why)
    return answers[-1]


def test_chart_operator_runs_as_a_pod_and_its_runtime_syncs(chart_stack: ChartStack, tmp_path: Path) -> None:
    cluster = chart_stack.cluster
    pods = json.loads(cluster.kubectl("-n", RELEASE_NAMESPACE, "get", "pods", "-o", "json").stdout)["items"]
    operator_pods = [p for p in pods if p["spec"]["containers"][0]["name"] == "operator"]
    assert len(operator_pods) == 1
    operator: dict[str, Any] = operator_pods[0]
    assert operator["spec"]["nodeName"] == "sis-node-0"
    assert operator["spec"]["containers"][0]["image"] == chart_stack.image
    ready = {c["type"]: c["status"] for c in operator["status"]["conditions"]}
    assert ready["Ready"] == "True"

    feed = Feed(chart_stack, tmp_path)
    try:
        # failurePolicy is Ignore: only a refusal shows the API server really reached the Pod.
        message = refused_by_the_webhook(cluster, feed)
        assert WEBHOOK_REFUSAL in message, message
        feed.apply()
        pod = feed.wait_ready()
        assert pod["spec"]["containers"][0]["image"] == chart_stack.image
        feed.wait_synced()
        # The resource's conditions come from the operator Pod (kopf under the chart's identity).
        wait_until(
            lambda: any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (feed.resource().get("status") or {}).get("conditions") or []
            ),
            120,
            "the chart's operator to report the resource Ready",
            interval=1.0,
            on_timeout=feed.diagnostics,
        )
    finally:
        feed.stop()
