"""The sharing guardrail: policy decisions, marking resolution and what refused events become."""

from __future__ import annotations

import argparse
import io
import json
from typing import Any

import pytest

from connector_runtime import metrics
from connector_runtime.commands.convert import policy_from, run_convert
from connector_runtime.guardrail import REASON, Guardrail, MarkingPolicy, MarkingResolver
from connector_runtime.guardrail.catalog import Marking, from_stix
from connector_runtime.stream.events import Action, parse_event

CLEAR = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"
GREEN = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
AMBER = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"
AMBER_STRICT = "marking-definition--826578e1-40ad-459f-bc73-ede076f81f37"
RED = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"
PAP_RED = "marking-definition--4e4e3b84-de45-53df-9d9b-b21207699fd8"
CUSTOM = "marking-definition--0d6e1c7a-1b2c-5d3e-8f4a-5b6c7d8e9f00"


def indicator(*markings: str, pattern: str = "[ipv4-addr:value = '198.51.100.1']") -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "indicator",
        "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "pattern_type": "stix",
        "pattern": pattern,
    }
    if markings:
        obj["object_marking_refs"] = list(markings)
    return obj


def guardrail(lookup: Any = None, **policy: Any) -> Guardrail:
    return Guardrail(MarkingPolicy.build(**policy), MarkingResolver(lookup, backoff_seconds=0))


@pytest.mark.parametrize(
    ("markings", "allowed", "refusing"),
    [
        ((), True, None),
        ((CLEAR,), True, None),
        ((GREEN, AMBER), True, None),
        ((AMBER_STRICT,), True, None),
        ((RED,), False, "TLP:RED"),
        ((CLEAR, RED), False, "TLP:RED"),
        ((PAP_RED, GREEN), True, None),  # no PAP limit by default
    ],
)
def test_default_policy_lets_everything_below_red_leave(
    markings: tuple[str, ...], allowed: bool, refusing: str | None
) -> None:
    decision = guardrail().check(indicator(*markings))
    assert (decision.allowed, decision.marking) == (allowed, refusing)


def test_levels_lists_and_unmarked() -> None:
    assert not guardrail(max_tlp="TLP:GREEN").check(indicator(AMBER)).allowed
    assert guardrail(max_tlp="tlp:white").check(indicator(CLEAR)).allowed  # TLP 1.0 name accepted
    assert not guardrail(max_pap="PAP:AMBER").check(indicator(PAP_RED)).allowed
    # An allowed marking passes above the levels; a refused one is refused at any level.
    assert guardrail(allowed=["TLP:RED"]).check(indicator(RED)).allowed
    assert guardrail(allowed=[RED.upper()]).check(indicator(RED)).allowed
    refused = guardrail(refused=["TLP:GREEN"], allowed=["TLP:GREEN"]).check(indicator(GREEN))
    assert (refused.allowed, refused.marking) == (False, "TLP:GREEN")
    unmarked = guardrail(unmarked="skip").check(indicator())
    assert (unmarked.allowed, unmarked.marking) == (False, "unmarked")
    with pytest.raises(ValueError, match="TLP:CLEAR, TLP:GREEN"):
        MarkingPolicy.build(max_tlp="TLP:PINK")


def test_custom_markings_resolve_through_the_platform_once_and_are_cached() -> None:
    asked: list[str] = []

    def lookup(stix_id: str) -> dict[str, Any] | None:
        asked.append(stix_id)
        return {"standard_id": stix_id, "definition_type": "statement", "definition": "Partner X only"}

    rail = guardrail(lookup, refused=["Partner X only"])
    for _ in range(3):
        decision = rail.check(indicator(CUSTOM, GREEN))
        assert (decision.allowed, decision.marking) == (False, "Partner X only")
    assert asked == [CUSTOM]  # built-in ids are never asked, the custom one once
    assert guardrail(lookup).check(indicator(CUSTOM)).allowed  # custom statements pass by default


def test_unresolvable_markings_are_refused_and_failures_retried() -> None:
    calls = 0

    def failing(_: str) -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError("OpenCTI unreachable")

    rail = guardrail(failing)
    decision = rail.check(indicator(CUSTOM))
    assert (decision.allowed, decision.marking) == (False, CUSTOM)
    assert "could not be resolved" in decision.why
    assert calls == 3
    rail.check(indicator(CUSTOM))
    assert calls == 6  # a failure is not cached: the platform may answer next time
    unknown = guardrail(lambda _: None)
    assert not unknown.check(indicator(CUSTOM)).allowed


def test_markings_learned_from_the_stream_need_no_lookup() -> None:
    def no_lookup(_: str) -> None:
        raise AssertionError("the stream already named this marking")

    rail = guardrail(no_lookup, refused=["PAP:RED", "Partner X only"])
    definition = {
        "type": "marking-definition",
        "id": CUSTOM,
        "name": "Partner X only",
        "definition_type": "statement",
        "definition": {"statement": "Partner X only"},
    }
    event = parse_event("create", "1-0", json.dumps({"data": definition}))
    assert event.definition == definition and rail.screen(event) is event
    assert rail.check(indicator(CUSTOM)).marking == "Partner X only"
    # Plain STIX TLP 1.0 objects have no name, only the definition.
    stix_white = {
        "type": "marking-definition",
        "id": "x",
        "definition_type": "tlp",
        "definition": {"tlp": "white"},
    }
    assert from_stix(stix_white) == Marking("x", "TLP:CLEAR")


def _event(name: str, obj: dict[str, Any], reverse_patch: list[dict[str, Any]] | None = None) -> Any:
    payload: dict[str, Any] = {"data": obj}
    if reverse_patch:
        payload["context"] = {"reverse_patch": reverse_patch}
    return parse_event(name, "1700000000000-0", json.dumps(payload))


def _skipped() -> float:
    return metrics.VALUES_SKIPPED.labels(REASON)._value.get()


def test_refused_create_is_skipped_and_refused_update_revoked() -> None:
    rail = guardrail()
    before = _skipped()
    created = rail.screen(_event("create", indicator(RED)))
    assert (created.action, created.ignore_reason) == (Action.IGNORE, REASON)
    assert created.indicator is not None
    raised = rail.screen(_event("update", indicator(RED)))
    assert raised.action is Action.REVOKE
    assert _skipped() - before == 2
    lowered = rail.screen(_event("update", indicator(AMBER)))
    assert lowered.action is Action.PUSH
    # A marking raised together with a pattern change: the old pattern stays known for revocation.
    moved = rail.screen(
        _event(
            "update", indicator(RED), [{"op": "replace", "path": "/pattern", "value": "[url:value = 'x']"}]
        )
    )
    assert (moved.action, moved.previous_pattern) == (Action.REVOKE, "[url:value = 'x']")
    rail.revoke_refused_creates = True
    assert rail.screen(_event("create", indicator(RED))).action is Action.REVOKE
    deleted = _event("delete", indicator(RED))
    assert rail.screen(deleted) is deleted


def test_convert_shows_the_decision() -> None:
    bundle = {
        "type": "bundle",
        "objects": [
            {"type": "marking-definition", "id": CUSTOM, "name": "Partner X only"},
            indicator(RED),
            indicator(CUSTOM),
            indicator(GREEN),
        ],
    }
    output = io.StringIO()
    policy = MarkingPolicy.build(refused=["Partner X only"])
    assert run_convert(io.StringIO(json.dumps(bundle)), output, io.StringIO(), policy) == 0
    lines = [json.loads(line)["sharing"] for line in output.getvalue().splitlines()]
    assert lines[0] == {
        "allowed": False,
        "markings": ["TLP:RED"],
        "reason": REASON,
        "marking": "TLP:RED",
        "why": "TLP:RED is above TLP:AMBER+STRICT",
    }
    assert (lines[1]["allowed"], lines[1]["marking"]) == (False, "Partner X only")
    assert lines[2] == {"allowed": True, "markings": ["TLP:GREEN"]}


def test_convert_policy_from_options_and_environment() -> None:
    args = argparse.Namespace(max_tlp=None, max_pap=None, allow=["TLP:RED"], refuse=[], unmarked=None)
    env = {"SEKOIA_INTEL_MARKINGS_MAX_TLP": "TLP:GREEN", "SEKOIA_INTEL_MARKINGS_REFUSED": '["PAP:RED"]'}
    policy = policy_from(args, env)
    assert (policy.max_tlp, policy.allowed, policy.refused) == (
        "TLP:GREEN",
        frozenset({"TLP:RED"}),
        frozenset({"PAP:RED"}),
    )
    with pytest.raises(ValueError, match=r"^SEKOIA_INTEL_MARKINGS_MAX_TLP must be one of"):
        policy_from(args, {"SEKOIA_INTEL_MARKINGS_MAX_TLP": "amber"})
    bad = argparse.Namespace(max_tlp="TLP:X", max_pap=None, allow=[], refuse=[], unmarked=None)
    with pytest.raises(ValueError, match=r"^--max-tlp must be one of"):
        policy_from(bad, {})
