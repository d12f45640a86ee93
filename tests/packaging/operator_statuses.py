"""Representative SekoiaIntelSync objects whose conditions come from the operator's own code
(`desired_conditions`), so the health tests follow the operator if its conditions change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sekoia_intel_operator import conditions as c
from sekoia_intel_operator import runtime_health as rh
from sekoia_intel_operator import secrets

COLLECTION = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
CLAIMED = c.ClaimView(held=True, holder="intel/apt-feed", collection=COLLECTION)
CREDS_OK = secrets.CredentialsCheck(True, secrets.REASON_VALID, "both keys present")
RUNNING = rh.RuntimeHealth(True, rh.REASON_READY, "1/1 ready", replicas=1, ready_replicas=1)


CRD = Path(__file__).resolve().parents[2] / "deploy" / "crds" / "sekoiaintelsyncs.yaml"


def crd_status_default() -> dict[str, Any]:
    """The `status` the API server gives a resource the operator has not written to yet."""
    crd = yaml.safe_load(CRD.read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return dict(schema["properties"]["status"]["default"])


def sync_object(
    obs: c.Observation | None, *, generation: int = 3, suspend: bool = False, observed: int | None = None
) -> dict[str, Any]:
    """A resource at `generation` whose status is what the operator writes for `obs` (for `None`,
    what the API server returns before the operator has written anything)."""
    obj: dict[str, Any] = {
        "apiVersion": "sync.sekoia-intel.dev/v1alpha1",
        "kind": "SekoiaIntelSync",
        "metadata": {"name": "apt-feed", "namespace": "intel", "generation": generation},
        "spec": {"suspend": suspend},
    }
    if obs is None:
        obj["status"] = crd_status_default()
    else:
        obj["status"] = {
            "observedGeneration": obs.generation if observed is None else observed,
            "conditions": c.merge_conditions(None, c.desired_conditions(obs), c.now_rfc3339()),
        }
    return obj


def observation(**kw: Any) -> c.Observation:
    """A steady, healthy observation at generation 3, with `kw` overriding its fields."""
    base: dict[str, Any] = {"generation": 3, "claim": CLAIMED, "credentials": CREDS_OK, "runtime": RUNNING}
    base.update(kw)
    return c.Observation(**base)


def cases() -> dict[str, tuple[dict[str, Any], str, str]]:
    """name -> (object, expected Argo CD health, expected kstatus)."""
    conflict = c.ClaimView(held=False, holder="intel/other", collection=COLLECTION)
    missing = secrets.CredentialsCheck(False, secrets.REASON_SECRET_NOT_FOUND, "Secret 'creds' not found")
    crash = rh.RuntimeHealth(False, rh.REASON_CRASH_LOOP, "back-off restarting", stalled=True)
    rollout = rh.RuntimeHealth(False, rh.REASON_ROLLOUT, "0/1 updated", progressing=True)
    suspended = rh.RuntimeHealth(False, rh.REASON_SUSPENDED, "scaled to zero on request")
    return {
        "synchronizing": (sync_object(observation()), "Healthy", "Current"),
        "no status yet": (sync_object(None), "Progressing", "InProgress"),
        "stale generation": (sync_object(observation(), observed=2), "Progressing", "InProgress"),
        "stale even if stalled": (
            sync_object(observation(claim=conflict), observed=2),
            "Progressing",
            "InProgress",
        ),
        "runtime not observed": (sync_object(observation(runtime=None)), "Progressing", "InProgress"),
        "rollout": (sync_object(observation(runtime=rollout)), "Progressing", "InProgress"),
        "collection conflict": (sync_object(observation(claim=conflict)), "Degraded", "Failed"),
        "secret missing": (sync_object(observation(credentials=missing)), "Degraded", "Failed"),
        "crash loop": (sync_object(observation(runtime=crash)), "Degraded", "Failed"),
        "invalid spec": (sync_object(observation(spec_error="bad url")), "Degraded", "Failed"),
        "child name taken": (
            sync_object(observation(runtime=None, child_conflict="a Deployment named 'sis-x' exists")),
            "Degraded",
            "Failed",
        ),
        "waiting for the previous runtime": (
            sync_object(observation(runtime=None, waiting_for="Pod intel/sis-old-1")),
            "Progressing",
            "InProgress",
        ),
        "suspended": (
            sync_object(observation(runtime=suspended, suspended=True), suspend=True),
            "Suspended",
            "Current",
        ),
    }
