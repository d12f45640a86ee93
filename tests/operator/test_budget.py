"""How the operator divides a Sekoia host's request budget among its syncs."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sekoia_intel_operator import cli
from sekoia_intel_operator.budget import BudgetPolicy, Demand, allocate, demand_of, host_of, worth_publishing
from sekoia_intel_operator.rebalance import Rebalancer

POLICY = BudgetPolicy(requests_per_second=5.0, floor=0.5, headroom=0.1)


def demand(name: str, backlog: int = 0, running: bool = True, ceiling: float = 5.0, **kw: Any) -> Demand:
    return Demand("ns", name, kw.pop("host", "api.sekoia.io"), running, backlog, ceiling, **kw)


def test_idle_syncs_share_the_budget_equally_less_the_headroom() -> None:
    shares = allocate(5.0, [demand(f"s{i}") for i in range(5)], POLICY)
    assert shares == {("ns", f"s{i}"): 0.9 for i in range(5)}


def test_a_large_backlog_gets_most_of_the_budget_and_idle_ones_keep_their_floor() -> None:
    demands = [demand("bulk", backlog=2500)] + [demand(f"live{i}", backlog=2) for i in range(4)]
    shares = allocate(5.0, demands, POLICY)
    assert shares[("ns", "bulk")] > sum(v for k, v in shares.items() if k[1] != "bulk")
    assert all(shares[("ns", f"live{i}")] >= 0.45 for i in range(4))
    assert sum(shares.values()) <= 4.5 + 1e-9


def test_suspended_and_waiting_syncs_get_nothing_and_free_their_part() -> None:
    demands = [demand("bulk", backlog=2500, running=False)] + [demand(f"live{i}") for i in range(4)]
    shares = allocate(5.0, demands, POLICY)
    assert ("ns", "bulk") not in shares
    assert shares == {("ns", f"live{i}"): 1.12 for i in range(4)}


def test_a_sync_never_gets_more_than_its_own_ceiling_and_the_rest_goes_to_the_others() -> None:
    demands = [demand("capped", backlog=1000, ceiling=1.0), demand("other", backlog=10)]
    shares = allocate(5.0, demands, POLICY)
    assert shares[("ns", "capped")] == 1.0
    assert shares[("ns", "other")] == 3.5


def test_many_syncs_keep_half_the_budget_for_backlogs() -> None:
    demands = [demand("bulk", backlog=100)] + [demand(f"idle{i}") for i in range(19)]
    shares = allocate(5.0, demands, POLICY)
    floor = 4.5 * 0.5 / 20
    assert shares[("ns", "idle0")] == pytest.approx(floor, abs=0.01)
    assert shares[("ns", "bulk")] >= 2.25


def test_a_few_pending_events_are_live_traffic_not_a_backlog() -> None:
    shares = allocate(5.0, [demand("a", backlog=1), demand("b"), demand("c", backlog=99)], POLICY)
    assert set(shares.values()) == {1.5}


def test_a_single_sync_gets_the_whole_budget() -> None:
    assert allocate(5.0, [demand("only", backlog=10)], POLICY) == {("ns", "only"): 5.0}


def test_no_running_sync_no_share() -> None:
    assert allocate(5.0, [], POLICY) == {}
    assert allocate(5.0, [demand("a", running=False)], POLICY) == {}


@given(
    budget=st.floats(0.5, 100),
    syncs=st.lists(
        st.tuples(st.integers(0, 100_000), st.booleans(), st.floats(0.1, 100)), min_size=1, max_size=40
    ),
)
def test_the_shares_never_add_up_to_more_than_the_budget(
    budget: float, syncs: list[tuple[int, bool, float]]
) -> None:
    demands = [
        demand(f"s{i}", backlog, running, ceiling) for i, (backlog, running, ceiling) in enumerate(syncs)
    ]
    shares = allocate(budget, demands, POLICY)
    # MINIMUM_SHARE may only exceed it when the budget cannot give every sync 0.01.
    if budget * 0.9 / len(demands) >= 0.01:
        assert sum(shares.values()) <= budget + 1e-6
    for d in demands:
        if d.running:
            assert 0 < shares[d.key] <= max(d.ceiling, 0.01) + 1e-9
        else:
            assert d.key not in shares


def test_small_moves_are_not_published_but_a_new_or_gone_sync_is() -> None:
    a, b = ("ns", "a"), ("ns", "b")
    assert not worth_publishing({a: 2.0, b: 2.0}, {a: 2.1, b: 1.9})
    assert worth_publishing({a: 2.0, b: 2.0}, {a: 3.0, b: 1.0})
    assert worth_publishing({a: 2.0, b: None}, {a: 2.0, b: 2.0})
    assert worth_publishing({a: 2.0, b: 2.0}, {a: 2.0})


def sync(name: str, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": name},
        "spec": {
            "sekoia": {"url": "https://API.sekoia.io/", "collectionId": "x"},
            "push": {"requestsPerSecond": 3},
        },
        "status": {"conditions": [{"type": "CollectionClaimed", "status": "True"}], **status},
    }


def test_demand_is_read_from_the_resource() -> None:
    obj = sync("feed", progress={"pendingEvents": 42}, budget={"requestsPerSecond": 1.5})
    d = demand_of(obj)
    assert d == Demand("ns", "feed", "api.sekoia.io", True, 42, 3.0, 1.5)
    obj["spec"]["suspend"] = True
    assert demand_of(obj).running is False  # type: ignore[union-attr]
    waiting = sync("waiting")
    waiting["status"]["conditions"][0]["status"] = "False"
    assert demand_of(waiting).running is False  # type: ignore[union-attr]
    junk = sync("junk", progress={"pendingEvents": "lots"}, budget="x")
    assert demand_of(junk) == Demand("ns", "junk", "api.sekoia.io", True, 0, 3.0, None)
    assert host_of("https://eu.sekoia.io:8443/api") == "eu.sekoia.io"


def test_rebalancer_writes_decreases_first_then_only_when_worth_it() -> None:
    writes: list[tuple[str, dict[str, Any] | None]] = []
    done = threading.Event()

    def write(namespace: str, name: str, body: dict[str, Any] | None) -> None:
        writes.append((name, body))
        done.set()

    reb = Rebalancer(POLICY, write, delay=3600)  # the timer never fires: rebalances run by hand
    try:
        for name in ("a", "b"):
            reb.observe(None, sync(name))
        assert reb.rebalance("api.sekoia.io") == 2
        assert {name: body["requestsPerSecond"] for name, body in writes if body} == {"a": 2.25, "b": 2.25}
        assert writes[0][1]["host"] == "api.sekoia.io" and writes[0][1]["sharedBy"] == 2  # type: ignore[index]
        writes.clear()
        # The writes come back through the watch: nothing new to write.
        reb.observe("MODIFIED", sync("a", budget={"requestsPerSecond": 2.25}))
        reb.observe("MODIFIED", sync("b", budget={"requestsPerSecond": 2.25}))
        assert reb.rebalance("api.sekoia.io") == 0
        # "a" piles up a backlog: "b" shrinks first, then "a" grows (3 is a's ceiling).
        reb.observe(
            "MODIFIED", sync("a", budget={"requestsPerSecond": 2.25}, progress={"pendingEvents": 900})
        )
        assert reb.rebalance("api.sekoia.io") == 2
        assert [(n, b["requestsPerSecond"]) for n, b in writes if b] == [("b", 1.5), ("a", 3.0)]
        writes.clear()
        # "a" is suspended: its share is removed and "b" gets everything.
        suspended = sync("a", budget={"requestsPerSecond": 3.0})
        suspended["spec"]["suspend"] = True
        reb.observe("MODIFIED", suspended)
        assert reb.rebalance("api.sekoia.io") == 2
        assert writes == [("a", None), ("b", writes[1][1])] and writes[1][1]["requestsPerSecond"] == 3.0  # type: ignore[index]
    finally:
        reb.stop()


def test_rebalancer_coalesces_a_burst_of_events_into_one_run() -> None:
    calls: list[str] = []
    done = threading.Event()

    def write(namespace: str, name: str, body: dict[str, Any] | None) -> None:
        calls.append(name)
        if len(calls) == 3:
            done.set()

    reb = Rebalancer(POLICY, write, delay=0.2)
    try:
        for i in range(50):
            reb.observe("MODIFIED", sync(f"s{i % 3}", progress={"pendingEvents": i}))
        assert done.wait(10)
        assert sorted(calls) == ["s0", "s1", "s2"]
    finally:
        reb.stop()


def budget_flags(*argv: str) -> BudgetPolicy | None:
    return cli.config_from_args(cli.build_parser().parse_args(list(argv))).budget


def test_the_budget_flags_become_the_policy() -> None:
    assert budget_flags() == BudgetPolicy()
    policy = budget_flags("--sekoia-budget", "8", "--sekoia-budget-host", "EU.sekoia.io=2.5")
    assert policy is not None and policy.budget_for("eu.sekoia.io") == 2.5 and policy.budget_for("x") == 8
    assert budget_flags("--sekoia-budget", "0") is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sekoia-budget-host", "api.sekoia.io"], "--sekoia-budget-host 'api.sekoia.io' must be HOST=RPS"),
        (["--sekoia-budget-host", "a=-1"], "must be HOST=RPS"),
        (["--sekoia-budget", "-1"], "--sekoia-budget must be between 0"),
        (
            ["--sekoia-budget-floor", "9"],
            "--sekoia-budget-floor must be positive and at most --sekoia-budget",
        ),
        (["--sekoia-budget-headroom", "1"], "--sekoia-budget-headroom must be a fraction"),
    ],
)
def test_bad_budget_flags_say_which_and_why(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        budget_flags(*argv)
