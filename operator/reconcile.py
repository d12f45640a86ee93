"""One reconciliation of a SekoiaIntelSync, and the lighter runtime-status refresh.

This is the only module that combines I/O (through `kube.Kube`) with the pure modules. It returns
what to report (events, resources to poke) and lets the kopf handlers do the reporting.

Status writes happen here, under a per-resource lock, after re-reading the resource: reconciliation
and the Pod/Deployment observers both write conditions, and whichever writes last must have looked
at the cluster last, or a slow reconcile could overwrite a fresher Ready=True with an older verdict.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import claims, naming, workload
from . import conditions as cond
from .events import EventSpec, transition_events
from .kube import Kube, KubeClaimBackend
from .runtime_health import RuntimeHealth, assess, blocked_from_progress
from .secrets import CredentialsCheck, check_credentials
from .spec import SpecError, SyncSpec, parse_spec


@dataclass(frozen=True)
class Settings:
    """Operator-wide settings the reconciler needs."""

    claims_namespace: str
    runtime_image: str = workload.DEFAULT_RUNTIME_IMAGE


@dataclass
class Outcome:
    """What a reconciliation wants reported."""

    events: list[EventSpec] = field(default_factory=list)
    pokes: list[claims.Holder] = field(default_factory=list)
    claim_held: bool | None = None
    status: dict[str, Any] | None = None


# Keyed by "<namespace>/<name>": the observers know the name before they know the uid.
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
_last_full: dict[str, float] = {}


def _lock(ref: workload.SyncRef) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(f"{ref.namespace}/{ref.name}", threading.Lock())


def forget(namespace: str, name: str) -> None:
    """Drop the bookkeeping of a deleted resource."""
    with _locks_guard:
        _locks.pop(f"{namespace}/{name}", None)
        _last_full.pop(f"{namespace}/{name}", None)


def resync_due(namespace: str, name: str, holds_claim: bool, interval: float) -> bool:
    """Whether the periodic safety net should reconcile now.

    Waiters re-check their claim at every tick; holders in a steady state (whose changes all arrive
    as watch events) only every `interval`, so hundreds of resources do not hammer the API server.
    """
    if not holds_claim:
        return True
    last = _last_full.get(f"{namespace}/{name}")
    return last is None or time.monotonic() - last >= interval


def _ref(body: Mapping[str, Any]) -> workload.SyncRef:
    meta = body["metadata"]
    return workload.SyncRef(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"])


def _holder(body: Mapping[str, Any]) -> claims.Holder:
    meta = body["metadata"]
    return claims.Holder(
        created=str(meta.get("creationTimestamp", "")),
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta["uid"],
    )


def _credentials(kube: Kube, ref: workload.SyncRef, spec: SyncSpec) -> CredentialsCheck | None:
    from kubernetes.client.exceptions import ApiException

    secret_ref = spec.credentials_secret_ref
    try:
        exists, data = kube.read_secret(ref.namespace, secret_ref.name)
    except ApiException as exc:
        if exc.status == 403:
            return None  # not allowed to look: let the kubelet be the judge
        raise
    return check_credentials(secret_ref.name, data, secret_ref.keys, ref.uid, exists=exists)


def _observe_runtime(
    kube: Kube, ref: workload.SyncRef, deployment: dict[str, Any] | None, replicas: int, suspended: bool
) -> RuntimeHealth:
    pods = kube.list_pods(ref.namespace, workload.selector_labels(ref)) if deployment is not None else []
    return assess(deployment, pods, desired_replicas=replicas, suspended=suspended)


def _write_status(
    kube: Kube,
    ref: workload.SyncRef,
    previous: Mapping[str, Any],
    status: dict[str, Any],
) -> list[EventSpec]:
    """Patch the status if it changed; return the events its condition transitions deserve."""
    if not cond.status_changed(previous, status):
        return []
    kube.patch_sync_status(ref.namespace, ref.name, status)
    return transition_events(previous.get("conditions"), status.get("conditions", []))


def reconcile(kube: Kube, settings: Settings, body: Mapping[str, Any]) -> Outcome:
    """Claim the collection, apply the children, observe the runtime, write the status."""
    ref = _ref(body)
    generation = int(body["metadata"].get("generation") or 0)
    outcome = Outcome()
    try:
        spec = parse_spec(body.get("spec"))
    except SpecError as exc:
        with _lock(ref):
            fresh = kube.get_sync(ref.namespace, ref.name) or body
            previous = fresh.get("status") or {}
            obs = cond.Observation(generation, spec_error=str(exc))
            error_status = {
                "observedGeneration": generation,
                "conditions": cond.merge_conditions(
                    previous.get("conditions"), cond.desired_conditions(obs), cond.now_rfc3339()
                ),
            }
            outcome.events += _write_status(kube, ref, previous, error_status)
        return outcome

    collection = naming.collection_key(spec.sekoia.url, spec.sekoia.collection_id)
    lease_name = naming.claim_name(spec.sekoia.url, spec.sekoia.collection_id)
    claim = claims.acquire(
        KubeClaimBackend(kube),
        claims.ClaimRequest(settings.claims_namespace, lease_name, collection, _holder(body)),
    )
    outcome.claim_held = claim.held
    if claim.successor is not None:
        outcome.pokes.append(claim.successor)
    if claim.took_over_from:
        outcome.events.append(
            EventSpec(
                "Normal",
                "CollectionTakenOver",
                f"took over collection {collection} from {claim.took_over_from}, which no longer exists",
            )
        )

    credentials = _credentials(kube, ref, spec)
    deployment_name = naming.child_name(ref.name)
    credentials_valid = credentials.valid if credentials is not None else None
    replicas = workload.desired_replicas(spec, credentials_valid=credentials_valid)

    with _lock(ref):
        runtime: RuntimeHealth | None = None
        image: str | None = None
        if not claim.held:
            # A loser must not run anything: the holder's runtime is the only consumer allowed.
            kube.delete_deployment(ref.namespace, deployment_name)
        else:
            before = kube.read_deployment(ref.namespace, deployment_name)
            deployment: dict[str, Any] | None = None
            for obj in workload.desired_children(
                ref,
                spec,
                default_image=settings.runtime_image,
                credentials_fingerprint=credentials.fingerprint if credentials else None,
                credentials_valid=credentials_valid,
            ):
                applied = kube.apply(obj)
                if obj["kind"] == "Deployment":
                    deployment = applied
            outcome.events += _rollout_events(before, deployment)
            image = spec.runtime.image or settings.runtime_image
            runtime = _observe_runtime(kube, ref, deployment, replicas, spec.suspend)

        fresh = kube.get_sync(ref.namespace, ref.name) or body
        previous = fresh.get("status") or {}
        obs = cond.Observation(
            generation,
            claim=cond.ClaimView(claim.held, claim.holder, collection),
            credentials=credentials,
            runtime=runtime,
            suspended=spec.suspend,
            blocked=blocked_from_progress(previous.get("progress")),
        )
        status: dict[str, Any] = {
            "observedGeneration": generation,
            "connectorId": naming.connector_id(ref.uid),
            "conditions": cond.merge_conditions(
                previous.get("conditions"), cond.desired_conditions(obs), cond.now_rfc3339()
            ),
            "claim": {
                "leaseName": lease_name,
                "leaseNamespace": settings.claims_namespace,
                "holder": claim.holder,
                "collection": collection,
            },
        }
        if runtime is not None:
            status["runtime"] = cond.runtime_details(runtime, deployment_name, image)
        else:
            status["runtime"] = {"deploymentName": deployment_name, "replicas": 0, "readyReplicas": 0}
        outcome.events += _write_status(kube, ref, previous, status)
        outcome.status = status
    _last_full[f"{ref.namespace}/{ref.name}"] = time.monotonic()
    return outcome


def _rollout_events(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[EventSpec]:
    if after is None:
        return []
    name = after["metadata"]["name"]
    if before is None:
        return [EventSpec("Normal", "RuntimeCreated", f"created runtime Deployment {name}")]
    old_template = (before.get("spec") or {}).get("template")
    new_template = (after.get("spec") or {}).get("template")
    old_replicas = (before.get("spec") or {}).get("replicas")
    new_replicas = (after.get("spec") or {}).get("replicas")
    events = []
    if old_template != new_template:
        events.append(EventSpec("Normal", "RolloutStarted", f"rolling out a new runtime Pod for {name}"))
    if old_replicas != new_replicas:
        events.append(
            EventSpec("Normal", "RuntimeScaled", f"scaled {name} from {old_replicas} to {new_replicas}")
        )
    return events


def refresh_runtime(kube: Kube, namespace: str, name: str) -> Outcome:
    """Re-judge the runtime of a resource after its Deployment or Pods changed.

    Only the runtime-dependent conditions move; the claim and credentials verdicts are the last ones
    the reconciler wrote. Resources that do not hold their claim or were never reconciled are left
    alone (the reconciler owns their status).
    """
    outcome = Outcome()
    with _lock(workload.SyncRef(namespace, name, "")):
        body = kube.get_sync(namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return outcome
        ref = _ref(body)
        previous = body.get("status") or {}
        conditions = previous.get("conditions")
        generation = previous.get("observedGeneration")
        if generation is None or not cond.is_true(conditions, cond.COLLECTION_CLAIMED):
            return outcome
        try:
            spec = parse_spec(body.get("spec"))
        except SpecError:
            return outcome
        credentials = cond.credentials_from_conditions(conditions)
        replicas = workload.desired_replicas(
            spec, credentials_valid=credentials.valid if credentials is not None else None
        )
        deployment_name = naming.child_name(ref.name)
        deployment = kube.read_deployment(namespace, deployment_name)
        runtime = _observe_runtime(kube, ref, deployment, replicas, spec.suspend)
        collection = (previous.get("claim") or {}).get("collection") or naming.collection_key(
            spec.sekoia.url, spec.sekoia.collection_id
        )
        obs = cond.Observation(
            int(generation),
            claim=cond.ClaimView(True, ref.namespace + "/" + ref.name, collection),
            credentials=credentials,
            runtime=runtime,
            suspended=spec.suspend,
            blocked=blocked_from_progress(previous.get("progress")),
        )
        image = (previous.get("runtime") or {}).get("image")
        refreshed = {
            "conditions": cond.merge_conditions(conditions, cond.desired_conditions(obs), cond.now_rfc3339()),
            "runtime": cond.runtime_details(runtime, deployment_name, image),
        }
        outcome.events += _write_status(kube, ref, previous, refreshed)
        outcome.status = refreshed
    return outcome


def finalize(kube: Kube, settings: Settings, body: Mapping[str, Any]) -> tuple[bool, claims.Holder | None]:
    """Deletion: stop the runtime, then hand the claim on. Returns (done, successor).

    `done` is False while runtime Pods still exist: handing the claim over earlier could let the
    successor's runtime start while ours still consumes the stream.
    """
    ref = _ref(body)
    try:
        spec = parse_spec(body.get("spec"))
    except SpecError:
        return True, None
    backend = KubeClaimBackend(kube)
    lease_name = naming.claim_name(spec.sekoia.url, spec.sekoia.collection_id)
    lease = backend.read_lease(settings.claims_namespace, lease_name)
    if lease is None or claims.lease_holder(lease)[1] != ref.uid:
        return True, None  # a waiter: nothing to hand over, owner references clean the rest
    kube.delete_deployment(ref.namespace, naming.child_name(ref.name))
    if kube.list_pods(ref.namespace, workload.selector_labels(ref)):
        return False, None
    collection = naming.collection_key(spec.sekoia.url, spec.sekoia.collection_id)
    result = claims.release(backend, settings.claims_namespace, lease_name, collection, _holder(body))
    return True, result.successor
