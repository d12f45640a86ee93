"""TLS settings and malformed credentials through the real operator and API server: what the user
sees in status, Events and the runtime Deployment."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
import test_operator_cluster as base
from kubernetes.client.exceptions import ApiException
from test_operator_cluster import (
    Operator,
    collection,
    condition,
    create,
    create_secret,
    manifest,
    wait_condition,
)

from testbed.processes import wait_until

pytestmark = pytest.mark.cluster
# The operator tests' fixtures, shared rather than copied.
crd, api, start_operator = base.crd, base.api, base.start_operator


def _events(api: dict[str, Any], namespace: str) -> list[Any]:
    return list(api["core"].list_namespaced_event(namespace, field_selector="involvedObject.name=feed").items)


def test_a_waiver_runs_unverified_but_says_so_and_a_ca_bundle_is_mounted(
    start_operator: Callable[..., Operator], api: dict[str, Any], namespace: str
) -> None:
    op = start_operator()
    create_secret(api, namespace)
    body = manifest("feed", collection())
    body["spec"]["opencti"]["insecureSkipTLSVerify"] = True
    body["spec"]["sekoia"]["caBundleRef"] = {"configMapKeyRef": {"name": "corp-ca", "key": "ca.pem"}}
    create(api, namespace, body)

    obj = wait_condition(api, namespace, "feed", "TLSVerified", "False", "InsecureSkipTLSVerify", op)
    assert "spec.opencti.insecureSkipTLSVerify" in condition(obj, "TLSVerified")["message"]
    wait_until(
        lambda: any(
            e.type == "Warning" and e.reason == "InsecureSkipTLSVerify" for e in _events(api, namespace)
        ),
        60,
        "the Warning Event about the waiver",
    )
    dep = api["apps"].read_namespaced_deployment("sis-feed", namespace)
    pod = dep.spec.template.spec
    env = {e.name: e.value for e in pod.containers[0].env}
    assert env["OPENCTI_SSL_VERIFY"] == "false" and env["SEKOIA_INTEL_SSL_VERIFY"] == "true"
    assert env["SEKOIA_INTEL_CA_BUNDLE"] == "/etc/sekoia-intel-sync/ca/sekoia/ca.crt"
    volume = next(v for v in pod.volumes if v.name == "sekoia-ca")
    assert volume.config_map.name == "corp-ca" and volume.config_map.items[0].key == "ca.pem"

    # Removing the waiver makes the condition True again.
    api["custom"].patch_namespaced_custom_object(
        "sync.sekoia-intel.dev",
        "v1alpha1",
        namespace,
        "sekoiaintelsyncs",
        "feed",
        {"spec": {"opencti": {"insecureSkipTLSVerify": False}}},
    )
    wait_condition(api, namespace, "feed", "TLSVerified", "True", "CertificatesVerified", op)


def test_the_api_server_refuses_contradictory_tls_settings(
    crd: None,
    api: dict[str, Any],
    namespace: str,
) -> None:
    body = manifest("feed", collection())
    body["spec"]["opencti"]["insecureSkipTLSVerify"] = True
    body["spec"]["opencti"]["caBundleRef"] = {"secretKeyRef": {"name": "ca", "key": "ca.crt"}}
    with pytest.raises(ApiException) as caught:
        create(api, namespace, body)
    assert caught.value.status == 422
    assert "opencti.caBundleRef and opencti.insecureSkipTLSVerify contradict each other" in str(
        caught.value.body
    )
    body = manifest("feed", collection())
    body["spec"]["sekoia"]["caBundleRef"] = {}
    with pytest.raises(ApiException) as caught:
        create(api, namespace, body)
    assert "sekoia.caBundleRef needs exactly one of configMapKeyRef and secretKeyRef" in str(
        caught.value.body
    )


MALFORMED_KEY = "sekoia-KEY-first-half\nsecond-half-do-not-leak"


def test_a_key_with_a_newline_is_refused_naming_the_key_and_leaks_nowhere(
    start_operator: Callable[..., Operator], api: dict[str, Any], namespace: str
) -> None:
    op = start_operator()
    create_secret(api, namespace, **{"opencti-token": "octi-token-fine-123", "sekoia-api-key": MALFORMED_KEY})
    create(api, namespace, manifest("feed", collection()))

    obj = wait_condition(api, namespace, "feed", "CredentialsValid", "False", "SecretKeyMalformed", op)
    message = condition(obj, "CredentialsValid")["message"]
    assert message == (
        "Secret 'creds' key 'sekoia-api-key' contains control characters (such as a line break); "
        "store the value without it"
    )
    assert condition(obj, "Stalled")["status"] == "True"
    wait_until(
        lambda: any(e.reason == "SecretKeyMalformed" for e in _events(api, namespace)),
        60,
        "the Warning Event naming the key",
    )
    dep = api["apps"].read_namespaced_deployment("sis-feed", namespace)
    assert dep.spec.replicas == 0  # nothing starts with a credential that cannot work

    forms = [
        MALFORMED_KEY,
        "sekoia-KEY-first-half",
        "second-half-do-not-leak",
        json.dumps(MALFORMED_KEY)[1:-1],
        quote(MALFORMED_KEY, safe=""),
        base64.b64encode(MALFORMED_KEY.encode()).decode(),
    ]
    texts = {
        "status": json.dumps(obj.get("status")),
        "events": json.dumps(
            [(e.reason, e.message) for e in api["core"].list_namespaced_event(namespace).items]
        ),
        "operator log": op.log_text(),
    }
    for where, text in texts.items():
        for form in forms:
            assert form not in text, f"{form!r} leaked into the {where}"
