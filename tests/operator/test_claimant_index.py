"""The in-memory claimant index that spares the operator a list of every resource per claim."""

from __future__ import annotations

from typing import Any

from sekoia_intel_operator.claimant_index import ClaimantIndex
from sekoia_intel_operator.kube import KubeClaimBackend


def _obj(name: str, uid: str, created: str, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": "intel", "name": name, "uid": uid, "creationTimestamp": created}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-07T00:00:09Z"
    return {"metadata": meta, "spec": {}}


def test_events_keep_the_claimants_of_each_collection() -> None:
    index = ClaimantIndex()
    assert not index.primed
    index.observe(None, _obj("a", "u-a", "2026-12-07T00:00:01Z"), "c1")
    index.observe("ADDED", _obj("b", "u-b", "2026-12-07T00:00:02Z"), "c1")
    index.observe("ADDED", _obj("c", "u-c", "2026-12-07T00:00:03Z"), "c2")
    assert index.primed
    assert sorted(h.name for h in index.claimants("c1")) == ["a", "b"]
    # A spec change moves the resource to another collection; deletion and an unusable spec remove it.
    index.observe("MODIFIED", _obj("b", "u-b", "2026-12-07T00:00:02Z"), "c2")
    assert [h.name for h in index.claimants("c1")] == ["a"]
    index.observe("MODIFIED", _obj("a", "u-a", "2026-12-07T00:00:01Z", deleting=True), "c1")
    assert [h.deleting for h in index.claimants("c1")] == [True]
    index.observe("DELETED", _obj("a", "u-a", "2026-12-07T00:00:01Z"), "c1")
    index.observe("MODIFIED", _obj("c", "u-c", "2026-12-07T00:00:03Z"), None)
    assert index.claimants("c1") == [] and [h.name for h in index.claimants("c2")] == ["b"]
    # The oldest is found by the Holder ordering, as with the API listing.
    index.observe("ADDED", _obj("old", "u-0", "2026-12-07T00:00:00Z"), "c2")
    assert min(index.claimants("c2")).name == "old"


class _NoListing:
    """A Kube whose listing must not be called once the index is primed."""

    def __init__(self, index: ClaimantIndex) -> None:
        self.claimant_index = index

    def list_syncs(self) -> list[dict[str, Any]]:
        raise AssertionError("listed every resource although the index is primed")


def test_the_claim_backend_asks_the_index_once_it_is_primed() -> None:
    index = ClaimantIndex()
    index.observe(None, _obj("a", "u-a", "2026-12-07T00:00:01Z"), "c1")
    backend = KubeClaimBackend(_NoListing(index))  # type: ignore[arg-type]
    assert [h.name for h in backend.claimants("c1")] == ["a"]
