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

from . import claims, naming, netpol, policy, tls, workload
from . import conditions as cond
from .config import NetworkPolicyConfig
from .events import EventSpec, transition_events
from .kube import ChildNameTaken, CollectionRuntime, Kube, KubeClaimBackend, owned_by
from .pod_defaults import RuntimePodDefaults
from .runtime_health import RuntimeHealth, assess, blocked_from_progress
from .secrets import CredentialsCheck, check_ca_bundle_secret, check_credentials, not_readable
from .spec import SpecError, SyncSpec, parse_spec


@dataclass(frozen=True)
class Settings:
    """Operator-wide settings the reconciler needs."""

    claims_namespace: str
    runtime_image: str = workload.DEFAULT_RUNTIME_IMAGE
    allowlists: policy.Allowlists = field(default_factory=policy.Allowlists)
    #: The platform's defaults for every runtime Pod (chart values runtimeDefaults.*).
    pod_defaults: RuntimePodDefaults = field(default_factory=RuntimePodDefaults)
    #: None = no NetworkPolicy per runtime.
    network_policy: NetworkPolicyConfig | None = None
    #: "kubectl ... create rolebinding ..." that lets the operator read Secrets in `{namespace}`.
    secrets_grant: str | None = None


@dataclass
class Outcome:
    """What a reconciliation wants reported."""

    events: list[EventSpec] = field(default_factory=list)
    pokes: list[claims.Holder] = field(default_factory=list)
    claim_held: bool | None = None
    status: dict[str, Any] | None = None
    #: Reconcile again after this many seconds (waiting for another runtime of the collection to stop).
    retry_after: float | None = None


# Keyed by "<namespace>/<name>": the observers know the name before they know the uid.
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
_last_full: dict[str, float] = {}
#: Last credentials verdict per resource (validity, reason, fingerprint): the cheap periodic re-check
#: compares against it to notice a rotated or un-labelled Secret without watching any Secret.
_last_credentials: dict[str, tuple[bool, str, str | None]] = {}


def _lock(ref: workload.SyncRef) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(f"{ref.namespace}/{ref.name}", threading.Lock())


def forget(namespace: str, name: str) -> None:
    """Drop the bookkeeping of a deleted resource."""
    with _locks_guard:
        _locks.pop(f"{namespace}/{name}", None)
        _last_full.pop(f"{namespace}/{name}", None)
        _last_credentials.pop(f"{namespace}/{name}", None)


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


def _credentials(kube: Kube, settings: Settings, ref: workload.SyncRef, spec: SyncSpec) -> CredentialsCheck:
    from kubernetes.client.exceptions import ApiException

    secret_ref = spec.credentials_secret_ref
    try:
        exists, data, labels = kube.read_credentials_secret(ref.namespace, secret_ref.name)
    except ApiException as exc:
        if exc.status == 403:
            # Not granted in this namespace: the namespace has not opted in to the operator.
            grant = settings.secrets_grant.format(namespace=ref.namespace) if settings.secrets_grant else None
            return not_readable(ref.namespace, secret_ref.name, grant)
        raise
    check = check_credentials(
        secret_ref.name,
        data,
        secret_ref.keys,
        ref.uid,
        exists=exists,
        labels=labels,
        namespace=ref.namespace,
    )
    if not check.valid:
        return check
    for side in (spec.opencti, spec.sekoia):
        ca = side.ca_bundle_ref.secret_key_ref if side.ca_bundle_ref is not None else None
        if ca is None:
            continue
        try:
            exists, data, labels = kube.read_credentials_secret(ref.namespace, ca.name)
        except ApiException as exc:
            if exc.status == 403:
                grant = (
                    settings.secrets_grant.format(namespace=ref.namespace) if settings.secrets_grant else None
                )
                return not_readable(ref.namespace, ca.name, grant)
            raise
        refusal = check_ca_bundle_secret(
            ca.name, data, ca.key, exists=exists, labels=labels, namespace=ref.namespace
        )
        if refusal is not None:
            return refusal
    return check


def _remember(ref: workload.SyncRef, check: CredentialsCheck) -> None:
    _last_credentials[f"{ref.namespace}/{ref.name}"] = (check.valid, check.reason, check.fingerprint)


def credentials_changed(kube: Kube, settings: Settings, body: Mapping[str, Any]) -> bool:
    """Whether the referenced Secret's verdict or fingerprint moved since the last reconciliation.

    One `get` of one Secret: this is how a rotation reaches the runtime without the operator
    watching (and so being able to read) every Secret of the cluster.
    """
    ref = _ref(body)
    last = _last_credentials.get(f"{ref.namespace}/{ref.name}")
    if last is None:
        return True
    try:
        spec = parse_spec(body.get("spec"))
    except SpecError:
        return False
    check = _credentials(kube, settings, ref, spec)
    return (check.valid, check.reason, check.fingerprint) != last


def _refuse(
    kube: Kube, ref: workload.SyncRef, body: Mapping[str, Any], generation: int, verdict: policy.PolicyVerdict
) -> Outcome:
    """The spec asks for something the operator's allowlists refuse: run nothing, say why."""
    outcome = Outcome()
    ref, _ = children_ref(kube, ref)
    with _lock(ref):
        kube.delete_owned_deployment(ref.namespace, ref.child, ref.uid)
        fresh = kube.get_sync(ref.namespace, ref.name) or body
        previous = fresh.get("status") or {}
        obs = cond.Observation(generation, refusal=(verdict.reason, verdict.message))
        status = {
            "observedGeneration": generation,
            "conditions": cond.merge_conditions(
                previous.get("conditions"), cond.desired_conditions(obs), cond.now_rfc3339()
            ),
            "runtime": {"deploymentName": ref.child, "replicas": 0, "readyReplicas": 0},
        }
        outcome.events += _write_status(kube, ref, previous, status)
        outcome.status = status
    return outcome


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

    verdict = policy.check(spec, settings.allowlists, default_image=settings.runtime_image)
    if not verdict.allowed:
        return _refuse(kube, ref, body, generation, verdict)

    collection = naming.collection_key(spec.sekoia.collection_id)
    lease_name = naming.claim_name(spec.sekoia.collection_id)
    claim = claims.acquire(
        KubeClaimBackend(kube),
        claims.ClaimRequest(settings.claims_namespace, collection, _holder(body)),
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

    credentials = _credentials(kube, settings, ref, spec)
    _remember(ref, credentials)
    ref, before = children_ref(kube, ref)
    deployment_name = ref.child
    credentials_valid = credentials.valid
    replicas = workload.desired_replicas(spec, credentials_valid=credentials_valid)

    with _lock(ref):
        runtime: RuntimeHealth | None = None
        image: str | None = None
        child_conflict: str | None = None
        waiting_for: str | None = None
        if not claim.held or credentials.refused:
            # A loser must not run anything: the holder's runtime is the only consumer allowed. And no
            # Pod may reference a Secret that was not offered for this use. Only a Deployment this
            # resource owns is ever deleted.
            kube.delete_owned_deployment(ref.namespace, deployment_name, ref.uid)
        else:
            if before is not None and not owned_by(before, ref.uid):
                child_conflict = str(ChildNameTaken("Deployment", ref.namespace, deployment_name))
            running = bool(before and not child_conflict and (before.get("spec") or {}).get("replicas"))
            blocked = child_conflict is None and replicas > 0 and not running
            others = _other_runtimes(kube, ref, collection) if blocked else []
            if others:
                # Never two runtimes on one collection: ours starts only once every other one is gone.
                waiting_for = _describe(others)
                outcome.retry_after = 2.0
                outcome.pokes += [
                    claims.Holder("", r.namespace, r.sync_name, r.owner_uid) for r in _pokeable(others)
                ]
            deployment: dict[str, Any] | None = None
            children = workload.desired_children(
                ref,
                spec,
                default_image=settings.runtime_image,
                credentials_fingerprint=credentials.fingerprint,
                credentials_valid=credentials_valid,
                pod_defaults=settings.pod_defaults,
            )
            if settings.network_policy is not None:
                # Before the Deployment: the Pod never runs unconfined, not even for a moment.
                children.insert(-1, netpol.desired_network_policy(ref, spec, settings.network_policy))
            for obj in children:
                if child_conflict is not None or (waiting_for is not None and obj["kind"] == "Deployment"):
                    break
                try:
                    applied = kube.apply_owned(obj, ref.uid)
                except ChildNameTaken as exc:
                    child_conflict = str(exc)
                    break
                if obj["kind"] == "Deployment":
                    deployment = applied
            if child_conflict is None and waiting_for is None:
                outcome.events += _rollout_events(before, deployment)
                image = spec.runtime.image or settings.runtime_image
                runtime = _observe_runtime(kube, ref, deployment, replicas, spec.suspend)
                if _lost_claim(kube, settings, collection, ref):
                    # Handed to someone else while we applied: stop before the new holder starts.
                    kube.delete_owned_deployment(ref.namespace, deployment_name, ref.uid)
                    outcome.retry_after = 1.0

        fresh = kube.get_sync(ref.namespace, ref.name) or body
        previous = fresh.get("status") or {}
        obs = cond.Observation(
            generation,
            claim=cond.ClaimView(claim.held, claim.holder, collection),
            credentials=credentials,
            runtime=runtime,
            suspended=spec.suspend,
            child_conflict=child_conflict,
            waiting_for=waiting_for,
            tls=tls.verdict(spec),
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


def collection_of(body: Mapping[str, Any]) -> str | None:
    """The collection UUID a resource names, None if its spec is unusable."""
    try:
        return naming.collection_key(parse_spec(body.get("spec")).sekoia.collection_id)
    except SpecError:
        return None


def still_holds(kube: Kube, settings: Settings, body: Mapping[str, Any]) -> bool:
    """Cheap check for the periodic timer: does this resource's claim Lease still name it, alive?"""
    collection = collection_of(body)
    if collection is None:
        return False
    written = claims.current_holder(KubeClaimBackend(kube), settings.claims_namespace, collection)
    return written is not None and written[1] == body["metadata"]["uid"]


def children_ref(kube: Kube, ref: workload.SyncRef) -> tuple[workload.SyncRef, dict[str, Any] | None]:
    """`ref` (with the legacy child name when this resource already owns a Deployment named the way
    earlier versions named children: keeping it avoids running two runtimes of one resource, or
    restarting it, on upgrade) and the Deployment found under that name, whoever owns it.
    Children under the current name win when both exist."""
    current = kube.read_deployment(ref.namespace, ref.child)
    legacy = naming.legacy_child_name(ref.name)
    if current is not None or legacy == ref.child:
        return ref, current
    found = kube.read_deployment(ref.namespace, legacy)
    if found is not None and owned_by(found, ref.uid):
        return workload.SyncRef(ref.namespace, ref.name, ref.uid, legacy_child=legacy), found
    return ref, None


def _other_runtimes(kube: Kube, ref: workload.SyncRef, collection: str) -> list[CollectionRuntime]:
    """Runtimes of the collection that are not ours: by the collection label, and (for Pods started
    before that label existed) the Pods of every other resource naming the collection."""
    found = [r for r in kube.collection_runtimes(collection) if r.owner_uid != ref.uid]
    seen = {(r.kind, r.namespace, r.name) for r in found}
    for other in KubeClaimBackend(kube).claimants(collection):
        if other.uid == ref.uid:
            continue
        for pod in kube.list_pods(other.namespace, {naming.LABEL_UID: other.uid}):
            name = str((pod.get("metadata") or {}).get("name", ""))
            if ("Pod", other.namespace, name) not in seen:
                found.append(CollectionRuntime("Pod", other.namespace, name, other.uid, other.name))
    return found


def _pokeable(runtimes: list[CollectionRuntime]) -> list[CollectionRuntime]:
    seen: dict[tuple[str, str], CollectionRuntime] = {}
    for r in runtimes:
        if r.sync_name:
            seen.setdefault((r.namespace, r.sync_name), r)
    return list(seen.values())


def _describe(runtimes: list[CollectionRuntime]) -> str:
    names = sorted({f"{r.kind} {r.namespace}/{r.name}" for r in runtimes})
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return ", ".join(names[:3]) + more


def _lost_claim(kube: Kube, settings: Settings, collection: str, ref: workload.SyncRef) -> bool:
    written = claims.current_holder(KubeClaimBackend(kube), settings.claims_namespace, collection)
    return written is not None and written[1] != ref.uid


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
        ref, deployment = children_ref(kube, ref)
        deployment_name = ref.child
        if deployment is not None and not owned_by(deployment, ref.uid):
            return outcome
        runtime = _observe_runtime(kube, ref, deployment, replicas, spec.suspend)
        collection = naming.collection_key(spec.sekoia.collection_id)
        obs = cond.Observation(
            int(generation),
            claim=cond.ClaimView(True, ref.namespace + "/" + ref.name, collection),
            credentials=credentials,
            runtime=runtime,
            suspended=spec.suspend,
            tls=tls.verdict(spec),
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
    collection = naming.collection_key(spec.sekoia.collection_id)
    written = claims.current_holder(backend, settings.claims_namespace, collection)
    if written is None or written[1] != ref.uid:
        return True, None  # a waiter: nothing to hand over, owner references clean the rest
    ref, _ = children_ref(kube, ref)
    kube.delete_owned_deployment(ref.namespace, ref.child, ref.uid)
    if kube.list_pods(ref.namespace, workload.selector_labels(ref)):
        return False, None
    result = claims.release(backend, settings.claims_namespace, collection, _holder(body))
    return True, result.successor
