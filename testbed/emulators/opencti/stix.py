"""STIX object helpers: the OpenCTI property extension and the live-stream event payload."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime
from typing import Any

OPENCTI_EXTENSION = "extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba"

# Internal ids are derived from the STIX id so that a re-created object keeps the same platform URL.
_INTERNAL_ID_NAMESPACE = uuid.UUID("6f4a2f0e-6b7c-4d5e-8f9a-0b1c2d3e4f50")

# STIX type -> OpenCTI entity type, for the types whose name is not a plain title-casing.
_ENTITY_TYPES = {
    "identity": "Identity",
    "marking-definition": "Marking-Definition",
    "relationship": "stix-core-relationship",
    "sighting": "stix-sighting-relationship",
    "ipv4-addr": "IPv4-Addr",
    "ipv6-addr": "IPv6-Addr",
    "url": "Url",
    "x-opencti-text": "Text",
}


def now_iso() -> str:
    """Current UTC time as the platform writes it (millisecond precision, `Z` suffix)."""
    moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def entity_type(stix_type: str) -> str:
    """The OpenCTI entity type name for a STIX type (`indicator` -> `Indicator`)."""
    if stix_type in _ENTITY_TYPES:
        return _ENTITY_TYPES[stix_type]
    return "-".join(part.capitalize() for part in stix_type.split("-"))


def internal_id(stix_id: str) -> str:
    """A stable, deterministic platform-internal UUID for a STIX id."""
    return str(uuid.uuid5(_INTERNAL_ID_NAMESPACE, stix_id))


def extension_of(obj: dict[str, Any]) -> dict[str, Any]:
    """The OpenCTI property extension of an object (empty dict when absent)."""
    ext = (obj.get("extensions") or {}).get(OPENCTI_EXTENSION)
    return ext if isinstance(ext, dict) else {}


def with_opencti_extension(
    obj: dict[str, Any], previous: dict[str, Any] | None = None, touched_at: str | None = None
) -> dict[str, Any]:
    """Return a deep copy of `obj` whose OpenCTI extension has id/type/created_at/updated_at.

    Values already present win. For a new version of an existing object, the internal id and
    `created_at` are carried over from `previous` so the object keeps its identity.
    """
    if not isinstance(obj, dict) or not all(isinstance(obj.get(key), str) for key in ("id", "type")):
        raise ValueError("a STIX object needs string `id` and `type` fields")
    result = copy.deepcopy(obj)
    result.setdefault("spec_version", "2.1")
    stamp = touched_at or now_iso()
    prev_ext = extension_of(previous) if previous else {}
    extensions = result.setdefault("extensions", {})
    ext = extensions.setdefault(OPENCTI_EXTENSION, {})
    ext.setdefault("extension_type", "property-extension")
    ext.setdefault("id", prev_ext.get("id") or internal_id(result["id"]))
    ext.setdefault("type", prev_ext.get("type") or entity_type(result["type"]))
    ext.setdefault("created_at", prev_ext.get("created_at") or result.get("created") or stamp)
    ext.setdefault("updated_at", stamp)
    ext.setdefault("is_inferred", False)
    return result


def display_name(obj: dict[str, Any]) -> str:
    """The short human name the platform puts between backticks in event messages."""
    for key in ("name", "value", "pattern", "definition_type", "relationship_type"):
        value = obj.get(key)
        if isinstance(value, str) and value:
            return value if len(value) <= 120 else value[:117] + "..."
    return str(obj.get("id", ""))


def event_message(kind: str, obj: dict[str, Any], context: dict[str, Any] | None = None) -> str:
    """A platform-like message (`creates a Indicator \\`evil.example\\``)."""
    kind_name = extension_of(obj).get("type") or entity_type(str(obj.get("type", "")))
    name = display_name(obj)
    if kind == "update":
        fields = sorted({op["path"].split("/")[1] for op in (context or {}).get("patch", []) if "path" in op})
        return f"updates `{', '.join(fields) or 'nothing'}` for {kind_name} `{name}`"
    if kind == "merge":
        return f"merges {kind_name} `{name}`"
    verb = {"create": "creates", "delete": "deletes"}.get(kind, kind)
    return f"{verb} a {kind_name} `{name}`"


def build_payload(
    kind: str,
    obj: dict[str, Any],
    origin: dict[str, Any],
    context: dict[str, Any] | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """The JSON document carried in the `data:` line of a live-stream event (version "4")."""
    payload: dict[str, Any] = {
        "version": "4",
        "type": kind,
        "scope": "external",
        "message": message or event_message(kind, obj, context),
        "origin": origin,
        "data": obj,
    }
    if context is not None:
        payload["context"] = context
    return payload
