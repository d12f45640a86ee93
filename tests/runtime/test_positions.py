"""The committed position never passes an event whose effect is not acknowledged."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from connector_runtime.delivery.positions import PositionTracker, event_id_time, parse_event_id


def test_commits_only_the_completed_prefix() -> None:
    commits: list[str] = []
    tracker = PositionTracker("0-0", on_commit=commits.append)
    a, b, c = (tracker.begin(f"100-{i}") for i in range(3))
    tracker.complete(b)
    assert tracker.committed == "0-0"
    tracker.complete(a)
    assert tracker.committed == "100-1"
    tracker.complete(c)
    assert tracker.committed == "100-2"
    assert commits == ["100-1", "100-2"]


def test_heartbeat_moves_the_position_only_when_nothing_is_pending() -> None:
    tracker = PositionTracker("0-0")
    ticket = tracker.begin("100-0")
    tracker.observe_position("200-0")
    assert tracker.committed == "0-0"
    tracker.complete(ticket)
    tracker.observe_position("200-0")
    assert tracker.committed == "200-0"
    tracker.observe_position("150-0")  # never backwards
    assert tracker.committed == "200-0"


def test_a_shared_id_is_committed_only_when_every_event_carrying_it_is_done() -> None:
    tracker = PositionTracker("0-0")
    dependency = tracker.begin("100-0")
    main = tracker.begin("100-0")
    tracker.complete(dependency)
    assert tracker.committed == "0-0"
    tracker.complete(main)
    assert tracker.committed == "100-0"


def test_ids_compare_numerically() -> None:
    assert parse_event_id("1700000000000-10") > parse_event_id("1700000000000-9")
    assert event_id_time("1700000000000-0") == 1_700_000_000.0
    assert event_id_time("0-0") is None
    assert event_id_time("garbage") is None


@given(st.integers(min_value=1, max_value=60), st.randoms(use_true_random=False))
def test_committed_position_is_always_a_fully_acknowledged_prefix(count: int, rnd: random.Random) -> None:
    tracker = PositionTracker("0-0")
    tickets = [tracker.begin(f"{1000 + i}-0") for i in range(count)]
    done: set[int] = set()
    for index in rnd.sample(range(count), count):
        tracker.complete(tickets[index])
        done.add(index)
        committed = tracker.committed
        assert committed is not None
        ms = parse_event_id(committed)[0]
        position = ms - 1000 if ms else -1
        # everything up to the committed position is done...
        assert all(i in done for i in range(position + 1))
        # ...and the position is as far as the done prefix allows
        prefix = 0
        while prefix in done:
            prefix += 1
        assert position == prefix - 1
