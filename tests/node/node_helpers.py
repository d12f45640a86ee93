"""What the real-node tests share: one test's emulators, namespace and SekoiaIntelSync (``Feed``),
and readings of the container from the host (its process, cgroup and mounts)."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import uuid
from pathlib import Path
from typing import Any

import yaml

from testbed.demo.dataset import load_dataset
from testbed.demo.emulators import EmulatorProcess, sekoia_admin, start_opencti, start_sekoia
from testbed.manifests import GROUP, PLURAL, credentials_and_sync
from testbed.node import hostview
from testbed.node.realnode import GATEWAY
from testbed.processes import wait_until

STREAM_ID = "5f3e1a2b-2222-4c2d-9e8f-0123456789ab"
COLLECTION = "ioc-collection--0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4e"
RUNTIME_UID = 10001
POD_READY_TIMEOUT = 240.0
SYNC_TIMEOUT = 300.0


class Feed:
    """One test's emulators, namespace and SekoiaIntelSync on the real node."""

    def __init__(self, stack: Any, tmp_path: Path, restricted: bool = True) -> None:
        self.stack = stack
        self.cluster = stack.cluster
        self.data = load_dataset()
        self.namespace = f"n-{uuid.uuid4().hex[:8]}"
        self.name = "feed"
        self.token = f"t-{secrets.token_hex(8)}"
        self.api_key = f"k-{secrets.token_hex(8)}"
        logs = tmp_path / "emulators"
        self.opencti: EmulatorProcess = start_opencti(
            logs, self.token, STREAM_ID, self.data.path, host=GATEWAY
        )
        self.sekoia: EmulatorProcess = start_sekoia(logs, self.api_key, COLLECTION, host=GATEWAY)
        self.cluster.kubectl("create", "namespace", self.namespace)
        if restricted:
            self.cluster.kubectl(
                "label", "namespace", self.namespace, "pod-security.kubernetes.io/enforce=restricted"
            )

    def apply(self, api_key: str | None = None, token: str | None = None) -> None:
        secret, sync = credentials_and_sync(
            self.namespace,
            self.name,
            "creds",
            opencti=(self.opencti.base_url, STREAM_ID, token or self.token),
            sekoia=(self.sekoia.base_url, COLLECTION, api_key or self.api_key),
        )
        self.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([secret, sync]))

    def stop(self) -> None:
        for emulator in (self.opencti, self.sekoia):
            emulator.process.stop()
        self.cluster.kubectl("delete", "namespace", self.namespace, "--wait=false", check=False)

    # ------------------------------------------------------------------------ reading state
    def pods(self) -> list[dict[str, Any]]:
        out = self.cluster.kubectl("-n", self.namespace, "get", "pods", "-o", "json").stdout
        return list(json.loads(out)["items"])

    def ready_pod(self) -> dict[str, Any] | None:
        for pod in self.pods():
            conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
            if conditions.get("Ready") == "True":
                return pod
        return None

    def resource(self) -> dict[str, Any]:
        out = self.cluster.kubectl(
            "-n", self.namespace, "get", f"{PLURAL}.{GROUP}", self.name, "-o", "json", "--show-managed-fields"
        )
        return dict(json.loads(out.stdout))

    def progress(self) -> dict[str, Any]:
        return dict((self.resource().get("status") or {}).get("progress") or {})

    def wait_ready(self) -> dict[str, Any]:
        wait_until(
            lambda: self.ready_pod() is not None,
            POD_READY_TIMEOUT,
            f"the runtime Pod in {self.namespace} to become Ready through its probes",
            interval=1.0,
            on_timeout=self.diagnostics,
        )
        pod = self.ready_pod()
        assert pod is not None
        return pod

    def wait_synced(self) -> None:
        admin = sekoia_admin(self.sekoia.base_url)
        expected = set(self.data.expected)
        wait_until(
            lambda: expected <= admin.active_values(COLLECTION),
            SYNC_TIMEOUT,
            f"all {len(expected)} values of the {len(self.data.indicators)} indicators in the collection",
            interval=1.0,
            on_timeout=self.diagnostics,
        )
        wait_until(
            lambda: int(self.progress().get("valuesPushed") or 0) >= len(expected),
            60,
            "the runtime's own report of its pushes in status.progress",
            interval=1.0,
            on_timeout=self.diagnostics,
        )

    def diagnostics(self) -> str:
        pods = self.cluster.kubectl("-n", self.namespace, "get", "pods", "-o", "yaml", check=False).stdout
        logs = self.cluster.kubectl(
            "-n", self.namespace, "logs", "-l", "app.kubernetes.io/name", "--tail=40", check=False
        )
        node = self.cluster.real_node.logs_text(1500) if self.cluster.real_node else ""
        return (
            f"{pods[-4000:]}\n--- runtime log ---\n{logs.stdout}{logs.stderr}\n{node}\n--- operator ---\n"
            + (self.stack.operator.log_tail(1500))
        )


def container_pid(stack: Any, pod: dict[str, Any]) -> int:
    """Host PID of the runtime container's process, from containerd (the kubelet's CRI runtime)."""
    return hostview.container_pid(
        stack.cluster.real_node, pod["status"]["containerStatuses"][0]["containerID"]
    )


def parse_ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def watch_terminations(cluster: Any, namespace: str, pod_uid: str, found: dict[str, Any]) -> threading.Thread:
    """Record the runtime container's `terminated` state of Pod ``pod_uid`` as the kubelet reports
    it, before the Pod object is gone (a deleted Pod's status is not readable afterwards)."""
    from kubernetes import client, watch

    core = client.CoreV1Api(cluster.api_client())

    def run() -> None:
        stream = watch.Watch()
        for event in stream.stream(core.list_namespaced_pod, namespace, timeout_seconds=int(SYNC_TIMEOUT)):
            pod = event["object"]
            if pod.metadata.uid != pod_uid:
                continue
            for status in pod.status.container_statuses or []:
                if status.state and status.state.terminated:
                    found["terminated"] = status.state.terminated
                    stream.stop()
                    return

    thread = threading.Thread(target=run, name="pod-watch", daemon=True)
    thread.start()
    return thread
