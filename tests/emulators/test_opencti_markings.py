"""The OpenCTI emulator's marking definitions: the platform's fixed ids, pycti's GraphQL read and
the marking-definition dependency a stream sends before an indicator that references it."""

from __future__ import annotations

import uuid

import pytest
from opencti_fixtures import LIVE_STREAM_ID, OPENCTI_TOKEN, opencti_emulator
from opencti_helpers import SseReader
from pycti import MarkingDefinition, OpenCTIApiClient

from connector_runtime.guardrail.catalog import KNOWN_IDS, from_graphql, from_stix
from testbed.emulators.opencti import OpenCTIEmulator
from testbed.emulators.opencti.markings import BUILT_IN, marking_id

__all__ = ["opencti_emulator"]


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_built_in_ids_are_the_ones_pycti_derives(name: str) -> None:
    kind = name.split(":")[0]
    assert BUILT_IN[name][0] == MarkingDefinition.generate_id(kind, name)
    # The runtime's own table agrees (it resolves these ids without asking the platform).
    assert KNOWN_IDS[BUILT_IN[name][0]] == name


def test_custom_marking_ids_follow_pycti() -> None:
    assert marking_id("statement", "Partner X only") == MarkingDefinition.generate_id(
        "statement", "Partner X only"
    )


def test_pycti_reads_marking_definitions(opencti_emulator: OpenCTIEmulator) -> None:
    emu = opencti_emulator
    custom = emu.markings.add("statement", "Partner X only", order=5)
    client = OpenCTIApiClient(emu.base_url, OPENCTI_TOKEN, log_level="error")
    red = client.marking_definition.read(id=BUILT_IN["TLP:RED"][0])
    assert red["definition"] == "TLP:RED" and red["definition_type"] == "TLP"
    assert red["standard_id"] == BUILT_IN["TLP:RED"][0]
    # The platform answers internal ids too.
    assert client.marking_definition.read(id=red["id"])["standard_id"] == red["standard_id"]
    assert from_graphql(custom, client.marking_definition.read(id=custom)).name == "Partner X only"
    assert client.marking_definition.read(id=f"marking-definition--{uuid.uuid4()}") is None
    operations = [c["operation"] for c in emu.graphql_calls()]
    assert operations.count("MarkingDefinition") == 4


def test_stream_sends_the_marking_as_a_dependency(opencti_emulator: OpenCTIEmulator) -> None:
    emu = opencti_emulator
    red = BUILT_IN["TLP:RED"][0]
    emu.create(
        {
            "type": "indicator",
            "id": f"indicator--{uuid.UUID(int=7)}",
            "pattern": "[ipv4-addr:value = '198.51.100.7']",
            "pattern_type": "stix",
            "object_marking_refs": [red],
        }
    )
    url = f"{emu.base_url}/stream/{LIVE_STREAM_ID}"
    _, deps = SseReader.open(url, OPENCTI_TOKEN, **{"no-dependencies": "false"})
    _, plain = SseReader.open(url, OPENCTI_TOKEN)
    try:
        first, second = deps.take(2)
        marking = first.json()["data"]
        assert marking["type"] == "marking-definition" and marking["id"] == red
        assert from_stix(marking).name == "TLP:RED"
        assert first.id == second.id and second.json()["data"]["object_marking_refs"] == [red]
        # With the default no-dependencies: true only the indicator comes, with the id alone.
        assert plain.take(1)[0].json()["data"]["type"] == "indicator"
    finally:
        deps.close()
        plain.close()
