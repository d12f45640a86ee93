"""Marking definitions: what the runtime knows without asking, and how it reads the others.

OpenCTI gives its built-in markings fixed STIX ids. TLP:CLEAR, TLP:GREEN, TLP:AMBER and TLP:RED
reuse the STIX 2.1 specification's TLP 1.0 ids (TLP:CLEAR is the TLP:WHITE id); TLP:AMBER+STRICT
and the PAP levels have ids derived from their definition (pycti's
``MarkingDefinition.generate_id``). FIRST's TLP 2.0 identifiers as CACAO publishes them
(``marking-tlp--94868c89-...``) are a different scheme that OpenCTI does not emit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TLP_LEVELS = ("TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:RED")
PAP_LEVELS = ("PAP:CLEAR", "PAP:GREEN", "PAP:AMBER", "PAP:RED")
# TLP 1.0 names still found in older data mean the same as their TLP 2.0 successors.
_ALIASES = {"TLP:WHITE": "TLP:CLEAR", "PAP:WHITE": "PAP:CLEAR"}

KNOWN_IDS: dict[str, str] = {
    "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9": "TLP:CLEAR",
    "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da": "TLP:GREEN",
    "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82": "TLP:AMBER",
    "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37": "TLP:AMBER+STRICT",
    "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed": "TLP:RED",
    "marking-definition--4cdff7eb-acb8-543f-8573-829eb9fe8b34": "PAP:CLEAR",
    "marking-definition--89484dde-e3d2-547f-a6c6-d14824429eb1": "PAP:GREEN",
    "marking-definition--a6f20d4d-0360-59b6-ba22-3b48707828b1": "PAP:AMBER",
    "marking-definition--4e4e3b84-de45-53df-9d9b-b21207699fd8": "PAP:RED",
}


def normalize_name(name: str) -> str:
    """``tlp:amber+strict`` -> ``TLP:AMBER+STRICT``; TLP 1.0 WHITE becomes CLEAR. Other names
    (custom statements) keep their text, trimmed."""
    text = name.strip()
    upper = text.upper().replace(" ", "")
    if upper.startswith(("TLP:", "PAP:")):
        return _ALIASES.get(upper, upper)
    return text


@dataclass(frozen=True)
class Marking:
    """One marking definition as the guardrail sees it. ``resolved`` is False when only the id is
    known (the platform could not be asked, or does not know it)."""

    stix_id: str
    name: str
    resolved: bool = True

    @property
    def tlp_rank(self) -> int | None:
        """Position in ``TLP_LEVELS`` (0 = CLEAR), or None when not a TLP marking."""
        return TLP_LEVELS.index(self.name) if self.name in TLP_LEVELS else None

    @property
    def pap_rank(self) -> int | None:
        """Position in ``PAP_LEVELS``, or None when not a PAP marking."""
        return PAP_LEVELS.index(self.name) if self.name in PAP_LEVELS else None


def known(stix_id: str) -> Marking | None:
    """A built-in OpenCTI marking by its fixed id."""
    name = KNOWN_IDS.get(stix_id)
    return Marking(stix_id, name) if name else None


def from_stix(obj: dict[str, Any]) -> Marking | None:
    """A marking from a STIX ``marking-definition`` object (a stream dependency, a bundle member).

    OpenCTI writes ``name`` (``TLP:RED``); plain STIX TLP 1.0 objects only have
    ``definition_type: tlp`` and ``definition: {"tlp": "red"}``; OpenCTI-bound producers also
    use ``x_opencti_definition``.
    """
    stix_id = obj.get("id")
    if obj.get("type") != "marking-definition" or not isinstance(stix_id, str):
        return None
    for key in ("name", "x_opencti_definition"):
        if isinstance(obj.get(key), str) and obj[key].strip():
            return Marking(stix_id, normalize_name(obj[key]))
    kind = obj.get("definition_type")
    definition = obj.get("definition")
    if isinstance(kind, str) and isinstance(definition, dict):
        value = definition.get(kind.lower())
        if isinstance(value, str) and kind.lower() in {"tlp", "pap"}:
            return Marking(stix_id, normalize_name(f"{kind}:{value}"))
        if isinstance(value, str):
            return Marking(stix_id, value.strip())
    return known(stix_id)


def from_graphql(stix_id: str, obj: Any) -> Marking | None:
    """A marking from pycti's ``marking_definition.read`` answer (``definition`` = its name)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("definition"), str):
        return None
    return Marking(str(obj.get("standard_id") or stix_id), normalize_name(obj["definition"]))
