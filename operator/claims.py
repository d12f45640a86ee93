"""The collection claim: at most one SekoiaIntelSync per Sekoia.io collection, enforced by the API server.

A claim is a `coordination.k8s.io/v1` Lease named after the collection UUID (naming.claim_name) in the
operator's namespace. Creating an object is atomic, so of any number of simultaneous claimants exactly
one gets the Lease; every later change (stale takeover, hand-over on deletion, restoration after a
hand edit) is an update carrying the resourceVersion read just before, so two writers can never both
succeed. Nothing here relies on an in-memory view of the cluster.

The rule every writer follows: a Lease written by the operator for a live resource naming the
collection stands (also while that resource is being deleted: its finalizer stops the runtime, then
hands over). A Lease that is missing, names a resource that is gone, or was edited by hand (its holder
fields no longer match the check the operator wrote with them) is rewritten for the OLDEST live
resource naming the collection (creationTimestamp, then uid); so is a fresh claim. Leases named the
old way (URL + UUID) are carried over to their holder.

The protocol talks to the cluster through `ClaimBackend`; `KubeClaimBackend` is the real one.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from . import naming

ANNOTATION_HOLDER_UID = f"{naming.PREFIX}holder-uid"
ANNOTATION_HOLDER = f"{naming.PREFIX}holder"
ANNOTATION_COLLECTION = f"{naming.PREFIX}collection"
#: Digest of (collection, holder uid, holder identity) written with them: a hand edit of the holder
#: does not update it, which is how such an edit is told apart from the operator's own writes.
ANNOTATION_CHECK = f"{naming.PREFIX}claim-check"
LABEL_COMPONENT = "app.kubernetes.io/component"
COMPONENT = "collection-claim"
#: Labels of every claim Lease (the Lease watch selects on them).
LEASE_LABELS = {naming.LABEL_MANAGED_BY: naming.MANAGED_BY, LABEL_COMPONENT: COMPONENT}

_MAX_ATTEMPTS = 8


class ClaimConflict(Exception):
    """The API server refused a write because the object exists or changed since it was read."""


class ClaimsNamespaceMissing(Exception):
    """The namespace that should hold the claim Leases does not exist (a deployment mistake)."""


@dataclass(frozen=True)
class Holder:
    """A resource that holds or wants a claim. Ordered oldest first: creationTimestamp, then uid."""

    created: str
    namespace: str
    name: str
    uid: str
    deleting: bool = field(default=False, compare=False)

    def __lt__(self, other: Holder) -> bool:
        return (self.created, self.uid) < (other.created, other.uid)

    @property
    def identity(self) -> str:
        """`<namespace>/<name>`, as written in the Lease and in messages."""
        return naming.holder_identity(self.namespace, self.name)


@dataclass(frozen=True)
class ClaimRequest:
    """Who wants which collection, and where the Lease lives."""

    lease_namespace: str
    collection: str
    holder: Holder

    @property
    def lease_name(self) -> str:
        """The Lease of that collection."""
        return naming.claim_name(self.collection)


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

    def resource(self, namespace: str, name: str) -> Holder | None:
        """That SekoiaIntelSync (with `deleting` set while it is being deleted), None if absent.

        A resource being deleted still counts as a holder: its finalizer stops its runtime, then
        hands the claim over, so taking the claim earlier could run two runtimes for a moment."""

    def claimants(self, collection: str) -> Iterable[Holder]:
        """Every SekoiaIntelSync naming that collection UUID, those being deleted flagged `deleting`."""

    def claim_leases(self, namespace: str) -> Iterable[dict[str, Any]]:
        """Every claim Lease of the namespace (current and legacy names)."""


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_body(
    namespace: str,
    collection: str,
    holder: Holder,
    *,
    transitions: int = 0,
    resource_version: str | None = None,
) -> dict[str, Any]:
    """The Lease of `collection` naming `holder`; with `resource_version`, ready for a conditional
    replace."""
    metadata: dict[str, Any] = {
        "name": naming.claim_name(collection),
        "namespace": namespace,
        "labels": dict(LEASE_LABELS),
        "annotations": {
            ANNOTATION_HOLDER: holder.identity,
            ANNOTATION_HOLDER_UID: holder.uid,
            ANNOTATION_COLLECTION: collection,
            ANNOTATION_CHECK: claim_check(collection, holder.uid, holder.identity),
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


def claim_check(collection: str, uid: str, identity: str) -> str:
    """The digest written next to a holder (not a secret: it only detects accidental edits)."""
    return hashlib.sha256(f"{collection}\n{uid}\n{identity}".encode()).hexdigest()[:16]


def written_by_operator(lease: Mapping[str, Any], collection: str) -> bool:
    """Whether the Lease's holder fields are as the operator wrote them for that collection."""
    identity, uid = lease_holder(lease)
    annotations = (lease.get("metadata") or {}).get("annotations") or {}
    return (
        annotations.get(ANNOTATION_COLLECTION) == collection
        and annotations.get(ANNOTATION_HOLDER) == identity
        and annotations.get(ANNOTATION_CHECK) == claim_check(collection, uid, identity)
    )


def lease_holder(lease: Mapping[str, Any]) -> tuple[str, str]:
    """(identity, uid) of the holder written in a Lease."""
    annotations = (lease.get("metadata") or {}).get("annotations") or {}
    identity = (lease.get("spec") or {}).get("holderIdentity") or annotations.get(ANNOTATION_HOLDER, "")
    return str(identity), str(annotations.get(ANNOTATION_HOLDER_UID, ""))


def lease_collection(lease: Mapping[str, Any]) -> str:
    """The collection UUID a claim Lease is about (current or legacy Lease), "" if unknown."""
    annotations = (lease.get("metadata") or {}).get("annotations") or {}
    return naming.collection_of_claim(str(annotations.get(ANNOTATION_COLLECTION, "")))


def _transitions(lease: Mapping[str, Any]) -> int:
    return int((lease.get("spec") or {}).get("leaseTransitions") or 0) + 1


def _rv(lease: Mapping[str, Any]) -> str:
    return str((lease.get("metadata") or {}).get("resourceVersion", ""))


def _live_holder(backend: ClaimBackend, lease: Mapping[str, Any]) -> Holder | None:
    """The resource a Lease names, if it still exists with the uid the Lease records."""
    identity, uid = lease_holder(lease)
    namespace, _, name = identity.partition("/")
    if not uid or not namespace or not name:
        return None
    found = backend.resource(namespace, name)
    return found if found is not None and found.uid == uid else None


def rightful_holder(current: Holder | None, claimants: Iterable[Holder]) -> Holder | None:
    """Who should hold a claim: `current` while it is being deleted (its finalizer hands over once
    its runtime stopped), else the oldest claimant not being deleted; None when nobody wants it."""
    listed = list(claimants)
    if current is not None and current.deleting and any(c.uid == current.uid for c in listed):
        return current
    live = [c for c in listed if not c.deleting]
    return min(live) if live else None


def migrate_legacy(backend: ClaimBackend, lease_namespace: str, collection: str) -> bool:
    """Carry claims of Leases named the old way (URL + UUID) over to the UUID-named Lease.

    The oldest live holder of such a Lease keeps its claim: the new Lease is created for it before
    the old ones are deleted, so its runtime never stops. Returns whether anything changed.
    """
    current = naming.claim_name(collection)
    legacy = [
        lease
        for lease in backend.claim_leases(lease_namespace)
        if (lease.get("metadata") or {}).get("name") != current and lease_collection(lease) == collection
    ]
    if not legacy:
        return False
    holders = [h for h in (_live_holder(backend, lease) for lease in legacy) if h is not None]
    if holders:
        # A conflict means the new Lease exists already: it is authoritative.
        with contextlib.suppress(ClaimConflict):
            backend.create_lease(lease_namespace, lease_body(lease_namespace, collection, min(holders)))
    for lease in legacy:
        meta = lease.get("metadata") or {}
        # A conflict means it changed since listed (an older operator still running): next pass.
        with contextlib.suppress(ClaimConflict):
            backend.delete_lease(lease_namespace, str(meta["name"]), _rv(lease), str(meta.get("uid", "")))
    return True


def acquire(backend: ClaimBackend, req: ClaimRequest) -> ClaimState:
    """Get (or confirm) the claim for `req.holder`.

    A missing Lease, or one whose holder no longer exists, goes to the oldest live claimant, which may
    or may not be the caller: the claim never goes to whoever happens to reconcile first.
    """
    me = req.holder
    for _ in range(_MAX_ATTEMPTS):
        # Read first: in the steady state the Lease exists, and a read is cheaper than a refused create.
        lease = backend.read_lease(req.lease_namespace, req.lease_name)
        stale_from: str | None = None
        if lease is None:
            if migrate_legacy(backend, req.lease_namespace, req.collection):
                continue
        else:
            identity, uid = lease_holder(lease)
            if uid == me.uid:
                return ClaimState(True, me.identity, me.uid)
            if _live_holder(backend, lease) is not None:
                return ClaimState(False, identity, uid)
            stale_from = identity or None

        candidates = {h.uid: h for h in backend.claimants(req.collection)}
        candidates.setdefault(me.uid, me)
        successor = rightful_holder(None, candidates.values()) or me
        try:
            if lease is None:
                backend.create_lease(
                    req.lease_namespace, lease_body(req.lease_namespace, req.collection, successor)
                )
            else:
                backend.replace_lease(
                    req.lease_namespace,
                    req.lease_name,
                    lease_body(
                        req.lease_namespace,
                        req.collection,
                        successor,
                        transitions=_transitions(lease),
                        resource_version=_rv(lease),
                    ),
                )
        except ClaimConflict:
            continue  # someone else wrote it first: re-evaluate from scratch
        if successor.uid == me.uid:
            return ClaimState(True, me.identity, me.uid, acquired=True, took_over_from=stale_from)
        return ClaimState(False, successor.identity, successor.uid, successor=successor)
    raise ClaimConflict(f"claim {req.lease_name} kept changing; will retry")


@dataclass(frozen=True)
class RestoreResult:
    """Outcome of `restore`: who holds the claim now, and whether this call changed it."""

    holder: Holder | None
    changed: bool
    claimants: tuple[Holder, ...] = ()


def restore(backend: ClaimBackend, lease_namespace: str, collection: str) -> RestoreResult:
    """Make the claim Lease of `collection` name its rightful holder (see the module docstring).

    Called when a Lease was deleted or edited, when a resource vanished, and on every Lease at start.
    A Lease no resource wants any more is deleted.
    """
    name = naming.claim_name(collection)
    for _ in range(_MAX_ATTEMPTS):
        lease = backend.read_lease(lease_namespace, name)
        if lease is None and migrate_legacy(backend, lease_namespace, collection):
            continue
        claimants = tuple(backend.claimants(collection))
        current = _live_holder(backend, lease) if lease is not None else None
        if current is not None and not any(c.uid == current.uid for c in claimants):
            current = None  # names a resource of another collection: not a holder of this one
        sound = lease is not None and current is not None and written_by_operator(lease, collection)
        # A sound Lease stands whatever the holder's age; anything else goes to the oldest.
        target = current if sound else rightful_holder(current, claimants)
        try:
            if lease is None:
                if target is None:
                    return RestoreResult(None, False, claimants)
                backend.create_lease(lease_namespace, lease_body(lease_namespace, collection, target))
                return RestoreResult(target, True, claimants)
            if sound:
                return RestoreResult(target, False, claimants)
            if target is None:
                meta = lease.get("metadata") or {}
                backend.delete_lease(lease_namespace, name, _rv(lease), str(meta.get("uid", "")))
                return RestoreResult(None, True, claimants)
            backend.replace_lease(
                lease_namespace,
                name,
                lease_body(
                    lease_namespace,
                    collection,
                    target,
                    transitions=_transitions(lease),
                    resource_version=_rv(lease),
                ),
            )
            return RestoreResult(target, True, claimants)
        except ClaimConflict:
            continue
    raise ClaimConflict(f"claim {name} kept changing; will retry")


@dataclass(frozen=True)
class ReleaseResult:
    """Outcome of `release`: `successor` got the claim, or the Lease was deleted (`released`)."""

    released: bool
    successor: Holder | None = None


def release(backend: ClaimBackend, lease_namespace: str, collection: str, me: Holder) -> ReleaseResult:
    """Give up the claim when `me` is deleted: the oldest other claimant gets it, or the Lease goes.

    Does nothing when `me` does not hold the claim (a waiter being deleted).
    """
    lease_name = naming.claim_name(collection)
    for _ in range(_MAX_ATTEMPTS):
        lease = backend.read_lease(lease_namespace, lease_name)
        if lease is None:
            return ReleaseResult(False)
        _, uid = lease_holder(lease)
        if uid != me.uid:
            return ReleaseResult(False)
        others = [h for h in backend.claimants(collection) if h.uid != me.uid and not h.deleting]
        try:
            if others:
                successor = min(others)
                body = lease_body(
                    lease_namespace,
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


def current_holder(backend: ClaimBackend, lease_namespace: str, collection: str) -> tuple[str, str] | None:
    """(identity, uid) written in the claim Lease of `collection`, legacy Leases migrated first."""
    lease = backend.read_lease(lease_namespace, naming.claim_name(collection))
    if lease is None and migrate_legacy(backend, lease_namespace, collection):
        lease = backend.read_lease(lease_namespace, naming.claim_name(collection))
    return lease_holder(lease) if lease is not None else None


def peek(backend: ClaimBackend, lease_namespace: str, collection: str) -> tuple[str, str] | None:
    """(identity, uid) of the live holder of a claim, or None if unclaimed or held by a deleted resource.

    For the admission webhook's early feedback only: the Lease protocol above is the guarantee.
    """
    lease = backend.read_lease(lease_namespace, naming.claim_name(collection))
    if lease is None:
        return None
    holder = _live_holder(backend, lease)
    return (holder.identity, holder.uid) if holder is not None else None
