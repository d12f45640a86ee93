"""The soak's stream model: every kind of event occurs, and the expected end state agrees with an
independent replay of the stream through the runtime's own converter."""

from __future__ import annotations

from collections import Counter
from typing import Any

from connector_runtime.conversion.converter import convert_indicator
from testbed.soak.traffic import build_traffic

EVENTS = 4_000


def _replay(operations: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The objects alive at the end of the stream (what OpenCTI would hold)."""
    alive: dict[str, dict[str, Any]] = {}
    for op in operations:
        body = op["body"]
        if op["action"] in ("create", "update"):
            alive[body["id"]] = body
        elif op["action"] == "revoke":
            alive[body["id"]] = {**alive[body["id"]], "revoked": True}
        else:
            alive.pop(body["id"], None)
    return alive


def test_the_stream_has_every_kind_and_enough_indicator_events() -> None:
    traffic = build_traffic(EVENTS, seed=5)
    assert traffic.indicator_events >= EVENTS
    for kind in ("create", "update", "revoke", "delete", "duplicate", "non-indicator", "malformed"):
        assert traffic.kinds[kind] > 0, kind
    for kind in ("unsupported", "unicode", "long"):
        assert traffic.kinds[kind] > 0, kind
    assert sum(traffic.kinds.values()) == len(traffic.operations)
    assert any(len(value) > 1_000 for value in traffic.expect.active)
    assert any(not value.isascii() for value in traffic.expect.active)
    assert build_traffic(EVENTS, seed=5).operations == traffic.operations  # deterministic


def test_expected_state_matches_a_replay_through_the_converter() -> None:
    traffic = build_traffic(EVENTS, seed=9)
    values: set[str] = set()
    reasons: dict[str, frozenset[str]] = {}
    for obj in _replay(traffic.operations).values():
        if obj.get("type") != "indicator" or obj.get("revoked"):
            continue
        conversion = convert_indicator(obj)
        values |= {v.value for v in conversion.values}
        if conversion.skipped:
            reasons[obj["id"]] = frozenset(s.reason for s in conversion.skipped)
    expect = traffic.expect
    # What the converter makes of the final objects is what Sekoia must hold, plus what it refuses.
    assert values == expect.active | expect.rejected
    assert not expect.active & expect.rejected
    assert reasons == expect.skipped
    assert not expect.never_active & values
    assert Counter(r for rs in expect.skipped.values() for r in rs).keys() >= {
        "malformed-pattern",
        "not-stix-pattern",
        "unsupported-object-type",
        "cidr-range",
        "unsupported-operator",
        "invalid-value",
    }
