"""The collection claim: at most one SekoiaIntelSync per Sekoia.io collection, enforced by the API server.

A claim is a `coordination.k8s.io/v1` Lease named after the collection (see naming.claim_name) in the
operator's namespace. Creating an object is atomic, so of any number of simultaneous claimants exactly
one gets the Lease; every later change (stale takeover, hand-over on deletion) is an update carrying
the resourceVersion read just before, so two writers can never both succeed. Nothing here relies on
an in-memory view of the cluster.

The protocol talks to the cluster through `ClaimBackend`; `KubeClaimBackend` is the real one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from . import naming

ANNOTATION_HOLDER_UID = f"{naming.PREFIX}holder-uid"
ANNOTATION_HOLDER = f"{naming.PREFIX}holder"
ANNOTATION_COLLECTION = f"{naming.PREFIX}collection"

_MAX_ATTEMPTS = 8


class ClaimConflict(Exception):
    """The API server refused a write because the object exists or changed since it was read."""


class ClaimsNamespaceMissing(Exception):
    """The namespace that should hold the claim Leases does not exist (a deployment mistake)."""


@dataclass(frozen=True, order=True)
class Holder:
    """A resource that holds or wants a claim. Ordered oldest first (ties broken by name)."""

    created: str
    namespace: str
    name: str
    uid: str

    @property
    def identity(self) -> str:
        """`<namespace>/<name>`, as written in the Lease and in messages."""
        return naming.holder_identity(self.namespace, self.name)


@dataclass(frozen=True)
class ClaimRequest:
    """Who wants which collection, and where the Lease lives."""

    lease_namespace: str
    lease_name: str
    collection: str
    holder: Holder


@dataclass(frozen=True)
class ClaimState:
    """Outcome of `acquire`. `successor` is a resource that was just given the claim by someone else
    than itself and should be told to reconcile now."""

    held: bool
    holder: str
    holder_uid: str
    acquired: bool = False
    took_over_from: str | None = None
    successor: Holder | None = None


class ClaimBackend(Protocol):
    """The few API calls the protocol needs."""

    def create_lease(self, namespace: str, body: dict[str, Any]) -> None:
        """Create; raise ClaimConflict if it already exists."""

    def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        """Read, None if absent."""

    def replace_lease(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        """Replace with body.metadata.resourceVersion as precondition; ClaimConflict if it changed."""

    def delete_lease(self, namespace: str, name: str, resource_version: str, uid: str) -> None:
        """Delete with preconditions; ClaimConflict if it changed. Absent is success."""

    def resource_uid(self, namespace: str, name: str) -> str | None:
        """Current uid of that SekoiaIntelSync, None if it does not exist.

        A resource being deleted still counts: its finalizer stops its runtime, then hands the claim
        over, so taking the claim earlier could run two runtimes on one collection for a moment."""

    def claimants(self, lease_name: str) -> Iterable[Holder]:
        """Every SekoiaIntelSync not being deleted whose spec maps to that claim name."""


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_body(
    namespace: str,
    name: str,
    collection: str,
    holder: Holder,
    *,
    transitions: int = 0,
    resource_version: str | None = None,
) -> dict[str, Any]:
    """A Lease naming `holder`; with `resource_version`, ready for a conditional replace."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {
            naming.LABEL_MANAGED_BY: naming.MANAGED_BY,
            "app.kubernetes.io/component": "collection-claim",
        },
        "annotations": {
            ANNOTATION_HOLDER: holder.identity,
            ANNOTATION_HOLDER_UID: holder.uid,
            ANNOTATION_COLLECTION: collection,
        },
    }
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    now = _micro_time()
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {
            "holderIdentity": holder.identity,
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": transitions,
        },
    }


def lease_holder(lease: Mapping[str, Any]) -> tuple[str, str]:
    """(identity, uid) of the holder written in a Lease."""
    annotations = (lease.get("metadata") or {}).get("annotations") or {}
    identity = (lease.get("spec") or {}).get("holderIdentity") or annotations.get(ANNOTATION_HOLDER, "")
    return str(identity), str(annotations.get(ANNOTATION_HOLDER_UID, ""))


def _transitions(lease: Mapping[str, Any]) -> int:
    return int((lease.get("spec") or {}).get("leaseTransitions") or 0) + 1


def _rv(lease: Mapping[str, Any]) -> str:
    return str((lease.get("metadata") or {}).get("resourceVersion", ""))


def acquire(backend: ClaimBackend, req: ClaimRequest) -> ClaimState:
    """Get (or confirm) the claim for `req.holder`.

    A Lease whose holder no longer exists is stale: it goes to the oldest live claimant, which may or
    may not be the caller; that keeps "oldest waiter first" even when the operator missed a deletion.
    """
    me = req.holder
    for _ in range(_MAX_ATTEMPTS):
        # Read first: in the steady state the Lease exists, and a read is cheaper than a refused create.
        lease = backend.read_lease(req.lease_namespace, req.lease_name)
        if lease is None:
            try:
                backend.create_lease(
                    req.lease_namespace, lease_body(req.lease_namespace, req.lease_name, req.collection, me)
                )
                return ClaimState(True, me.identity, me.uid, acquired=True)
            except ClaimConflict:
                continue  # someone created it since our read: look at who
        identity, uid = lease_holder(lease)
        if uid == me.uid:
            return ClaimState(True, me.identity, me.uid)
        namespace, _, name = identity.partition("/")
        if uid and backend.resource_uid(namespace, name) == uid:
            return ClaimState(False, identity, uid)

        # Stale holder: hand the Lease to the oldest live claimant, conditionally on what we read.
        candidates = {h.uid: h for h in backend.claimants(req.lease_name)}
        candidates.setdefault(me.uid, me)
        successor = min(candidates.values())
        body = lease_body(
            req.lease_namespace,
            req.lease_name,
            req.collection,
            successor,
            transitions=_transitions(lease),
            resource_version=_rv(lease),
        )
        try:
            backend.replace_lease(req.lease_namespace, req.lease_name, body)
        except ClaimConflict:
            continue  # someone else changed it first: re-evaluate from scratch
        if successor.uid == me.uid:
            return ClaimState(True, me.identity, me.uid, acquired=True, took_over_from=identity or None)
        return ClaimState(False, successor.identity, successor.uid, successor=successor)
    raise ClaimConflict(f"claim {req.lease_name} kept changing; will retry")


@dataclass(frozen=True)
class ReleaseResult:
    """Outcome of `release`: `successor` got the claim, or the Lease was deleted (`released`)."""

    released: bool
    successor: Holder | None = None


def release(
    backend: ClaimBackend, lease_namespace: str, lease_name: str, collection: str, me: Holder
) -> ReleaseResult:
    """Give up the claim when `me` is deleted: the oldest other claimant gets it, or the Lease goes.

    Does nothing when `me` does not hold the claim (a waiter being deleted).
    """
    for _ in range(_MAX_ATTEMPTS):
        lease = backend.read_lease(lease_namespace, lease_name)
        if lease is None:
            return ReleaseResult(False)
        _, uid = lease_holder(lease)
        if uid != me.uid:
            return ReleaseResult(False)
        others = [h for h in backend.claimants(lease_name) if h.uid != me.uid]
        try:
            if others:
                successor = min(others)
                body = lease_body(
                    lease_namespace,
                    lease_name,
                    collection,
                    successor,
                    transitions=_transitions(lease),
                    resource_version=_rv(lease),
                )
                backend.replace_lease(lease_namespace, lease_name, body)
                return ReleaseResult(True, successor)
            meta = lease.get("metadata") or {}
            backend.delete_lease(lease_namespace, lease_name, _rv(lease), str(meta.get("uid", "")))
            return ReleaseResult(True)
        except ClaimConflict:
            continue
    raise ClaimConflict(f"claim {lease_name} kept changing; will retry")


def peek(backend: ClaimBackend, lease_namespace: str, lease_name: str) -> tuple[str, str] | None:
    """(identity, uid) of the live holder of a claim, or None if unclaimed or held by a deleted resource.

    For the admission webhook's early feedback only: the Lease protocol above is the guarantee.
    """
    lease = backend.read_lease(lease_namespace, lease_name)
    if lease is None:
        return None
    identity, uid = lease_holder(lease)
    namespace, _, name = identity.partition("/")
    if not uid or backend.resource_uid(namespace, name) != uid:
        return None
    return identity, uid
