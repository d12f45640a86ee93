"""Shared builders for the operator's unit tests."""

from __future__ import annotations

from typing import Any

COLLECTION = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
STREAM = "5f3e1a2b-1111-4c2d-9e8f-0123456789ab"


def raw_spec(**overrides: Any) -> dict[str, Any]:
    """A minimal valid spec (as the user writes it), with top-level overrides."""
    spec: dict[str, Any] = {
        "opencti": {"url": "https://opencti.example.org", "streamId": STREAM},
        "sekoia": {"collectionId": COLLECTION},
        "credentialsSecretRef": {"name": "sis-creds"},
    }
    spec.update(overrides)
    return spec
