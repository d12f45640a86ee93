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


@given(K8S_NAMES)
def test_child_name_is_a_dns_label(name: str) -> None:
    child = naming.child_name(name)
    assert len(child) <= 63
    assert DNS_LABEL.match(child), child


def test_child_name_keeps_short_names_readable() -> None:
    assert naming.child_name("prod-feed") == "sis-prod-feed"


def test_long_names_sharing_a_prefix_get_distinct_children() -> None:
    a, b = "x" * 100 + "a", "x" * 100 + "b"
    assert naming.child_name(a) != naming.child_name(b)


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


def test_spelling_variants_of_one_collection_share_one_claim() -> None:
    variants = [
        ("https://api.sekoia.io", COLLECTION),
        ("https://API.Sekoia.io/", COLLECTION.upper()),
        ("https://api.sekoia.io:443", f"ioc-collection--{COLLECTION}"),
        ("HTTPS://api.sekoia.io//", f"IOC-COLLECTION--{COLLECTION}"),
    ]
    names = {naming.claim_name(url, cid) for url, cid in variants}
    assert len(names) == 1
    name = names.pop()
    assert name.startswith("sis-claim-") and len(name) <= 63 and DNS_LABEL.match(name)


def test_different_tenants_or_collections_get_different_claims() -> None:
    base = naming.claim_name("https://api.sekoia.io", COLLECTION)
    assert naming.claim_name("https://api.eu2.sekoia.io", COLLECTION) != base
    assert naming.claim_name("https://api.sekoia.io:8443", COLLECTION) != base
    assert naming.claim_name("https://api.sekoia.io", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4e") != base


def test_collection_key_is_human_readable() -> None:
    key = naming.collection_key("https://API.sekoia.io/", f"ioc-collection--{COLLECTION}")
    assert key == f"https://api.sekoia.io/{COLLECTION}"
