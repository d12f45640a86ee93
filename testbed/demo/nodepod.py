"""The runtime Pod as the real node runs it: found through the API once the kubelet reports it Ready,
reached on its Pod IP (the host routes to the Pods' bridge), and looked at from the host."""

from __future__ import annotations

import datetime as dt
import urllib.request
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from testbed.controlplane.cluster import LocalCluster
from testbed.node import hostview
from testbed.processes import wait_until

POD_READY_TIMEOUT = 240.0
# Pod IPs are on this machine's bridge: never through a proxy from the environment.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def metrics_page(url: str, opener: urllib.request.OpenerDirector = _DIRECT) -> str | None:
    """A Prometheus text page (None if unreadable)."""
    try:
        with opener.open(url, timeout=2) as resp:
            return str(resp.read().decode())
    except OSError:
        return None


def metric_in(text: str, name: str) -> float:
    """Sum of one metric over its label sets in a Prometheus text page (0 when absent)."""
    samples = (line.rsplit(" ", 1) for line in text.splitlines() if line.startswith(name))
    return sum(float(value) for key, value in samples if key == name or key.startswith(name + "{"))


def metric_value(url: str, name: str, opener: urllib.request.OpenerDirector = _DIRECT) -> float | None:
    """Sum of one metric over its label sets, from a Prometheus text page (None if unreadable)."""
    text = metrics_page(url, opener)
    return None if text is None else metric_in(text, name)


@dataclass
class NodePod:
    """One Ready runtime Pod on the real node."""

    name: str
    uid: str
    ip: str
    port: int
    image: str
    container_id: str
    service_account: str
    from_secrets: dict[str, str]  # variable -> "secret/key" (never values)
    security: dict[str, Any]
    seconds_to_ready: float | None

    @property
    def base_url(self) -> str:
        return f"http://{self.ip}:{self.port}"

    def metric(self, name: str) -> float | None:
        """The runtime's own count of something, from its /metrics on the Pod IP."""
        return metric_value(f"{self.base_url}/metrics", name)

    def host_view(self, cluster: LocalCluster) -> dict[str, Any]:
        """The container's process as the host kernel sees it (pid, user, capabilities, root mount)."""
        pid = hostview.container_pid(cluster.real_node, self.container_id)
        return {
            "hostPid": pid,
            "uid": hostview.status_field(pid, "Uid").split()[0],
            "capEff": hostview.status_field(pid, "CapEff"),
            "seccomp": hostview.status_field(pid, "Seccomp"),
            "rootMount": "ro" if "ro" in hostview.root_mount_options(pid) else "rw",
        }


def _ready(pod: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in (pod.get("status") or {}).get("conditions") or []}
    return pod["metadata"].get("deletionTimestamp") is None and conditions.get("Ready") == "True"


def _seconds_to_ready(pod: dict[str, Any]) -> float | None:
    created = pod["metadata"].get("creationTimestamp")
    ready = next(
        (c.get("lastTransitionTime") for c in pod["status"].get("conditions") or [] if c["type"] == "Ready"),
        None,
    )
    if not created or not ready:
        return None
    return (dt.datetime.fromisoformat(ready) - dt.datetime.fromisoformat(created)).total_seconds()


def _describe(pod: dict[str, Any]) -> NodePod:
    container = pod["spec"]["containers"][0]
    probe = (container.get("readinessProbe") or {}).get("httpGet") or {}
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
    # The probe names its port ("http") or gives a number, as a kubelet resolves it.
    port = probe.get("port", "http")
    if isinstance(port, str):
        if port not in ports:
            raise ValueError(f"the readiness probe's port {port!r} is not a named port of the container")
        port = ports[port]
    from_secrets = {
        entry["name"]: f"{ref['name']}/{ref['key']}"
        for entry in container.get("env") or []
        if (ref := (entry.get("valueFrom") or {}).get("secretKeyRef"))
    }
    return NodePod(
        name=pod["metadata"]["name"],
        uid=pod["metadata"]["uid"],
        ip=pod["status"]["podIP"],
        port=int(port),
        image=container["image"],
        container_id=pod["status"]["containerStatuses"][0]["containerID"],
        service_account=pod["spec"].get("serviceAccountName") or "default",
        from_secrets=from_secrets,
        security={**(pod["spec"].get("securityContext") or {}), **(container.get("securityContext") or {})},
        seconds_to_ready=_seconds_to_ready(pod),
    )


def wait_ready_pod(
    cluster: LocalCluster,
    namespace: str,
    selector: dict[str, str],
    exclude: Collection[str] = (),
    timeout: float = POD_READY_TIMEOUT,
) -> NodePod:
    """The first Pod matching ``selector`` (and not one of the ``exclude`` uids) that the kubelet
    reports Ready through its probes."""
    from kubernetes import client

    api_client = cluster.api_client()
    core = client.CoreV1Api(api_client)
    label_selector = ",".join(f"{k}={v}" for k, v in selector.items())
    found: list[dict[str, Any]] = []

    def ready() -> bool:
        pods = core.list_namespaced_pod(namespace, label_selector=label_selector).items
        for pod in api_client.sanitize_for_serialization(pods):
            if pod["metadata"]["uid"] not in exclude and _ready(pod):
                found.append(pod)
                return True
        return False

    def diagnostics() -> str:
        out = cluster.kubectl("-n", namespace, "get", "pods", "-o", "yaml", check=False).stdout
        node = cluster.real_node.logs_text(1500) if cluster.real_node is not None else ""
        return f"{out[-3000:]}\n{node}"

    wait_until(
        ready,
        timeout,
        f"a runtime Pod in {namespace} to become Ready through its probes",
        interval=1.0,
        on_timeout=diagnostics,
    )
    return _describe(found[0])
