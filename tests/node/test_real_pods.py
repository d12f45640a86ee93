"""The runtime Pod, run for real: the image built from the Dockerfile, started by a kubelet through
containerd and runc from the Deployment the operator writes (no stand-in, no kwok).

Measurements (Pod start to Ready, the container's peak memory against its limit) are printed and
written to ``real-pod-measurements.json`` in the test's directory; nothing here asserts a duration.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import signal
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.demo.dataset import load_dataset
from testbed.demo.emulators import EmulatorProcess, OpenCTIAdmin, sekoia_admin, start_opencti, start_sekoia
from testbed.manifests import GROUP, PLURAL, credentials_and_sync
from testbed.node.realnode import GATEWAY
from testbed.processes import wait_until

pytestmark = pytest.mark.cluster

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


def _container_pid(stack: Any, pod: dict[str, Any]) -> int:
    """Host PID of the runtime container's process, from containerd (the kubelet's CRI runtime)."""
    container_id = pod["status"]["containerStatuses"][0]["containerID"].split("://", 1)[1]
    for line in stack.cluster.real_node.ctr("tasks", "ls").stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == container_id:
            return int(fields[1])
    raise AssertionError(f"container {container_id} has no running task")


def _memory_cgroup(pid: int) -> Path:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return Path("/sys/fs/cgroup/memory") / path.lstrip("/")
    raise AssertionError(f"process {pid} is in no memory cgroup (cgroup v1 expected on this machine)")


def _root_mount_options(pid: int) -> list[str]:
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            return fields[5].split(",")
    raise AssertionError("no root mount")


def _status_field(pid: int, key: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{key} not in /proc/{pid}/status")


def _ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture
def feed(node_stack: Any, tmp_path: Path) -> Any:
    instance = Feed(node_stack, tmp_path)
    try:
        yield instance
    finally:
        instance.stop()


def test_runtime_pod_runs_the_image_and_syncs_the_demo_data_set(feed: Feed, tmp_path: Path) -> None:
    """Admitted by the restricted Pod Security profile, Ready through its probes, every value of the
    demo's 104 indicators pushed through the emulators from the Pod's network, progress reported by
    the runtime itself; the process really is uid 10001 on a read-only root with no capabilities."""
    feed.apply()
    pod = feed.wait_ready()
    spec = pod["spec"]["containers"][0]
    assert spec["image"] == feed.stack.image
    assert pod["spec"]["nodeName"] == "sis-node-0"
    assert pod["status"]["podIP"].startswith(GATEWAY.rsplit(".", 1)[0] + ".")

    pid = _container_pid(feed.stack, pod)
    assert _status_field(pid, "Uid").split() == [str(RUNTIME_UID)] * 4
    assert _status_field(pid, "Gid").split() == [str(RUNTIME_UID)] * 4
    assert int(_status_field(pid, "CapEff"), 16) == 0
    assert _status_field(pid, "NoNewPrivs") == "1"
    assert _status_field(pid, "Seccomp") == "2"  # filter mode: RuntimeDefault is applied
    assert "ro" in _root_mount_options(pid)

    feed.wait_synced()
    indicators = sekoia_admin(feed.sekoia.base_url).indicators(COLLECTION)
    assert {i["value"] for i in indicators if not i["revoked"]} == set(feed.data.expected)

    # status.progress was written by the runtime's own identity (its ServiceAccount's token, with a
    # plain HTTP client), not by the operator (kopf).
    managers = {
        entry["manager"]
        for entry in feed.resource()["metadata"]["managedFields"]
        if entry.get("subresource") == "status" and "f:progress" in json.dumps(entry.get("fieldsV1", {}))
    }
    assert managers and not any("kopf" in m for m in managers), managers

    cgroup = _memory_cgroup(pid)
    limit = int((cgroup / "memory.limit_in_bytes").read_text())
    peak = int((cgroup / "memory.max_usage_in_bytes").read_text())
    assert limit == 512 * 1024 * 1024  # the Deployment's limit, enforced by the kernel
    pod = feed.ready_pod() or pod
    ready_at = next(c["lastTransitionTime"] for c in pod["status"]["conditions"] if c["type"] == "Ready")
    measurements = {
        "pod_created_to_ready_seconds": (
            _ts(ready_at) - _ts(pod["metadata"]["creationTimestamp"])
        ).total_seconds(),
        "container_peak_memory_bytes": peak,
        "container_memory_limit_bytes": limit,
        "node_startup_seconds": feed.cluster.real_node.startup_seconds,
        "values_pushed": len(feed.data.expected),
    }
    (tmp_path / "real-pod-measurements.json").write_text(json.dumps(measurements, indent=1))
    print(f"\nreal runtime Pod: {json.dumps(measurements)}")


def test_sigkilled_runtime_is_restarted_by_the_kubelet_and_loses_nothing(feed: Feed) -> None:
    """SIGKILL of the container's process: the kubelet restarts the container, and indicators
    deleted in OpenCTI while it was down are revoked in Sekoia after the restart."""
    feed.apply()
    pod = feed.wait_ready()
    feed.wait_synced()
    pid = _container_pid(feed.stack, pod)
    os.kill(pid, signal.SIGKILL)
    picked = feed.data.pick_for_deletion()
    opencti = OpenCTIAdmin(feed.opencti.base_url)
    for indicator in picked:
        opencti.delete(indicator["id"])
    deleted = {v for ind in picked for v in feed.data.values[ind["id"]]}

    def restarted_and_ready() -> bool:
        current = feed.ready_pod()
        return current is not None and current["status"]["containerStatuses"][0]["restartCount"] >= 1

    wait_until(
        restarted_and_ready,
        POD_READY_TIMEOUT,
        "the kubelet to restart the killed container",
        interval=1.0,
        on_timeout=feed.diagnostics,
    )
    current = feed.ready_pod()
    assert current is not None and current["metadata"]["uid"] == pod["metadata"]["uid"]  # same Pod, restarted
    last = current["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert last["exitCode"] == 137  # 128 + SIGKILL

    admin = sekoia_admin(feed.sekoia.base_url)

    def revoked() -> set[str]:
        return {i["value"] for i in admin.indicators(COLLECTION) if i["revoked"]}

    wait_until(
        lambda: deleted <= revoked(),
        SYNC_TIMEOUT,
        "the deletions made during the restart to be revoked",
        interval=1.0,
        on_timeout=feed.diagnostics,
    )
    active = {i["value"] for i in admin.indicators(COLLECTION) if not i["revoked"]}
    assert active == set(feed.data.expected) - deleted


def test_bad_credential_exits_the_container_and_the_crash_loop_stalls_the_resource(feed: Feed) -> None:
    """A token OpenCTI refuses: the runtime exits with a one-line reason in its termination message,
    the kubelet backs off (CrashLoopBackOff), and the operator reports it: Stalled, with the message
    in status.runtime.lastTerminationMessage and the token nowhere in the status."""
    wrong = f"wrong-{secrets.token_hex(8)}"
    feed.apply(token=wrong)

    def crash_looping() -> bool:
        for pod in feed.pods():
            for status in pod.get("status", {}).get("containerStatuses", []):
                if (status.get("state", {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff":
                    return True
        return False

    wait_until(
        crash_looping,
        POD_READY_TIMEOUT,
        "the kubelet to back off restarting the container",
        interval=1.0,
        on_timeout=feed.diagnostics,
    )
    container = feed.pods()[0]["status"]["containerStatuses"][0]
    terminated = container["lastState"]["terminated"]
    assert terminated["exitCode"] == 1
    assert "cannot register with OpenCTI" in terminated["message"]

    def stalled() -> dict[str, Any] | None:
        status = feed.resource().get("status") or {}
        by_type = {c["type"]: c for c in status.get("conditions") or []}
        cond = by_type.get("Stalled")
        if cond and cond["status"] == "True" and (status.get("runtime") or {}).get("lastTerminationMessage"):
            return status
        return None

    wait_until(
        lambda: stalled() is not None,
        120,
        "the operator to report the crash loop as Stalled",
        interval=1.0,
        on_timeout=feed.diagnostics,
    )
    status = stalled()
    assert status is not None
    by_type = {c["type"]: c for c in status["conditions"]}
    assert by_type["Stalled"]["reason"] == "CrashLoopBackOff"
    assert "cannot register with OpenCTI" in status["runtime"]["lastTerminationMessage"]
    assert wrong not in json.dumps(status)
    assert feed.token not in json.dumps(status)


def _watch_terminations(
    cluster: Any, namespace: str, pod_uid: str, found: dict[str, Any]
) -> threading.Thread:
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


def test_secret_rotation_rolls_the_pod_which_handles_sigterm_inside_its_grace_period(feed: Feed) -> None:
    """A new Sekoia API key in the Secret: the operator rolls the Deployment, the kubelet sends the
    old container SIGTERM and it exits 0 (it flushed and saved, not SIGKILLed after the grace
    period); the new Pod, with the new key, resumes where the old one stopped."""
    feed.apply()
    old = feed.wait_ready()
    feed.wait_synced()
    new_key = f"k2-{secrets.token_hex(8)}"
    sekoia_admin(feed.sekoia.base_url).add_api_key(new_key)
    found: dict[str, Any] = {}
    watcher = _watch_terminations(feed.cluster, feed.namespace, old["metadata"]["uid"], found)
    patch = json.dumps({"stringData": {"sekoia-api-key": new_key}})
    feed.cluster.kubectl("-n", feed.namespace, "patch", "secret", "creds", "--type=merge", "-p", patch)

    def replaced() -> bool:
        current = feed.ready_pod()
        return current is not None and current["metadata"]["uid"] != old["metadata"]["uid"]

    wait_until(
        replaced,
        POD_READY_TIMEOUT,
        "the rollout to a new Ready Pod",
        interval=1.0,
        on_timeout=feed.diagnostics,
    )
    watcher.join(timeout=30)
    terminated = found.get("terminated")
    assert terminated is not None, "the old container's termination was never reported"
    assert terminated.exit_code == 0, (terminated.exit_code, terminated.reason, terminated.message)

    sekoia_admin(feed.sekoia.base_url).remove_api_key(feed.api_key)
    picked = feed.data.pick_for_deletion()
    opencti = OpenCTIAdmin(feed.opencti.base_url)
    for indicator in picked:
        opencti.delete(indicator["id"])
    deleted = {v for ind in picked for v in feed.data.values[ind["id"]]}
    admin = sekoia_admin(feed.sekoia.base_url)
    wait_until(
        lambda: deleted <= {i["value"] for i in admin.indicators(COLLECTION) if i["revoked"]},
        SYNC_TIMEOUT,
        "the new Pod (new key) to revoke what was deleted after the rotation",
        interval=1.0,
        on_timeout=feed.diagnostics,
    )
