"""The Secret and SekoiaIntelSync a user applies, as plain manifests (shared by the demo and the soak)."""

from __future__ import annotations

from typing import Any

GROUP, VERSION, PLURAL = "sync.sekoia-intel.dev", "v1alpha1", "sekoiaintelsyncs"
CREDENTIALS_LABEL = "sync.sekoia-intel.dev/credentials"
#: The operator's allowlists are strict by default (https, *.sekoia.io, no loopback); the test bed's
#: emulators listen on http://127.0.0.1, so every operator the test bed starts widens them this far.
LOCAL_POLICY_FLAGS = (
    "--allow-opencti-scheme=http",
    "--allow-opencti-scheme=https",
    "--allow-sekoia-url=http://127.0.0.1:*",
    "--allow-loopback",
)
#: A runtime section that the CRD's schema accepts and only the operator's webhook refuses (a memory
#: request above its limit), and the words of that refusal: proof that the API server called it.
WEBHOOK_ONLY_REFUSED_RUNTIME = {"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "256Mi"}}}
WEBHOOK_REFUSAL = "memory request (1Gi) is above its limit (256Mi)"


def credentials_and_sync(
    namespace: str,
    name: str,
    secret_name: str,
    *,
    opencti: tuple[str, str, str],
    sekoia: tuple[str, str, str],
    **spec: Any,
) -> list[dict[str, Any]]:
    """``opencti`` is (url, stream id, token), ``sekoia`` (url, collection id, API key); any other
    keyword becomes a field of the resource's spec (``connector=...``, ``push=...``)."""
    opencti_url, stream_id, token = opencti
    sekoia_url, collection, api_key = sekoia
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        # The opt-in: without this label the operator refuses to let a runtime use the Secret.
        "metadata": {"name": secret_name, "namespace": namespace, "labels": {CREDENTIALS_LABEL: "true"}},
        "type": "Opaque",
        "stringData": {"opencti-token": token, "sekoia-api-key": api_key},
    }
    sync = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SekoiaIntelSync",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "opencti": {"url": opencti_url, "streamId": stream_id},
            "sekoia": {"url": sekoia_url, "collectionId": collection},
            "credentialsSecretRef": {"name": secret_name},
            **spec,
        },
    }
    return [secret, sync]
