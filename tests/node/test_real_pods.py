"""The runtime Pod, run for real: the image built from the Dockerfile, started by a kubelet through
containerd and runc from the Deployment the operator writes (no stand-in, no kwok).

Measurements (Pod start to Ready, the container's peak memory against its limit) are printed and
written to ``real-pod-measurements.json`` in the test's directory; nothing here asserts a duration.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from node_helpers import (
    COLLECTION,
    POD_READY_TIMEOUT,
    RUNTIME_UID,
    SYNC_TIMEOUT,
    Feed,
    container_pid,
    parse_ts,
    watch_terminations,
)

from testbed.demo.emulators import OpenCTIAdmin, sekoia_admin
from testbed.node.hostview import memory_cgroup, root_mount_options, status_field
from testbed.node.realnode import GATEWAY
from testbed.processes import wait_until

pytestmark = [pytest.mark.cluster, pytest.mark.real_node]


@pytest.fixture
def feed(node_stack: Any, tmp_path: Path) -> Iterator[Feed]:
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

    pid = container_pid(feed.stack, pod)
    assert status_field(pid, "Uid").split() == [str(RUNTIME_UID)] * 4
    assert status_field(pid, "Gid").split() == [str(RUNTIME_UID)] * 4
    assert int(status_field(pid, "CapEff"), 16) == 0
    assert status_field(pid, "NoNewPrivs") == "1"
    assert status_field(pid, "Seccomp") == "2"  # filter mode: RuntimeDefault is applied
    assert "ro" in root_mount_options(pid)

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

    cgroup = memory_cgroup(pid)
    limit = int((cgroup / "memory.limit_in_bytes").read_text())
    peak = int((cgroup / "memory.max_usage_in_bytes").read_text())
    assert limit == 512 * 1024 * 1024  # the Deployment's limit, enforced by the kernel
    pod = feed.ready_pod() or pod
    ready_at = next(c["lastTransitionTime"] for c in pod["status"]["conditions"] if c["type"] == "Ready")
    measurements = {
        "pod_created_to_ready_seconds": (
            parse_ts(ready_at) - parse_ts(pod["metadata"]["creationTimestamp"])
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
    pid = container_pid(feed.stack, pod)
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
    watcher = watch_terminations(feed.cluster, feed.namespace, old["metadata"]["uid"], found)
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
