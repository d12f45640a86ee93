"""Derived names must be stable and valid whatever the resource is called."""

from __future__ import annotations

import re
import uuid

from hypothesis import given
from hypothesis import strategies as st
from operator_helpers import COLLECTION
from sekoia_intel_operator import naming

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
K8S_NAMES = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,250}[a-z0-9])?\Z")


UID = "3c5e2a0e-8f53-4a8a-9d55-0f4cf1f1b001"


@given(K8S_NAMES, st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z"), st.uuids())
def test_child_name_is_a_dns_label(name: str, namespace: str, uid: uuid.UUID) -> None:
    child = naming.child_name(namespace, name, str(uid))
    assert len(child) <= 63
    assert DNS_LABEL.match(child), child
    assert child.startswith("sis-")


def test_child_name_stays_readable() -> None:
    child = naming.child_name("team-a", "prod-feed", UID)
    assert child.startswith("sis-prod-feed-") and len(child) == len("sis-prod-feed-") + 10


def test_review_collision_pair_gets_distinct_children() -> None:
    # With `sis-<name>` truncated + hash of the name, 'a'*50 + '-11ee3912' could equal the child of 'a'*60.
    a, b = "a" * 60, "a" * 50 + "-11ee3912"
    assert naming.child_name("ns", a, UID) != naming.child_name("ns", b, UID)
    assert naming.child_name("ns", a, UID) != naming.child_name("ns", b, "another-uid")


def test_child_name_depends_on_namespace_name_and_uid() -> None:
    base = naming.child_name("ns", "feed", UID)
    assert base == naming.child_name("ns", "feed", UID)
    assert naming.child_name("other", "feed", UID) != base
    assert naming.child_name("ns", "feed2", UID) != base
    assert naming.child_name("ns", "feed", "another-uid") != base  # a re-created resource


def test_legacy_child_name_is_what_earlier_versions_used() -> None:
    assert naming.legacy_child_name("prod-feed") == "sis-prod-feed"
    assert len(naming.legacy_child_name("x" * 100)) == 63


def test_connector_id_is_a_stable_uuid_of_the_uid() -> None:
    uid = "3c5e2a0e-8f53-4a8a-9d55-0f4cf1f1b001"
    first = naming.connector_id(uid)
    assert first == naming.connector_id(uid)
    assert uuid.UUID(first).version == 5
    assert first != naming.connector_id("3c5e2a0e-8f53-4a8a-9d55-0f4cf1f1b002")
    # Pinned: changing the derivation would make every runtime replay its whole stream.
    assert first == str(
        uuid.uuid5(
            uuid.UUID("0b0c4a1e-5e6f-5a3c-9d2e-7c1f7e0a4b21"), f"sync.sekoia-intel.dev/SekoiaIntelSync/{uid}"
        )
    )


def test_every_spelling_of_one_collection_shares_one_claim() -> None:
    variants = [
        COLLECTION,
        COLLECTION.upper(),
        f"ioc-collection--{COLLECTION}",
        f"IOC-COLLECTION--{COLLECTION}",
    ]
    names = {naming.claim_name(cid) for cid in variants}
    assert names == {f"sis-claim-{COLLECTION}"}
    name = names.pop()
    assert len(name) <= 63 and DNS_LABEL.match(name)


def test_different_collections_get_different_claims() -> None:
    assert naming.claim_name(COLLECTION) != naming.claim_name("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4e")


def test_collection_key_is_the_bare_uuid() -> None:
    assert naming.collection_key(f"ioc-collection--{COLLECTION.upper()}") == COLLECTION


def test_collection_of_claim_reads_current_and_legacy_annotations() -> None:
    assert naming.collection_of_claim(COLLECTION) == COLLECTION
    assert naming.collection_of_claim(f"https://api.sekoia.io/{COLLECTION}") == COLLECTION
    assert naming.collection_of_claim(f"https://api.sekoia.io/v2/inthreat/ioc-collections/{COLLECTION}") == (
        COLLECTION
    )


def test_legacy_claim_names_differed_by_url_spelling() -> None:
    # Why the claim moved to the UUID alone: these named two Leases for one collection.
    legacy = {
        naming.legacy_claim_name(url, COLLECTION)
        for url in ("https://api.sekoia.io", "https://api.sekoia.io/v2/inthreat/ioc-collections")
    }
    assert len(legacy) == 2 and naming.claim_name(COLLECTION) not in legacy
