"""The Secret and SekoiaIntelSync a user applies, as plain manifests (shared by the demo and the soak)."""

from __future__ import annotations

from typing import Any

GROUP, VERSION, PLURAL = "sync.sekoia-intel.dev", "v1alpha1", "sekoiaintelsyncs"


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
        "metadata": {"name": secret_name, "namespace": namespace},
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
