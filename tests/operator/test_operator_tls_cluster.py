"""TLS settings and malformed credentials through the real operator and API server: what the user
sees in status, Events and the runtime Deployment."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
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

from testbed.controlplane.certs import make_self_signed
from testbed.demo.kubelet import plan_from_deployment, run_container
from testbed.emulators.opencti.emulator import OpenCTIEmulator
from testbed.emulators.sekoia.server import SekoiaEmulator
from testbed.manifests import LOCAL_POLICY_FLAGS
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
    dep = api["apps"].read_namespaced_deployment(base.child(api, namespace, "feed"), namespace)
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
    dep = api["apps"].read_namespaced_deployment(base.child(api, namespace, "feed"), namespace)
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


def _kubelet_reports_crash(api: dict[str, Any], namespace: str, pod: Any, message: str) -> None:
    """kwok never runs containers: write the kubelet's verdict on the crashed runtime into the Pod
    status, with the termination message the real runtime process wrote."""
    status = {
        "name": "runtime",
        "image": pod.spec.containers[0].image,
        "imageID": "",
        "ready": False,
        "started": False,
        "restartCount": 1,
        "state": {
            "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed container"}
        },
        "lastState": {
            "terminated": {
                "exitCode": 1,
                "reason": "Error",
                "message": message,
                "startedAt": "2024-01-01T00:00:00Z",
                "finishedAt": "2024-01-01T00:00:01Z",
            }
        },
    }
    body = {
        "status": {
            "containerStatuses": [status],
            "conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "ContainersReady", "status": "False"},
            ],
        }
    }
    api["core"].patch_namespaced_pod_status(pod.metadata.name, namespace, body)


def _running_pod_with(api: dict[str, Any], namespace: str, volume: str | None) -> Any:
    found: list[Any] = []

    def ready() -> bool:
        pods = [
            p
            for p in api["core"].list_namespaced_pod(namespace).items
            if p.metadata.deletion_timestamp is None
        ]
        names = [{v.name for v in p.spec.volumes or []} for p in pods]
        ok = len(pods) == 1 and pods[0].status.phase == "Running" and (volume is None or volume in names[0])
        found[:] = pods[:1] if ok else []
        return ok

    wait_until(ready, 60, f"one running runtime Pod (with volume {volume})")
    return found[0]


def test_an_unverifiable_opencti_certificate_reaches_the_status_and_the_ca_bundle_fixes_it(
    start_operator: Callable[..., Operator], api: dict[str, Any], namespace: str, cluster: Any, tmp_path: Path
) -> None:
    cert, key = make_self_signed(tmp_path / "pki")
    coll = collection()
    opencti = OpenCTIEmulator(
        token=base.TOKEN, streams=[base.STREAM], heartbeat_interval=1.0, tls_cert=cert, tls_key=key
    )
    sekoia = SekoiaEmulator(api_keys={base.API_KEY}, collections=[coll])
    opencti.start()
    sekoia.start()
    containers: list[Any] = []
    try:
        # The emulators listen on loopback, which the operator's default policy refuses.
        op = start_operator(*LOCAL_POLICY_FLAGS)
        create_secret(api, namespace)
        body = manifest("feed", coll)
        body["spec"]["opencti"]["url"] = opencti.base_url
        body["spec"]["sekoia"]["url"] = sekoia.base_url
        create(api, namespace, body)
        wait_condition(api, namespace, "feed", "TLSVerified", "True", op=op)

        # The real runtime, run from the Deployment the operator wrote, refuses the certificate.
        pod = _running_pod_with(api, namespace, None)
        first = run_container(
            cluster,
            plan_from_deployment(cluster, namespace, base.child(api, namespace, "feed")),
            tmp_path / "run-1",
        )
        containers.append(first)
        assert first.process.popen is not None
        assert first.process.popen.wait(timeout=90) == 1
        termination = (tmp_path / "run-1" / "runtime.termination-log").read_text().strip()
        assert "certificate verify failed: self-signed certificate" in termination
        _kubelet_reports_crash(api, namespace, pod, termination)
        obj = wait_condition(api, namespace, "feed", "Stalled", "True", "CrashLoopBackOff", op)
        assert "certificate verify failed: self-signed certificate" in condition(obj, "Ready")["message"]
        assert "certificate verify failed" in obj["status"]["runtime"]["lastTerminationMessage"]
        assert base.TOKEN not in json.dumps(obj["status"]) and base.API_KEY not in json.dumps(obj["status"])

        # The CA bundle by reference: mounted, announced, trusted.
        api["core"].create_namespaced_config_map(
            namespace, {"metadata": {"name": "corp-ca"}, "data": {"ca.pem": cert.read_text()}}
        )
        base.patch_spec(
            api,
            namespace,
            "feed",
            {"opencti": {"caBundleRef": {"configMapKeyRef": {"name": "corp-ca", "key": "ca.pem"}}}},
        )
        _running_pod_with(api, namespace, "opencti-ca")
        second = run_container(
            cluster,
            plan_from_deployment(cluster, namespace, base.child(api, namespace, "feed")),
            tmp_path / "run-2",
        )
        containers.append(second)
        second.wait_ready(timeout=90)
        obj = wait_condition(api, namespace, "feed", "Ready", "True", "Synchronizing", op)
        assert "ConfigMap 'corp-ca' key 'ca.pem'" in condition(obj, "TLSVerified")["message"]
        assert opencti.connectors.all(), "the runtime did not register with OpenCTI"
    finally:
        for container in containers:
            container.process.stop(timeout=10)
        opencti.stop()
        sekoia.stop()
