"""The webhook certificate the operator makes itself (the chart's default), against a real API server.

The API server calls the webhook over HTTPS and trusts only the caBundle of the webhook
configuration: with failurePolicy Fail, a request is rejected *by the webhook's own message* only if
the API server accepted the certificate the operator serves under the CA the operator injected.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import socket
import ssl
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from kubernetes import client
from sekoia_intel_operator import webhook_cert
from test_operator_cluster import GROUP, PLURAL, VERSION, WAIT, Operator, collection, manifest

from testbed.controlplane.certs import WEBHOOK_CLIENT_NAME
from testbed.manifests import WEBHOOK_ONLY_REFUSED_RUNTIME, WEBHOOK_REFUSAL
from testbed.processes import free_port, wait_until

pytestmark = pytest.mark.cluster

SECRET, SERVICE = "sis-webhook-tls", "sis-webhook"


@pytest.fixture
def webhook_config(cluster: Any, namespace: str) -> Iterator[str]:
    """A webhook configuration as the chart renders it (no caBundle), pointing at a loopback URL
    (nothing routes Service IPs here), failing closed, for this test's namespace only."""
    name = f"{namespace}-sis"
    yield name
    cluster.kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found")


def create_config(cluster: Any, name: str, namespace: str, port: int) -> None:
    body = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "validate.sync.sekoia-intel.dev",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 10,
                "clientConfig": {"url": f"https://127.0.0.1:{port}/validate"},
                "namespaceSelector": {
                    "matchExpressions": [
                        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": [namespace]}
                    ]
                },
                "rules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": [VERSION],
                        "resources": [PLURAL],
                        "operations": ["CREATE", "UPDATE"],
                        "scope": "Namespaced",
                    }
                ],
            }
        ],
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(body))


def ca_bundle(cluster: Any, name: str) -> bytes:
    vwc = json.loads(cluster.kubectl("get", "validatingwebhookconfiguration", name, "-o", "json").stdout)
    return base64.b64decode(vwc["webhooks"][0]["clientConfig"].get("caBundle", ""))


def secret(cluster: Any, namespace: str) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl("-n", namespace, "get", "secret", SECRET, "-o", "json").stdout))


def served_cert(port: int, ca: bytes, pki: Any) -> bytes:
    """The certificate the webhook serves on `port`, verified against `ca` for host 127.0.0.1."""
    context = ssl.create_default_context(cadata=ca.decode())
    context.load_cert_chain(str(pki.webhook_client_cert), str(pki.webhook_client_key))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).public_bytes(webhook_cert.serialization.Encoding.PEM)


def start(cluster: Any, namespace: str, log_dir: Path, port: int, config: str) -> Operator:
    log_dir.mkdir()
    pki = cluster.pki
    return Operator(
        cluster,
        namespace,
        log_dir,
        [
            "--webhook",
            "--webhook-addr",
            "127.0.0.1",
            "--webhook-host",
            "127.0.0.1",
            "--webhook-port",
            str(port),
            "--webhook-cert-secret",
            SECRET,
            "--webhook-cert-namespace",
            namespace,
            "--webhook-service",
            SERVICE,
            "--webhook-inject-ca",
            config,
            "--webhook-client-cafile",
            str(pki.ca_cert),
            "--webhook-client-name",
            WEBHOOK_CLIENT_NAME,
        ],
    ).start()


def rejected_by_webhook(cluster: Any, namespace: str) -> str:
    """Apply a resource only the webhook refuses; its stderr."""
    body = manifest(
        f"over-{collection()[:8]}",
        collection(),
        runtime=WEBHOOK_ONLY_REFUSED_RUNTIME,
    )
    done = cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(body), check=False)
    assert done.returncode != 0
    return str(done.stderr)


def test_the_api_server_calls_the_webhook_with_the_injected_ca_and_replicas_share_one_certificate(
    cluster: Any, crd: None, namespace: str, tmp_path: Path, webhook_config: str
) -> None:
    core = client.CoreV1Api(cluster.api_client())
    svc = core.create_namespaced_service(
        namespace,
        {"metadata": {"name": SERVICE}, "spec": {"ports": [{"port": 443, "targetPort": 9443}]}},
    )
    port_a, port_b = free_port(), free_port()
    create_config(cluster, webhook_config, namespace, port_a)
    assert ca_bundle(cluster, webhook_config) == b""  # as the chart renders it
    first = start(cluster, namespace, tmp_path / "a", port_a, webhook_config)
    second: Operator | None = None
    try:
        wait_until(
            lambda: ca_bundle(cluster, webhook_config) != b"",
            WAIT,
            "the CA injected",
            on_timeout=first.log_text,
        )
        stored = secret(cluster, namespace)
        data = stored["data"]
        assert base64.b64decode(data["ca.crt"]) == ca_bundle(cluster, webhook_config)
        # Owned by the Service: deleted with the release.
        assert [(o["kind"], o["uid"]) for o in stored["metadata"]["ownerReferences"]] == [
            ("Service", svc.metadata.uid)
        ]
        assert "app.kubernetes.io/instance" not in stored["metadata"].get("labels", {})

        message = rejected_by_webhook(cluster, namespace)
        assert WEBHOOK_REFUSAL in message, message
        good = manifest("good", collection())
        done = cluster.kubectl("-n", namespace, "apply", "-f", "-", input=json.dumps(good), check=False)
        assert done.returncode == 0, done.stderr

        # A second replica adopts the stored certificate: the Secret is not rewritten.
        second = start(cluster, namespace, tmp_path / "b", port_b, webhook_config)
        ca = ca_bundle(cluster, webhook_config)
        cert = base64.b64decode(data["tls.crt"])
        assert served_cert(port_a, ca, cluster.pki) == cert
        assert served_cert(port_b, ca, cluster.pki) == cert
        assert (
            secret(cluster, namespace)["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]
        )
        # And the API server accepts it from the second one alone.
        first.stop()
        create_config(cluster, webhook_config, namespace, port_b)  # the chart's object, re-applied
        wait_until(
            lambda: ca_bundle(cluster, webhook_config) == ca, WAIT, "the CA kept", on_timeout=second.log_text
        )
        message = rejected_by_webhook(cluster, namespace)
        assert WEBHOOK_REFUSAL in message, message
        for op in (first, second):  # key material never in logs
            assert data["tls.key"] not in op.log_text() and data["ca.key"] not in op.log_text()
            assert base64.b64decode(data["tls.key"]).decode() not in op.log_text()
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_replicas_racing_create_and_renew_end_with_one_certificate(cluster: Any, namespace: str) -> None:
    core = client.CoreV1Api(cluster.api_client())
    hosts = webhook_cert.service_hosts(SERVICE, namespace)

    def race(now: dt.datetime) -> list[webhook_cert.CertBundle]:
        with ThreadPoolExecutor(4) as pool:
            return list(
                pool.map(
                    lambda _: webhook_cert.ensure_secret(core, namespace, SECRET, hosts, now=lambda: now),
                    range(4),
                )
            )

    today = dt.datetime.now(dt.UTC)
    created = race(today)
    assert len(set(created)) == 1
    assert webhook_cert.CertBundle.from_data(secret(cluster, namespace)["data"]) == created[0]
    version = secret(cluster, namespace)["metadata"]["resourceVersion"]
    assert race(today) == created and secret(cluster, namespace)["metadata"]["resourceVersion"] == version

    # 300 days on, the serving certificate is due: one replica renews, the others adopt its result.
    later = today + dt.timedelta(days=300)
    renewed = race(later)
    assert len(set(renewed)) == 1 and renewed[0] != created[0]
    assert renewed[0].ca_bundle == created[0].ca_bundle  # same CA: the API server's trust is unchanged
    assert webhook_cert.CertBundle.from_data(secret(cluster, namespace)["data"]) == renewed[0]
