"""Admission rules the schema cannot express."""

from __future__ import annotations

from collections.abc import Mapping

from operator_helpers import raw_spec
from sekoia_intel_operator.webhook import validate


def _no_claim(_: str) -> tuple[str, str] | None:
    return None


def _secret_ok(_: str) -> tuple[bool, Mapping[str, str]] | None:
    return True, {"opencti-token": "eA==", "sekoia-api-key": "eA=="}


def test_clean_spec_passes() -> None:
    verdict = validate(raw_spec(), uid=None, claim_lookup=_no_claim, secret_lookup=_secret_ok)
    assert verdict.errors == [] and verdict.warnings == []


def test_collection_claimed_by_another_is_rejected() -> None:
    def claimed(_: str) -> tuple[str, str]:
        return ("team-a/feed", "uid-a")

    verdict = validate(raw_spec(), uid=None, claim_lookup=claimed, secret_lookup=_secret_ok)
    assert len(verdict.errors) == 1 and "already synced by team-a/feed" in verdict.errors[0]
    # The holder itself may be updated.
    assert validate(raw_spec(), uid="uid-a", claim_lookup=claimed, secret_lookup=_secret_ok).errors == []


def test_missing_secret_is_only_a_warning() -> None:
    verdict = validate(raw_spec(), uid=None, claim_lookup=_no_claim, secret_lookup=lambda _: (False, {}))
    assert verdict.errors == [] and "does not exist yet" in verdict.warnings[0]
    verdict = validate(raw_spec(), uid=None, claim_lookup=_no_claim, secret_lookup=lambda _: (True, {}))
    assert "has no key" in verdict.warnings[0]


def test_requests_above_limits_are_rejected() -> None:
    spec = raw_spec(runtime={"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "512Mi"}}})
    verdict = validate(spec, uid=None, claim_lookup=_no_claim, secret_lookup=_secret_ok)
    assert verdict.errors == ["spec.runtime.resources: the memory request (1Gi) is above its limit (512Mi)"]


def test_floating_image_and_plain_http_warn() -> None:
    spec = raw_spec(
        runtime={"image": "registry.local/sis"},
        sekoia={"url": "http://sekoia.local", "collectionId": raw_spec()["sekoia"]["collectionId"]},
    )
    verdict = validate(spec, uid=None, claim_lookup=_no_claim, secret_lookup=_secret_ok)
    assert verdict.errors == [] and len(verdict.warnings) == 2
