"""Turns what the API server says about the runtime Deployment and its Pods into one precise verdict.

Pure: the caller fetches the objects (as plain dicts) and feeds them in. The point is that a user
reading the resource's status sees *why* the runtime is not ready (crash loop and its termination
message, image pull failure, missing Secret key...) instead of a generic "not ready".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_TERMINATION_MESSAGE = 1024

REASON_READY = "RuntimeReady"
REASON_SUSPENDED = "Suspended"
REASON_SCALED_DOWN = "ScaledDown"
REASON_DEPLOYMENT_PENDING = "DeploymentPending"
REASON_ROLLOUT = "RolloutInProgress"
REASON_POD_NOT_READY = "PodNotReady"
REASON_UNSCHEDULABLE = "Unschedulable"
REASON_CRASH_LOOP = "CrashLoopBackOff"
REASON_PROGRESS_DEADLINE = "ProgressDeadlineExceeded"
REASON_POD_FAILED = "PodFailed"

# Waiting reasons that will not fix themselves: the user has to change something (image, Secret...).
_STALLED_WAITING = {
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}


@dataclass(frozen=True)
class RuntimeHealth:
    """Verdict on the runtime. `available` drives RuntimeAvailable; `stalled` means only a change by
    the user can help; `progressing` means Kubernetes is still working towards the desired state."""

    available: bool
    reason: str
    message: str
    stalled: bool = False
    progressing: bool = False
    replicas: int = 0
    ready_replicas: int = 0
    restarts: int = 0
    last_termination_message: str | None = None


# Reasons the runtime reports in `status.progress.blocked` (see connector_runtime/sekoia/errors.py):
# Sekoia's answers acknowledge nothing and only a change by the user helps. Anything else the
# runtime writes there is reported under the generic reason.
BLOCKED_REASONS = frozenset(
    {
        "SekoiaURLRedirects",
        "SekoiaUnexpectedAnswer",
        "SekoiaCollectionNotFound",
        "SekoiaAPIKeyRejected",
        "SekoiaPermissionMissing",
    }
)
REASON_RUNTIME_BLOCKED = "RuntimeBlocked"
RUNTIME_BLOCK_REASONS = BLOCKED_REASONS | {REASON_RUNTIME_BLOCKED}
MAX_BLOCKED_MESSAGE = 1024


@dataclass(frozen=True)
class RuntimeBlock:
    """What the runtime reported in `status.progress.blocked`: Sekoia acknowledges nothing, the
    stream position does not move, and the message says what to change."""

    reason: str
    message: str
    since: str = ""


def blocked_from_progress(progress: Mapping[str, Any] | None) -> RuntimeBlock | None:
    """Read `status.progress.blocked` (written by the runtime, so checked: a known reason or the
    generic one, a one-line bounded message). None when absent or empty."""
    blocked = _get(progress, "blocked")
    if not isinstance(blocked, Mapping) or not blocked.get("reason"):
        return None
    reason = str(blocked.get("reason"))
    if reason not in BLOCKED_REASONS:
        reason = REASON_RUNTIME_BLOCKED
    message = " ".join(str(blocked.get("message") or "the runtime reports Sekoia blocked").split())
    if len(message) > MAX_BLOCKED_MESSAGE:
        message = message[: MAX_BLOCKED_MESSAGE - 3] + "..."
    since = str(blocked.get("since") or "")[:40]
    return RuntimeBlock(reason, message, since)


def _get(obj: Mapping[str, Any] | None, *path: str, default: Any = None) -> Any:
    cur: Any = obj
    for key in path:
        if not isinstance(cur, Mapping):
            return default
        cur = cur.get(key)
    return default if cur is None else cur


def _truncate(text: str) -> str:
    text = text.strip()
    if len(text) <= MAX_TERMINATION_MESSAGE:
        return text
    return text[: MAX_TERMINATION_MESSAGE - 3] + "..."


def termination_message(container_status: Mapping[str, Any]) -> str | None:
    """The most recent termination message of a container, or a summary of its exit when it wrote none."""
    for state_key in ("state", "lastState"):
        terminated = _get(container_status, state_key, "terminated")
        if terminated:
            message = (terminated.get("message") or "").strip()
            if message:
                return _truncate(message)
            reason = terminated.get("reason") or "Terminated"
            return f"{reason} (exit code {terminated.get('exitCode', '?')})"
    return None


def _container_statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])


def _pod_problem(pod: Mapping[str, Any]) -> tuple[str, str, bool] | None:
    """(reason, message, stalled) for a Pod that is not on its way to Running, else None."""
    name = _get(pod, "metadata", "name", default="?")
    for cs in _container_statuses(pod):
        waiting = _get(cs, "state", "waiting")
        if not waiting:
            continue
        reason = waiting.get("reason") or ""
        if reason not in _STALLED_WAITING:
            continue
        detail = (waiting.get("message") or "").strip()
        if reason == REASON_CRASH_LOOP:
            last = termination_message(cs)
            detail = f"last termination: {last}" if last else detail
        message = f"Pod {name}: container {cs.get('name', '?')} is in {reason}"
        return reason, f"{message}: {detail}" if detail else message, True
    phase = _get(pod, "status", "phase")
    if phase == "Failed":
        reason = _get(pod, "status", "reason", default=REASON_POD_FAILED)
        detail = _get(pod, "status", "message", default="")
        return reason, f"Pod {name} failed: {detail}".rstrip(": "), False
    for cond in _get(pod, "status", "conditions", default=[]):
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            detail = cond.get("message") or cond.get("reason") or "not scheduled"
            return REASON_UNSCHEDULABLE, f"Pod {name} cannot be scheduled: {detail}", False
    return None


def assess(
    deployment: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]],
    *,
    desired_replicas: int,
    suspended: bool,
) -> RuntimeHealth:
    """Judge the runtime from its Deployment (None if absent) and the Pods it selects."""
    live_pods = [p for p in pods if not _get(p, "metadata", "deletionTimestamp")]
    restarts = sum(int(cs.get("restartCount") or 0) for p in live_pods for cs in _container_statuses(p))
    last_message = None
    for pod in live_pods:
        for cs in _container_statuses(pod):
            last_message = termination_message(cs) or last_message
    ready = int(_get(deployment, "status", "readyReplicas", default=0))

    def verdict(
        available: bool, reason: str, message: str, *, stalled: bool = False, progressing: bool = False
    ) -> RuntimeHealth:
        return RuntimeHealth(
            available,
            reason,
            message,
            stalled=stalled,
            progressing=progressing,
            replicas=desired_replicas,
            ready_replicas=ready,
            restarts=restarts,
            last_termination_message=last_message,
        )

    if desired_replicas == 0:
        reason = REASON_SUSPENDED if suspended else REASON_SCALED_DOWN
        message = (
            "spec.suspend is true: the runtime is scaled to zero" if suspended else "runtime not running"
        )
        still_running = bool(live_pods) or int(_get(deployment, "status", "replicas", default=0)) > 0
        return verdict(False, reason, message, progressing=still_running)

    if deployment is None:
        return verdict(
            False, REASON_DEPLOYMENT_PENDING, "runtime Deployment not created yet", progressing=True
        )
    dep_name = _get(deployment, "metadata", "name", default="?")

    for pod in live_pods:
        problem = _pod_problem(pod)
        if problem:
            reason, message, stalled = problem
            return verdict(False, reason, message, stalled=stalled, progressing=not stalled)

    for cond in _get(deployment, "status", "conditions", default=[]):
        if cond.get("type") == "Progressing" and cond.get("reason") == REASON_PROGRESS_DEADLINE:
            message = f"Deployment {dep_name}: {cond.get('message') or 'rollout exceeded its deadline'}"
            return verdict(False, REASON_PROGRESS_DEADLINE, message, stalled=True)

    generation = int(_get(deployment, "metadata", "generation", default=0))
    observed = int(_get(deployment, "status", "observedGeneration", default=0))
    total = int(_get(deployment, "status", "replicas", default=0))
    updated = int(_get(deployment, "status", "updatedReplicas", default=0))
    available = int(_get(deployment, "status", "availableReplicas", default=0))
    if observed < generation or updated < desired_replicas or total > desired_replicas:
        return verdict(
            False,
            REASON_ROLLOUT,
            f"Deployment {dep_name}: rollout in progress ({updated}/{desired_replicas} updated)",
            progressing=True,
        )
    if available < desired_replicas or ready < desired_replicas:
        return verdict(
            False,
            REASON_POD_NOT_READY,
            f"Deployment {dep_name}: {ready}/{desired_replicas} runtime Pods ready",
            progressing=True,
        )
    return verdict(
        True, REASON_READY, f"Deployment {dep_name}: {ready}/{desired_replicas} runtime Pods ready"
    )


def pod_needs_attention(status: Mapping[str, Any]) -> bool:
    """Whether a runtime Pod's status says something the Deployment's status does not: a failure, a
    restart or a scheduling problem. Healthy transitions also change the Deployment's status, so the
    operator skips them at the Pod level, which halves its API calls during large rollouts."""
    phase = status.get("phase")
    if phase == "Failed":
        return True
    if phase == "Pending" and any(
        c.get("type") == "PodScheduled" and c.get("status") == "False" for c in status.get("conditions") or []
    ):
        return True
    for cs in _container_statuses({"status": status}):
        reason = (_get(cs, "state", "waiting") or {}).get("reason")
        if reason not in (None, "ContainerCreating", "PodInitializing"):
            return True
        if cs.get("restartCount") or _get(cs, "lastState", "terminated"):
            return True
    return False
