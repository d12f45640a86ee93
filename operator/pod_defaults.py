"""Runtime Pod defaults set by the platform team (chart values `runtimeDefaults.*`).

They reach the operator as one JSON flag (`--runtime-pod-defaults`) and go into every runtime
Deployment. They are the platform team's choices, so the allowlists in policy.py do not judge them;
what a resource adds in `spec.runtime` is judged there. How the two combine (`merge_into`):

- imagePullSecrets: the defaults, then the resource's (names once each): the defaults are what pulls
  the default image, so a resource may add a Secret but never lose them;
- nodeSelector: the defaults' keys, overridden or extended by the resource's;
- tolerations: the defaults', then the resource's;
- resources, affinity, priorityClassName: the resource's value replaces the default as a whole;
- topologySpreadConstraints: the defaults only (no per-resource field: a constraint's label selector
  could name other tenants' Pods).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .spec import RuntimeSpec

#: Sized for one stream consumer pushing batches: small CPU, memory bounded so a leak restarts the Pod
#: instead of starving its node; ephemeral-storage covers the 64Mi /tmp emptyDir and the logs. No CPU
#: limit, as for the operator: a spent quota pauses the event loop and with it the health endpoints.
DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "50m", "memory": "128Mi", "ephemeral-storage": "64Mi"},
    "limits": {"memory": "512Mi", "ephemeral-storage": "256Mi"},
}


class RuntimePodDefaults(BaseModel):
    """What every runtime Pod gets unless its resource says otherwise (see the module docstring)."""

    # A misspelt key in the chart values must stop the operator at start, not be ignored.
    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    image_pull_secrets: tuple[str, ...] = Field(default=(), alias="imagePullSecrets")
    resources: dict[str, dict[str, Any]] | None = None
    node_selector: dict[str, str] = Field(default_factory=dict, alias="nodeSelector")
    tolerations: tuple[dict[str, Any], ...] = ()
    affinity: dict[str, Any] | None = None
    topology_spread_constraints: tuple[dict[str, Any], ...] = Field(
        default=(), alias="topologySpreadConstraints"
    )
    priority_class_name: str = Field(default="", alias="priorityClassName")


def parse_defaults(text: str) -> RuntimePodDefaults:
    """The `--runtime-pod-defaults` JSON object; ValueError with a one-line reason when unusable."""
    try:
        raw = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"--runtime-pod-defaults is not JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise ValueError("--runtime-pod-defaults must be a JSON object")
    # The chart renders `imagePullSecrets` as a Pod spec does ([{name: ...}]); plain names work too.
    secrets = raw.get("imagePullSecrets")
    if isinstance(secrets, list):
        raw["imagePullSecrets"] = [s.get("name") if isinstance(s, dict) else s for s in secrets]
    try:
        return RuntimePodDefaults.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        ]
        raise ValueError("--runtime-pod-defaults: " + "; ".join(problems)) from None


def merge_into(pod_spec: dict[str, Any], rt: RuntimeSpec, defaults: RuntimePodDefaults) -> dict[str, Any]:
    """The container resources, after adding the scheduling and pull fields to `pod_spec` in place."""
    names = list(
        dict.fromkeys([*defaults.image_pull_secrets, *(s.name for s in rt.image_pull_secrets or [])])
    )
    if names:
        pod_spec["imagePullSecrets"] = [{"name": n} for n in names]
    node_selector = {**defaults.node_selector, **(rt.node_selector or {})}
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    tolerations = [dict(t) for t in (*defaults.tolerations, *(rt.tolerations or []))]
    if tolerations:
        pod_spec["tolerations"] = tolerations
    affinity = rt.affinity or defaults.affinity
    if affinity:
        pod_spec["affinity"] = dict(affinity)
    if defaults.topology_spread_constraints:
        pod_spec["topologySpreadConstraints"] = [dict(c) for c in defaults.topology_spread_constraints]
    priority = rt.priority_class_name or defaults.priority_class_name
    if priority:
        pod_spec["priorityClassName"] = priority
    if rt.resources is not None:
        return rt.resources
    return defaults.resources if defaults.resources is not None else DEFAULT_RESOURCES
