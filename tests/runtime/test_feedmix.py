"""The realistic workload: deterministic, and its distributions are the documented ones."""

from __future__ import annotations

import datetime as dt

from connector_runtime.conversion import convert_indicator
from testbed.feedmix import LIFETIME_DAYS, build_realistic, describe


def _days(obj: dict) -> float:
    start = dt.datetime.fromisoformat(obj["valid_from"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(obj["valid_until"].replace("Z", "+00:00"))
    return (end - start).total_seconds() / 86400


def test_the_mix_has_the_documented_shape() -> None:
    work = build_realistic(5_000, seed=1)
    assert [op.obj for op in work.operations] == [op.obj for op in build_realistic(5_000, seed=1).operations]
    stats = describe(work)
    counts = stats["operations"]
    assert sum(counts.values()) == 5_000
    assert 0.06 <= counts["update"] / 5_000 <= 0.10 and 0.01 <= counts["revoke"] / 5_000 <= 0.03
    assert 0.35 <= stats["kill_chain_share"] <= 0.5
    assert stats["distinct_kill_chains"] > 50
    creates = [op.obj for op in work.operations if op.kind == "create"]
    assert stats["distinct_valid_until"] >= 0.99 * len(creates)  # every indicator its own validity
    assert set(stats["created_by_kind"]) == set(LIFETIME_DAYS)
    for obj in creates:
        low, high = LIFETIME_DAYS[obj["x_opencti_main_observable_type"]]
        assert low <= _days(obj) <= high + 1
        assert len(convert_indicator(obj).values) == 1  # one value each, accepted by the converter


def test_updates_keep_the_value_and_revocations_end_an_indicator() -> None:
    work = build_realistic(3_000, seed=2)
    names: dict[str, str] = {}
    revoked: set[str] = set()
    for op in work.operations:
        if op.kind == "create":
            names[op.obj["id"]] = op.obj["name"]
        elif op.kind == "update":
            assert op.obj["name"] == names[op.obj["id"]] and op.obj["id"] not in revoked
        else:
            revoked.add(op.obj["id"])
    assert work.expected_values() == {names[i] for i in names if i not in revoked}
