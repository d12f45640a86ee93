"""spec.push.markings -> the runtime's SEKOIA_INTEL_MARKINGS_* variables -> the runtime's policy."""

from __future__ import annotations

import json
from typing import Any

import pytest
from operator_helpers import raw_spec
from sekoia_intel_operator import workload
from sekoia_intel_operator.spec import SpecError, parse_spec

from connector_runtime.config import load_settings

REF = workload.SyncRef(namespace="intel", name="feed", uid="11111111-2222-4333-8444-555555555555")


def _markings_env(markings: dict[str, Any] | None) -> dict[str, str]:
    raw = raw_spec()
    if markings is not None:
        raw["push"] = {"markings": markings}
    env = workload.runtime_env(REF, parse_spec(raw))
    return {e["name"]: e["value"] for e in env if e["name"].startswith("SEKOIA_INTEL_MARKINGS_")}


def test_defaults_add_no_variable_so_existing_runtimes_do_not_roll() -> None:
    assert _markings_env(None) == {}
    assert _markings_env({"maxTlp": "TLP:AMBER+STRICT", "unmarked": "push", "allowed": []}) == {}


def test_every_field_reaches_the_runtime_policy() -> None:
    env = _markings_env(
        {
            "maxTlp": "TLP:GREEN",
            "maxPap": "PAP:AMBER",
            "allowed": ["marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"],
            "refused": ["Partner X, internal", "PAP:RED"],
            "unmarked": "skip",
        }
    )
    assert json.loads(env["SEKOIA_INTEL_MARKINGS_REFUSED"]) == ["Partner X, internal", "PAP:RED"]
    base = {
        "OPENCTI_URL": "https://opencti.example.org",
        "OPENCTI_TOKEN": "t",
        "CONNECTOR_ID": "c",
        "CONNECTOR_LIVE_STREAM_ID": "live",
        "SEKOIA_INTEL_APIKEY": "k",
        "SEKOIA_INTEL_IOC_COLLECTION_UUID": "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9",
    }
    policy = load_settings(environ={**base, **env}).marking_policy
    assert policy.max_tlp == "TLP:GREEN" and policy.max_pap == "PAP:AMBER"
    assert policy.allowed == {"marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"}
    assert policy.refused == {"Partner X, internal", "PAP:RED"}  # a comma inside a name survives
    assert policy.unmarked.value == "skip"


def test_unknown_level_is_a_readable_spec_error() -> None:
    raw = raw_spec()
    raw["push"] = {"markings": {"maxTlp": "TLP:PINK"}}
    with pytest.raises(SpecError, match=r"spec\.push\.markings\.maxTlp"):
        parse_spec(raw)
