"""The claim protocol against an in-memory backend with the API server's semantics
(atomic create, resourceVersion preconditions)."""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sekoia_intel_operator import claims, naming
from sekoia_intel_operator.claims import ClaimConflict, ClaimRequest, Holder

LEASE_NS = "sis-system"
COLLECTION = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
LEASE = naming.claim_name(COLLECTION)


class MemoryBackend:
    """Leases and resources in memory; writes are serialised like in etcd."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self.resources: dict[tuple[str, str], Holder] = {}
        self.collections: dict[str, str] = {}
        self.deleting: set[str] = set()
        self.rv = 0
        self.lock = threading.Lock()

    def add(self, holder: Holder, collection: str = COLLECTION) -> Holder:
        self.resources[(holder.namespace, holder.name)] = holder
        self.collections[holder.uid] = collection
        return holder

    def create_lease(self, namespace: str, body: dict[str, Any]) -> None:
        with self.lock:
            name = body["metadata"]["name"]
            if name in self.leases:
                raise ClaimConflict("exists")
            self.rv += 1
            stored = copy.deepcopy(body)
            stored["metadata"].update(resourceVersion=str(self.rv), uid=f"lease-{self.rv}")
            self.leases[name] = stored

    def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            return copy.deepcopy(self.leases.get(name))

    def replace_lease(self, namespace: str, name: str, body: dict[str, Any]) -> None:
        with self.lock:
            current = self.leases.get(name)
            if (
                current is None
                or current["metadata"]["resourceVersion"] != body["metadata"]["resourceVersion"]
            ):
                raise ClaimConflict("changed")
            self.rv += 1
            stored = copy.deepcopy(body)
            stored["metadata"].update(resourceVersion=str(self.rv), uid=current["metadata"]["uid"])
            self.leases[name] = stored

    def delete_lease(self, namespace: str, name: str, resource_version: str, uid: str) -> None:
        with self.lock:
            current = self.leases.get(name)
            if current is None:
                return
            if current["metadata"]["resourceVersion"] != resource_version:
                raise ClaimConflict("changed")
            del self.leases[name]

    def _flagged(self, holder: Holder) -> Holder:
        return dataclasses.replace(holder, deleting=holder.uid in self.deleting)

    def resource(self, namespace: str, name: str) -> Holder | None:
        holder = self.resources.get((namespace, name))
        return self._flagged(holder) if holder else None

    def claimants(self, collection: str) -> list[Holder]:
        return [self._flagged(h) for h in self.resources.values() if self.collections[h.uid] == collection]

    def claim_leases(self, namespace: str) -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(lease) for lease in self.leases.values()]

    def holder(self) -> str:
        return self.leases[LEASE]["metadata"]["annotations"][claims.ANNOTATION_HOLDER_UID]


def _holder(i: int, created: str | None = None) -> Holder:
    return Holder(created or f"2024-01-01T00:00:{i:02d}Z", "ns", f"r{i}", f"uid-{i}")


def _req(h: Holder) -> ClaimRequest:
    return ClaimRequest(LEASE_NS, COLLECTION, h)


def test_first_claimant_wins_and_is_recognised_again() -> None:
    b = MemoryBackend()
    a, other = b.add(_holder(1)), b.add(_holder(2))
    first = claims.acquire(b, _req(a))
    assert first.held and first.acquired
    again = claims.acquire(b, _req(a))
    assert again.held and not again.acquired
    lost = claims.acquire(b, _req(other))
    assert not lost.held and lost.holder == "ns/r1" and lost.holder_uid == "uid-1"


def test_concurrent_claimants_exactly_one_wins() -> None:
    b = MemoryBackend()
    holders = [b.add(_holder(i)) for i in range(20)]
    barrier = threading.Barrier(20)

    def attempt(h: Holder) -> bool:
        barrier.wait()
        return claims.acquire(b, _req(h)).held

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(attempt, holders))
    assert results.count(True) == 1
    assert results[0]  # the oldest, whoever reconciled first


def test_release_hands_over_to_the_oldest_waiter() -> None:
    b = MemoryBackend()
    holder = b.add(_holder(5))
    claims.acquire(b, _req(holder))
    b.add(_holder(9))
    oldest = b.add(_holder(7))
    b.deleting.add(holder.uid)
    result = claims.release(b, LEASE_NS, COLLECTION, holder)
    assert result.released and result.successor == oldest
    assert b.holder() == oldest.uid
    assert claims.acquire(b, _req(oldest)).held


def test_release_without_waiters_deletes_the_lease() -> None:
    b = MemoryBackend()
    holder = b.add(_holder(1))
    claims.acquire(b, _req(holder))
    b.deleting.add(holder.uid)
    assert claims.release(b, LEASE_NS, COLLECTION, holder) == claims.ReleaseResult(True)
    assert LEASE not in b.leases


def test_release_by_a_waiter_changes_nothing() -> None:
    b = MemoryBackend()
    holder, waiter = b.add(_holder(1)), b.add(_holder(2))
    claims.acquire(b, _req(holder))
    assert claims.release(b, LEASE_NS, COLLECTION, waiter) == claims.ReleaseResult(False)
    assert b.holder() == holder.uid


def test_stale_holder_is_replaced_by_the_oldest_live_claimant() -> None:
    b = MemoryBackend()
    gone = b.add(_holder(1))
    claims.acquire(b, _req(gone))
    del b.resources[("ns", "r1")]  # vanished without releasing (e.g. finalizer removed by hand)
    young, old = b.add(_holder(8)), b.add(_holder(3))
    state = claims.acquire(b, _req(young))
    assert not state.held and state.successor == old  # the caller pokes the rightful one
    assert b.holder() == old.uid
    mine = claims.acquire(b, _req(old))
    assert mine.held


def test_stale_takeover_by_the_oldest_itself() -> None:
    b = MemoryBackend()
    gone = b.add(_holder(1))
    claims.acquire(b, _req(gone))
    del b.resources[("ns", "r1")]
    me = b.add(_holder(2))
    state = claims.acquire(b, _req(me))
    assert state.held and state.acquired and state.took_over_from == "ns/r1"


def test_recreated_resource_with_same_name_is_not_the_holder() -> None:
    b = MemoryBackend()
    first = b.add(_holder(1))
    claims.acquire(b, _req(first))
    reborn = b.add(Holder("2024-02-01T00:00:00Z", "ns", "r1", "uid-new"))  # same name, new uid
    state = claims.acquire(b, _req(reborn))
    assert state.held and state.took_over_from == "ns/r1"


def test_peek_reports_only_live_holders() -> None:
    b = MemoryBackend()
    assert claims.peek(b, LEASE_NS, COLLECTION) is None
    holder = b.add(_holder(1))
    claims.acquire(b, _req(holder))
    assert claims.peek(b, LEASE_NS, COLLECTION) == ("ns/r1", "uid-1")
    del b.resources[("ns", "r1")]
    assert claims.peek(b, LEASE_NS, COLLECTION) is None


def test_endless_conflicts_give_up_with_claim_conflict() -> None:
    class Flapping(MemoryBackend):
        def create_lease(self, namespace: str, body: dict[str, Any]) -> None:
            raise ClaimConflict("exists")

        def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
            return None

    with pytest.raises(ClaimConflict):
        claims.acquire(Flapping(), _req(_holder(1)))


def test_resync_is_frequent_for_waiters_and_spaced_for_holders() -> None:
    from sekoia_intel_operator import reconcile

    assert reconcile.resync_due("ns", "never-seen", True, 300)
    assert reconcile.resync_due("ns", "waiter", False, 300)
    reconcile._last_full["ns/holder"] = time.monotonic()
    assert not reconcile.resync_due("ns", "holder", True, 300)
    assert reconcile.resync_due("ns", "holder", True, 0)
    reconcile.forget("ns", "holder")
    assert reconcile.resync_due("ns", "holder", True, 300)


# --- ordering, restoration, legacy Leases ----------------------------------------------------------


def test_order_is_creation_time_then_uid_not_name() -> None:
    same = "2024-01-01T00:00:00Z"
    assert min(Holder(same, "ns", "zzz", "uid-a"), Holder(same, "aaa", "aaa", "uid-b")).uid == "uid-a"
    assert (
        min(Holder("2024-01-02T00:00:00Z", "a", "a", "uid-0"), Holder(same, "z", "z", "uid-9")).uid == "uid-9"
    )


def test_a_missing_lease_goes_to_the_oldest_not_to_the_caller() -> None:
    b = MemoryBackend()
    old, young = b.add(_holder(1)), b.add(_holder(2))
    state = claims.acquire(b, _req(young))
    assert not state.held and state.successor == old and b.holder() == old.uid


def test_deleted_lease_is_restored_for_the_oldest() -> None:
    b = MemoryBackend()
    young = b.add(_holder(4))
    claims.acquire(b, _req(young))
    old = b.add(_holder(2))  # older than the holder (e.g. the holder won a creation race)
    del b.leases[LEASE]
    result = claims.restore(b, LEASE_NS, COLLECTION)
    assert result.changed and result.holder == old and b.holder() == old.uid
    assert {h.uid for h in result.claimants} == {old.uid, young.uid}
    assert not claims.restore(b, LEASE_NS, COLLECTION).changed  # idempotent


def test_edited_lease_is_restored_for_the_oldest() -> None:
    b = MemoryBackend()
    old, young = b.add(_holder(1)), b.add(_holder(2))
    stranger = b.add(_holder(3), collection="ffffffff-0000-4000-8000-000000000000")
    claims.acquire(b, _req(old))
    for edit in (
        {"holderIdentity": young.identity, "uid": young.uid},  # a live claimant, but not the oldest
        {"holderIdentity": stranger.identity, "uid": stranger.uid},  # a resource of another collection
        {"holderIdentity": "ns/nobody", "uid": "made-up"},
        {"holderIdentity": old.identity, "uid": young.uid},  # inconsistent
    ):
        lease = b.leases[LEASE]
        lease["spec"]["holderIdentity"] = edit["holderIdentity"]
        lease["metadata"]["annotations"][claims.ANNOTATION_HOLDER_UID] = edit["uid"]
        result = claims.restore(b, LEASE_NS, COLLECTION)
        assert result.changed and b.holder() == old.uid, edit
        assert b.leases[LEASE]["spec"]["holderIdentity"] == old.identity
    # Edits that leave the holder alone change nothing.
    b.leases[LEASE]["spec"]["renewTime"] = "2030-01-01T00:00:00.000000Z"
    assert not claims.restore(b, LEASE_NS, COLLECTION).changed and b.holder() == old.uid


def test_a_sound_lease_stands_even_for_a_younger_holder() -> None:
    b = MemoryBackend()
    young = b.add(_holder(5))
    claims.acquire(b, _req(young))
    b.add(_holder(1))  # older, but the operator gave the claim to `young` (e.g. a creation race)
    assert not claims.restore(b, LEASE_NS, COLLECTION).changed and b.holder() == young.uid


def test_a_holder_being_deleted_keeps_its_claim_until_it_releases() -> None:
    b = MemoryBackend()
    holder, waiter = b.add(_holder(1)), b.add(_holder(2))
    claims.acquire(b, _req(holder))
    b.deleting.add(holder.uid)
    assert not claims.restore(b, LEASE_NS, COLLECTION).changed
    assert b.holder() == holder.uid
    assert claims.release(b, LEASE_NS, COLLECTION, holder).successor == waiter


def test_a_lease_nobody_wants_is_removed() -> None:
    b = MemoryBackend()
    holder = b.add(_holder(1))
    claims.acquire(b, _req(holder))
    del b.resources[("ns", "r1")]  # finalizer removed by hand, no other claimant
    assert claims.restore(b, LEASE_NS, COLLECTION) == claims.RestoreResult(None, True, ())
    assert LEASE not in b.leases


def _legacy_lease(b: MemoryBackend, url: str, holder: Holder) -> str:
    """A Lease exactly as the URL-keyed versions wrote it."""
    name = naming.legacy_claim_name(url, COLLECTION)
    b.rv += 1
    b.leases[name] = {
        "metadata": {
            "name": name,
            "resourceVersion": str(b.rv),
            "uid": f"lease-{b.rv}",
            "labels": dict(claims.LEASE_LABELS),
            "annotations": {
                claims.ANNOTATION_HOLDER: holder.identity,
                claims.ANNOTATION_HOLDER_UID: holder.uid,
                claims.ANNOTATION_COLLECTION: f"{naming.canonical_api_root(url)}/{COLLECTION}",
            },
        },
        "spec": {"holderIdentity": holder.identity},
    }
    return name


def test_legacy_holder_keeps_its_claim_on_upgrade() -> None:
    b = MemoryBackend()
    # An older waiter that never got the claim (it waited on the same old Lease) must not take it.
    waiter, holder = b.add(_holder(1)), b.add(_holder(2))
    legacy = _legacy_lease(b, "https://api.sekoia.io", holder)
    assert not claims.acquire(b, _req(waiter)).held
    assert b.holder() == holder.uid and legacy not in b.leases
    assert claims.acquire(b, _req(holder)).held
    # The Lease watch sees the new Lease: written by the operator for a live claimant, it stands.
    assert not claims.restore(b, LEASE_NS, COLLECTION).changed and b.holder() == holder.uid


def test_two_legacy_spellings_merge_into_one_claim_for_the_oldest_holder() -> None:
    b = MemoryBackend()
    older, younger = b.add(_holder(1)), b.add(_holder(2))
    first = _legacy_lease(b, "https://api.sekoia.io", older)
    second = _legacy_lease(b, "https://api.sekoia.io/v2/inthreat/ioc-collections", younger)
    assert first != second
    assert claims.migrate_legacy(b, LEASE_NS, COLLECTION)
    assert set(b.leases) == {LEASE} and b.holder() == older.uid
    assert not claims.acquire(b, _req(younger)).held


def test_legacy_lease_of_a_vanished_holder_is_dropped() -> None:
    b = MemoryBackend()
    gone, me = _holder(1), b.add(_holder(2))
    legacy = _legacy_lease(b, "https://api.sekoia.io", gone)
    assert claims.acquire(b, _req(me)).held
    assert legacy not in b.leases
