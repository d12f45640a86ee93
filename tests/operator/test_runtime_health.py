"""Runtime failure states become precise reasons."""

from __future__ import annotations

from typing import Any

from sekoia_intel_operator.runtime_health import assess, termination_message


def _deployment(
    ready: int = 1,
    *,
    generation: int = 2,
    observed: int = 2,
    updated: int = 1,
    total: int = 1,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"name": "sis-feed", "generation": generation},
        "status": {
            "observedGeneration": observed,
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": conditions or [],
        },
    }


def _pod(
    waiting: dict[str, Any] | None = None,
    *,
    last: dict[str, Any] | None = None,
    restarts: int = 0,
    phase: str = "Running",
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    cs: dict[str, Any] = {"name": "runtime", "restartCount": restarts, "state": {"running": {}}}
    if waiting:
        cs["state"] = {"waiting": waiting}
    if last:
        cs["lastState"] = {"terminated": last}
    return {
        "metadata": {"name": "sis-feed-abc"},
        "status": {"phase": phase, "containerStatuses": [cs], "conditions": conditions or []},
    }


def test_ready() -> None:
    health = assess(_deployment(), [_pod()], desired_replicas=1, suspended=False)
    assert health.available and health.reason == "RuntimeReady" and not health.stalled


def test_crash_loop_carries_the_termination_message() -> None:
    pod = _pod(
        {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"},
        last={"exitCode": 3, "reason": "Error", "message": "opencti: stream 1234 not found"},
        restarts=4,
    )
    health = assess(_deployment(0), [pod], desired_replicas=1, suspended=False)
    assert health.reason == "CrashLoopBackOff" and health.stalled and not health.available
    assert "opencti: stream 1234 not found" in health.message
    assert health.restarts == 4
    assert health.last_termination_message == "opencti: stream 1234 not found"


def test_crash_without_message_reports_exit_code() -> None:
    pod = _pod({"reason": "CrashLoopBackOff"}, last={"exitCode": 137, "reason": "OOMKilled"}, restarts=1)
    health = assess(_deployment(0), [pod], desired_replicas=1, suspended=False)
    assert "OOMKilled (exit code 137)" in health.message


def test_image_pull_errors() -> None:
    for reason in ("ImagePullBackOff", "ErrImagePull"):
        pod = _pod({"reason": reason, "message": 'Back-off pulling image "nope:1"'})
        health = assess(_deployment(0), [pod], desired_replicas=1, suspended=False)
        assert health.reason == reason and health.stalled
        assert "nope:1" in health.message


def test_missing_secret_key() -> None:
    pod = _pod(
        {
            "reason": "CreateContainerConfigError",
            "message": "couldn't find key sekoia-api-key in Secret ns/creds",
        }
    )
    health = assess(_deployment(0), [pod], desired_replicas=1, suspended=False)
    assert health.reason == "CreateContainerConfigError" and health.stalled
    assert "sekoia-api-key" in health.message


def test_unschedulable_is_progressing_not_stalled() -> None:
    pod = _pod(
        phase="Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/1 nodes are available",
            }
        ],
    )
    pod["status"]["containerStatuses"] = []
    health = assess(_deployment(0), [pod], desired_replicas=1, suspended=False)
    assert health.reason == "Unschedulable" and health.progressing and not health.stalled


def test_rollout_in_progress() -> None:
    health = assess(_deployment(1, generation=3, observed=2), [_pod()], desired_replicas=1, suspended=False)
    assert health.reason == "RolloutInProgress" and health.progressing
    health = assess(_deployment(0, updated=0), [], desired_replicas=1, suspended=False)
    assert health.reason == "RolloutInProgress"


def test_progress_deadline_is_stalled() -> None:
    dep = _deployment(
        0,
        conditions=[
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet has timed out progressing.",
            }
        ],
    )
    health = assess(dep, [], desired_replicas=1, suspended=False)
    assert health.reason == "ProgressDeadlineExceeded" and health.stalled


def test_suspended_and_missing_deployment() -> None:
    suspended = assess(_deployment(0, total=0, updated=0), [], desired_replicas=0, suspended=True)
    assert suspended.reason == "Suspended" and not suspended.progressing
    draining = assess(_deployment(0, total=1), [_pod()], desired_replicas=0, suspended=True)
    assert draining.progressing
    assert assess(None, [], desired_replicas=1, suspended=False).reason == "DeploymentPending"


def test_terminating_pods_are_ignored() -> None:
    old = _pod({"reason": "CrashLoopBackOff"})
    old["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    assert assess(_deployment(), [old, _pod()], desired_replicas=1, suspended=False).available


def test_long_termination_messages_are_truncated() -> None:
    msg = termination_message({"lastState": {"terminated": {"message": "x" * 5000}}})
    assert msg is not None and len(msg) == 1024 and msg.endswith("...")


def test_only_pods_in_trouble_need_attention() -> None:
    from sekoia_intel_operator.runtime_health import pod_needs_attention

    assert not pod_needs_attention(_pod()["status"])
    assert not pod_needs_attention(_pod({"reason": "ContainerCreating"})["status"])
    assert pod_needs_attention(_pod({"reason": "CrashLoopBackOff"})["status"])
    assert pod_needs_attention(_pod(restarts=1)["status"])
    assert pod_needs_attention(_pod(phase="Failed")["status"])
    pending = _pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "False"}])
    assert pod_needs_attention(pending["status"])
