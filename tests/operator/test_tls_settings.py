"""TLS from the spec: verified by default, CA bundles mounted by reference, a waiver reported."""

from __future__ import annotations

from typing import Any

import pytest
from operator_helpers import raw_spec
from sekoia_intel_operator import conditions as c
from sekoia_intel_operator import tls, workload
from sekoia_intel_operator.events import transition_events
from sekoia_intel_operator.runtime_health import RuntimeHealth
from sekoia_intel_operator.secrets import CredentialsCheck
from sekoia_intel_operator.spec import SpecError, parse_spec

REF = workload.SyncRef(namespace="intel", name="feed", uid="11111111-2222-4333-8444-555555555555")
STREAM = raw_spec()["opencti"]["streamId"]
COLLECTION = raw_spec()["sekoia"]["collectionId"]


def _spec(opencti: dict[str, Any] | None = None, sekoia: dict[str, Any] | None = None) -> Any:
    return parse_spec(
        raw_spec(
            opencti={"url": "https://opencti.example.org", "streamId": STREAM, **(opencti or {})},
            sekoia={"collectionId": COLLECTION, **(sekoia or {})},
        )
    )


def _pod(spec: Any) -> dict[str, Any]:
    dep = workload.desired_deployment(REF, spec, credentials_fingerprint=None, replicas=1)
    return dict(dep["spec"]["template"]["spec"])


def _env(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["containers"][0]["env"]}


def test_certificates_are_verified_by_default() -> None:
    pod = _pod(_spec())
    env = _env(pod)
    assert env["OPENCTI_SSL_VERIFY"] == "true" and env["SEKOIA_INTEL_SSL_VERIFY"] == "true"
    assert "OPENCTI_CA_BUNDLE" not in env and "SEKOIA_INTEL_CA_BUNDLE" not in env
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    assert tls.verdict(_spec()).verified


def test_a_ca_bundle_is_mounted_from_its_reference_and_announced_to_the_runtime() -> None:
    spec = _spec(
        opencti={"caBundleRef": {"configMapKeyRef": {"name": "corp-ca", "key": "ca.pem"}}},
        sekoia={"caBundleRef": {"secretKeyRef": {"name": "proxy-ca", "key": "bundle"}}},
    )
    pod = _pod(spec)
    env = _env(pod)
    assert env["OPENCTI_CA_BUNDLE"] == "/etc/sekoia-intel-sync/ca/opencti/ca.crt"
    assert env["SEKOIA_INTEL_CA_BUNDLE"] == "/etc/sekoia-intel-sync/ca/sekoia/ca.crt"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["opencti-ca"]["configMap"] == {
        "name": "corp-ca",
        "items": [{"key": "ca.pem", "path": "ca.crt"}],
        "defaultMode": 0o444,
    }
    assert volumes["sekoia-ca"]["secret"]["secretName"] == "proxy-ca"
    assert volumes["sekoia-ca"]["secret"]["items"] == [{"key": "bundle", "path": "ca.crt"}]
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["opencti-ca"] == {
        "name": "opencti-ca",
        "mountPath": "/etc/sekoia-intel-sync/ca/opencti",
        "readOnly": True,
    }
    assert mounts["sekoia-ca"]["mountPath"] == "/etc/sekoia-intel-sync/ca/sekoia"
    verdict = tls.verdict(spec)
    assert verdict.verified and len(verdict.ca_bundles) == 2


@pytest.mark.parametrize(
    ("opencti", "fragment"),
    [
        ({"caBundleRef": {}}, "exactly one of configMapKeyRef and secretKeyRef"),
        (
            {
                "caBundleRef": {
                    "configMapKeyRef": {"name": "a", "key": "k"},
                    "secretKeyRef": {"name": "b", "key": "k"},
                }
            },
            "exactly one of configMapKeyRef and secretKeyRef",
        ),
        (
            {"insecureSkipTLSVerify": True, "caBundleRef": {"configMapKeyRef": {"name": "a", "key": "k"}}},
            "contradict each other",
        ),
        (
            {"caBundleRef": {"configMapKeyRef": {"name": "a", "key": "../etc/passwd"}}},
            "spec.opencti.caBundleRef",
        ),
    ],
)
def test_an_unusable_tls_spec_is_named(opencti: dict[str, Any], fragment: str) -> None:
    with pytest.raises(SpecError, match=r"spec\.opencti") as caught:
        _spec(opencti=opencti)
    assert fragment in str(caught.value)


def _conditions(spec: Any) -> dict[str, dict[str, Any]]:
    obs = c.Observation(
        3,
        claim=c.ClaimView(True, "intel/feed", "https://api.sekoia.io/x"),
        credentials=CredentialsCheck(True, "CredentialsFound", "ok", "fp"),
        runtime=RuntimeHealth(True, "RuntimeReady", "1/1 ready", replicas=1, ready_replicas=1),
        tls=tls.verdict(spec),
    )
    return {x["type"]: x for x in c.desired_conditions(obs)}


def test_a_waiver_is_reported_by_a_condition_and_one_warning_event() -> None:
    verified = c.merge_conditions(None, list(_conditions(_spec()).values()), "T0")
    assert c.find(verified, c.TLS_VERIFIED)["status"] == "True"  # type: ignore[index]

    waived_spec = _spec(opencti={"insecureSkipTLSVerify": True})
    env = _env(_pod(waived_spec))
    assert env["OPENCTI_SSL_VERIFY"] == "false" and env["SEKOIA_INTEL_SSL_VERIFY"] == "true"
    waived = _conditions(waived_spec)
    condition = waived[c.TLS_VERIFIED]
    assert condition["status"] == "False" and condition["reason"] == "InsecureSkipTLSVerify"
    assert "spec.opencti.insecureSkipTLSVerify" in condition["message"]
    # Running unverified is the user's explicit choice, not a failure: Ready stays True.
    assert waived[c.READY]["status"] == "True" and waived[c.STALLED]["status"] == "False"

    current = c.merge_conditions(verified, list(waived.values()), "T1")
    events = transition_events(verified, current)
    assert [(e.type, e.reason) for e in events] == [("Warning", "InsecureSkipTLSVerify")]
    again = c.merge_conditions(current, list(_conditions(waived_spec).values()), "T2")
    assert transition_events(current, again) == []


@pytest.mark.parametrize("side", ["opencti", "sekoia"])
def test_a_url_with_a_password_is_an_invalid_spec_that_does_not_quote_it(side: str) -> None:
    url = "https://svc:Pa55-w0rd-do-not-leak@host.example.org"
    with pytest.raises(SpecError) as caught:
        _spec(**{side: {"url": url}})
    message = str(caught.value)
    assert message.startswith(f"spec.{side}.url: ") and "user name or password" in message
    assert "Pa55-w0rd-do-not-leak" not in message and "svc:" not in message
