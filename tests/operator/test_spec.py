"""The typed spec applies the same defaults as the CRD and explains what is wrong."""

from __future__ import annotations

import pytest
from operator_helpers import COLLECTION, raw_spec
from sekoia_intel_operator.spec import SpecError, parse_spec


def test_minimal_spec_gets_the_crd_defaults() -> None:
    spec = parse_spec(raw_spec())
    assert spec.sekoia.url == "https://api.sekoia.io"
    assert spec.opencti.listen_delete is True and spec.opencti.no_dependencies is True
    assert spec.credentials_secret_ref.keys == ("opencti-token", "sekoia-api-key")
    assert spec.suspend is False
    assert spec.push.batch_size == 100 and spec.push.requests_per_second == 5
    assert spec.connector.log_level == "info" and spec.connector.name is None


def test_prefixed_collection_id_gives_the_bare_uuid() -> None:
    spec = parse_spec(raw_spec(sekoia={"collectionId": f"ioc-collection--{COLLECTION.upper()}"}))
    assert spec.sekoia.collection_uuid == COLLECTION


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"push": {"batchSize": 101}}, "spec.push.batchSize"),
        ({"sekoia": {"collectionId": "not-a-uuid"}}, "spec.sekoia.collectionId"),
        ({"opencti": {"url": "https://x"}}, "spec.opencti.streamId"),
    ],
)
def test_invalid_specs_name_the_field(override: dict, fragment: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(raw_spec(**override))
    assert fragment in str(err.value)


def test_unknown_fields_are_ignored() -> None:
    assert parse_spec(raw_spec(somethingNew=True)).suspend is False
