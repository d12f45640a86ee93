"""Marking definitions as the platform holds them: built-in TLP 2.0 and PAP, plus custom ones.

OpenCTI creates its TLP and PAP markings at initialisation with fixed STIX ids. For TLP:CLEAR,
GREEN, AMBER and RED these are the STIX 2.1 specification's TLP 1.0 ids (TLP:CLEAR reuses the
TLP:WHITE id); TLP:AMBER+STRICT and the PAP levels have ids derived like any marking (UUIDv5 of
the canonical ``{"definition", "definition_type"}``, pycti's ``MarkingDefinition.generate_id``).
The FIRST/CACAO TLP 2.0 identifiers (``marking-tlp--94868c89-...`` etc.) are NOT what OpenCTI
emits.

Two views of each marking are served: the STIX object a live stream sends (as a dependency of
an object that references it, with ``no-dependencies: false``) and the GraphQL object pycti reads
(``query MarkingDefinition($id: String!) { markingDefinition(id: $id) { ... } }``).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from .stix import OPENCTI_EXTENSION, internal_id

_MARKING_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")
_CREATED = "2022-10-01T00:00:00.000Z"

# name -> (fixed STIX id, x_opencti_order, x_opencti_color), as the platform initialises them.
BUILT_IN: dict[str, tuple[str, int, str]] = {
    "TLP:CLEAR": ("marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9", 1, "#ffffff"),
    "TLP:GREEN": ("marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da", 2, "#2e7d32"),
    "TLP:AMBER": ("marking-definition--f88d31f6-486f-44da-b317-01333bde0b82", 3, "#d84315"),
    "TLP:AMBER+STRICT": ("marking-definition--826578e1-40ad-459f-bc73-ede076f81f37", 3, "#d84315"),
    "TLP:RED": ("marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed", 4, "#c62828"),
    "PAP:CLEAR": ("marking-definition--4cdff7eb-acb8-543f-8573-829eb9fe8b34", 1, "#ffffff"),
    "PAP:GREEN": ("marking-definition--89484dde-e3d2-547f-a6c6-d14824429eb1", 2, "#2e7d32"),
    "PAP:AMBER": ("marking-definition--a6f20d4d-0360-59b6-ba22-3b48707828b1", 3, "#d84315"),
    "PAP:RED": ("marking-definition--4e4e3b84-de45-53df-9d9b-b21207699fd8", 4, "#c62828"),
}


def marking_id(definition_type: str, definition: str) -> str:
    """The STIX id the platform derives for a marking (pycti's ``generate_id``)."""
    canonical = json.dumps(
        {"definition": definition, "definition_type": definition_type}, separators=(",", ":"), sort_keys=True
    )
    return f"marking-definition--{uuid.uuid5(_MARKING_NAMESPACE, canonical)}"


@dataclass(frozen=True)
class Marking:
    """One marking definition of the platform."""

    stix_id: str
    definition_type: str
    definition: str
    order: int
    color: str

    def as_stix(self) -> dict[str, Any]:
        """The STIX object a live stream carries for this marking."""
        kind = self.definition_type.lower()
        short = self.definition.split(":", 1)[1].lower() if ":" in self.definition else self.definition
        return {
            "id": self.stix_id,
            "spec_version": "2.1",
            "type": "marking-definition",
            "created": _CREATED,
            "modified": _CREATED,
            "name": self.definition,
            "definition_type": kind,
            "definition": {kind: short},
            "x_opencti_order": self.order,
            "x_opencti_color": self.color,
            "extensions": {
                OPENCTI_EXTENSION: {
                    "extension_type": "property-extension",
                    "id": internal_id(self.stix_id),
                    "type": "Marking-Definition",
                    "created_at": _CREATED,
                    "updated_at": _CREATED,
                    "is_inferred": False,
                }
            },
        }

    def as_graphql(self) -> dict[str, Any]:
        """The object pycti's ``marking_definition.read`` receives."""
        return {
            "id": internal_id(self.stix_id),
            "standard_id": self.stix_id,
            "entity_type": "Marking-Definition",
            "parent_types": ["Basic-Object", "Stix-Object", "Stix-Meta-Object"],
            "definition_type": self.definition_type,
            "definition": self.definition,
            "x_opencti_order": self.order,
            "x_opencti_color": self.color,
            "created": _CREATED,
            "modified": _CREATED,
            "created_at": _CREATED,
            "updated_at": _CREATED,
        }


class MarkingRegistry:
    """The platform's marking definitions (thread-safe); built-ins are always present."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Marking] = {}
        for name, (stix_id, order, color) in BUILT_IN.items():
            self._by_id[stix_id] = Marking(stix_id, name.split(":", 1)[0], name, order, color)

    def add(self, definition_type: str, definition: str, order: int = 0, color: str = "#ffffff") -> str:
        """Create a custom marking (e.g. a ``statement``); returns its STIX id."""
        stix_id = marking_id(definition_type, definition)
        with self._lock:
            self._by_id[stix_id] = Marking(stix_id, definition_type, definition, order, color)
        return stix_id

    def by_name(self, definition: str) -> str:
        """The STIX id of a marking known by its name (``TLP:RED``); KeyError when unknown."""
        with self._lock:
            for marking in self._by_id.values():
                if marking.definition == definition:
                    return marking.stix_id
        raise KeyError(definition)

    def get(self, any_id: str) -> Marking | None:
        """A marking by STIX id or internal id (the platform accepts both)."""
        with self._lock:
            found = self._by_id.get(any_id)
            if found is None:
                found = next((m for m in self._by_id.values() if internal_id(m.stix_id) == any_id), None)
            return found

    def stix(self, stix_id: str) -> dict[str, Any] | None:
        """The STIX object for a referenced id, or None when it is not a marking."""
        marking = self.get(stix_id) if stix_id.startswith("marking-definition--") else None
        return marking.as_stix() if marking else None
