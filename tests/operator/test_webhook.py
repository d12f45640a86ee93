"""Admission rules the schema cannot express, and which requests get judged at all."""

from __future__ import annotations

from typing import Any

from operator_helpers import COLLECTION, raw_spec
from sekoia_intel_operator.webhook import Checks, checks_for, client_allowed, validate


def _no_claim(_: str) -> tuple[str, str] | None:
    return None


def test_clean_spec_passes() -> None:
    verdict = validate(raw_spec(), uid=None, claim_lookup=_no_claim)
    assert verdict.errors == [] and verdict.warnings == []


def test_collection_claimed_by_another_is_rejected() -> None:
    asked: list[str] = []

    def claimed(collection: str) -> tuple[str, str]:
        asked.append(collection)
        return ("team-a/feed", "uid-a")

    spec = raw_spec(sekoia={"collectionId": f"ioc-collection--{COLLECTION.upper()}"})
    verdict = validate(spec, uid=None, claim_lookup=claimed)
    assert len(verdict.errors) == 1 and "already synced by team-a/feed" in verdict.errors[0]
    assert asked == [COLLECTION]  # looked up by the bare UUID, whatever the spelling
    # The holder itself may be updated; and without a claim check nothing is looked up.
    assert validate(raw_spec(), uid="uid-a", claim_lookup=claimed).errors == []
    assert validate(raw_spec(), uid=None, claim_lookup=claimed, check_claim=False).errors == []


def test_nothing_about_secrets_is_told() -> None:
    # Whoever may create a SekoiaIntelSync may not be allowed to read the namespace's Secrets.
    verdict = validate(raw_spec(), uid=None, claim_lookup=_no_claim)
    assert not any("Secret" in w for w in verdict.warnings + verdict.errors)


def test_requests_above_limits_are_rejected() -> None:
    spec = raw_spec(runtime={"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}})
    verdict = validate(spec, uid=None, claim_lookup=_no_claim)
    assert verdict.errors == ["spec.runtime.resources: the memory request (1Gi) is above its limit (512Mi)"]


def test_floating_image_and_plain_http_warn() -> None:
    spec = raw_spec(
        runtime={"image": "registry.local/sis"},
        sekoia={"url": "http://sekoia.local", "collectionId": raw_spec()["sekoia"]["collectionId"]},
    )
    verdict = validate(spec, uid=None, claim_lookup=_no_claim)
    assert verdict.errors == [] and len(verdict.warnings) == 2


def _obj(spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "feed", **meta}, "spec": spec}


def test_checks_for_create_is_everything() -> None:
    assert checks_for("CREATE", None, _obj(raw_spec())) == Checks(spec=True, claim=True)


def test_metadata_only_and_deleting_updates_are_not_judged() -> None:
    spec = raw_spec()
    finalizer_patch = _obj(spec, finalizers=["sync.sekoia-intel.dev/finalizer"], annotations={"a": "b"})
    assert checks_for("UPDATE", _obj(spec), finalizer_patch) == Checks(spec=False, claim=False)
    deleting = _obj(raw_spec(suspend=True), deletionTimestamp="2026-01-01T00:00:00Z")
    assert checks_for("UPDATE", _obj(spec), deleting) == Checks(spec=False, claim=False)
    assert checks_for("DELETE", _obj(spec), None) == Checks(spec=False, claim=False)


def test_spec_updates_check_the_claim_only_when_the_collection_changes() -> None:
    old = _obj(raw_spec())
    assert checks_for("UPDATE", old, _obj(raw_spec(suspend=True))) == Checks(spec=True, claim=False)
    respelled = _obj(raw_spec(sekoia={"collectionId": f"ioc-collection--{COLLECTION.upper()}"}))
    assert checks_for("UPDATE", old, respelled) == Checks(spec=True, claim=False)
    moved = _obj(raw_spec(sekoia={"collectionId": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4e"}))
    assert checks_for("UPDATE", old, moved) == Checks(spec=True, claim=True)


def test_client_allowed_by_common_name_or_dns_san() -> None:
    peer = {"subject": ((("commonName", "sekoia-intel-sync-webhook-client"),),), "subjectAltName": ()}
    assert client_allowed(peer, ["sekoia-intel-sync-webhook-client"])
    assert client_allowed(peer, [])
    assert not client_allowed(peer, ["someone-else"])
    san = {"subject": ((("commonName", "x"),),), "subjectAltName": (("DNS", "apiserver.local"),)}
    assert client_allowed(san, ["apiserver.local"])
    assert not client_allowed({}, [])  # no verified certificate at all
