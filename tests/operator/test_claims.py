"""The claim protocol against an in-memory backend with the API server's semantics
(atomic create, resourceVersion preconditions)."""

from __future__ import annotations

import copy
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sekoia_intel_operator import claims
from sekoia_intel_operator.claims import ClaimConflict, ClaimRequest, Holder

LEASE_NS, LEASE = "sis-system", "sis-claim-abc"


class MemoryBackend:
    """Leases and resources in memory; writes are serialised like in etcd."""

    def __init__(self) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self.resources: dict[tuple[str, str], Holder] = {}
        self.deleting: set[str] = set()
        self.rv = 0
        self.lock = threading.Lock()

    def add(self, holder: Holder) -> Holder:
        self.resources[(holder.namespace, holder.name)] = holder
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

    def resource_uid(self, namespace: str, name: str) -> str | None:
        holder = self.resources.get((namespace, name))
        return holder.uid if holder else None

    def claimants(self, lease_name: str) -> list[Holder]:
        return [h for h in self.resources.values() if h.uid not in self.deleting]

    def holder(self) -> str:
        return self.leases[LEASE]["metadata"]["annotations"][claims.ANNOTATION_HOLDER_UID]


def _holder(i: int, created: str | None = None) -> Holder:
    return Holder(created or f"2024-01-01T00:00:{i:02d}Z", "ns", f"r{i}", f"uid-{i}")


def _req(h: Holder) -> ClaimRequest:
    return ClaimRequest(LEASE_NS, LEASE, "https://api.sekoia.io/x", h)


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


def test_release_hands_over_to_the_oldest_waiter() -> None:
    b = MemoryBackend()
    holder = b.add(_holder(5))
    claims.acquire(b, _req(holder))
    b.add(_holder(9))
    oldest = b.add(_holder(7))
    b.deleting.add(holder.uid)
    result = claims.release(b, LEASE_NS, LEASE, "x", holder)
    assert result.released and result.successor == oldest
    assert b.holder() == oldest.uid
    assert claims.acquire(b, _req(oldest)).held


def test_release_without_waiters_deletes_the_lease() -> None:
    b = MemoryBackend()
    holder = b.add(_holder(1))
    claims.acquire(b, _req(holder))
    b.deleting.add(holder.uid)
    assert claims.release(b, LEASE_NS, LEASE, "x", holder) == claims.ReleaseResult(True)
    assert LEASE not in b.leases


def test_release_by_a_waiter_changes_nothing() -> None:
    b = MemoryBackend()
    holder, waiter = b.add(_holder(1)), b.add(_holder(2))
    claims.acquire(b, _req(holder))
    assert claims.release(b, LEASE_NS, LEASE, "x", waiter) == claims.ReleaseResult(False)
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
    assert claims.peek(b, LEASE_NS, LEASE) is None
    holder = b.add(_holder(1))
    claims.acquire(b, _req(holder))
    assert claims.peek(b, LEASE_NS, LEASE) == ("ns/r1", "uid-1")
    del b.resources[("ns", "r1")]
    assert claims.peek(b, LEASE_NS, LEASE) is None


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
