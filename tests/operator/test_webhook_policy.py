"""The admission webhook enforces the operator's allowlists too (early feedback at apply time)."""

from __future__ import annotations

from operator_helpers import raw_spec
from sekoia_intel_operator.policy import Allowlists
from sekoia_intel_operator.webhook import validate

IMAGE = "ghcr.io/sekoia-intel-sync/sekoia-intel-sync:0.1.0"
STRICT = Allowlists()


def _validate(spec: dict[str, object], lists: Allowlists | None = STRICT) -> list[str]:
    return validate(
        spec,
        uid=None,
        claim_lookup=lambda _: None,
        allowlists=lists,
        default_image=IMAGE,
    ).errors


def test_allowlist_violations_are_admission_errors_naming_the_field() -> None:
    assert _validate(raw_spec()) == []
    assert _validate(raw_spec(runtime={"image": IMAGE})) == []
    errors = _validate(
        raw_spec(
            runtime={"image": "evil.example/miner:1", "priorityClassName": "system-node-critical"},
            opencti={"url": "http://opencti.example.org", "streamId": "live"},
        )
    )
    assert len(errors) == 3
    assert errors[0].startswith("spec.runtime.image 'evil.example/miner:1' is not in the operator's")
    assert errors[1].startswith("spec.opencti.url uses http://")
    assert errors[2].startswith("spec.runtime.priorityClassName 'system-node-critical'")


def test_without_allowlists_the_webhook_checks_what_it_did_before() -> None:
    assert _validate(raw_spec(runtime={"image": "evil.example/miner:1"}), None) == []


def test_pull_secrets_and_resources_beyond_the_policy_are_admission_errors() -> None:
    lists = Allowlists(image_pull_secret_names=("team-*",), max_resources=(("memory", "1Gi"),))
    runtime = {
        "imagePullSecrets": [{"name": "team-robot"}, {"name": "kube-system-robot"}],
        "resources": {"limits": {"memory": "4Gi"}},
    }
    assert _validate(raw_spec(runtime=runtime), lists) == [
        "spec.runtime.imagePullSecrets 'kube-system-robot' is not among the pull Secrets the operator allows",
        "spec.runtime.resources.limits.memory 4Gi exceeds the operator's maximum 1Gi",
    ]
