"""The runtime follows its share of the Sekoia budget live, from the answers to its status reports."""

from __future__ import annotations

from typing import Any

from connector_runtime.budget import BudgetFollower, share_from_status
from connector_runtime.delivery.coarsening import BudgetMeter
from connector_runtime.progress import StatusReporter
from connector_runtime.sekoia.ratelimit import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sends(limiter: RateLimiter, clock: FakeClock, seconds: float, step: float = 0.01) -> int:
    """How many requests the limiter lets through in `seconds` of (simulated) time."""
    sent, end = 0, clock.now + seconds
    while clock.now < end:
        if limiter._try_take() <= 0:
            sent += 1
        clock.now += step
    return sent


def test_the_limiter_adopts_a_new_rate_at_once_without_a_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(5.0, burst=1, clock=clock)
    assert 4 <= sends(limiter, clock, 1.0) <= 5
    limiter.set_rate(1.0)
    assert sends(limiter, clock, 10.0) <= 10
    limiter.set_rate(4.0)
    assert 35 <= sends(limiter, clock, 10.0) <= 40


def test_share_is_read_only_from_a_positive_number() -> None:
    assert share_from_status({"budget": {"requestsPerSecond": 1.25}}) == 1.25
    for status in (
        {},
        {"budget": None},
        {"budget": {"requestsPerSecond": 0}},
        {"budget": {"requestsPerSecond": "9"}},
    ):
        assert share_from_status(status) is None
    assert share_from_status({"budget": {"requestsPerSecond": True}}) is None


def test_the_follower_applies_the_share_capped_by_the_ceiling_and_keeps_the_last_one() -> None:
    clock = FakeClock()
    limiter = RateLimiter(5.0, burst=1, clock=clock)
    meter = BudgetMeter(5.0)
    follower = BudgetFollower(5.0, [limiter.set_rate, meter.set_rate])
    assert follower.observe({"budget": {"requestsPerSecond": 0.9}}) == 0.9
    assert limiter.rate == 0.9 and meter.capacity == 0.9 * meter.window
    assert follower.observe({"budget": {"requestsPerSecond": 40}}) == 5.0
    assert follower.observe({"budget": {"requestsPerSecond": 2}}) == 2.0
    # The operator removed it (the sync is being suspended): the runtime stops at its last share.
    assert follower.observe({}) == 2.0
    assert limiter.rate == 2.0


def test_the_reporter_hands_the_patched_status_to_the_follower() -> None:
    seen: list[dict[str, Any]] = []

    class Api:
        def patch_status(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
            return {"status": {**body["status"], "budget": {"requestsPerSecond": 1.5}}}

    reporter = StatusReporter(
        "ns/feed", lambda: {"pendingEvents": 3}, 60, api_factory=Api, on_status=seen.append
    )
    assert reporter.report_once()
    assert seen == [{"progress": {"pendingEvents": 3}, "budget": {"requestsPerSecond": 1.5}}]


def test_the_limiter_is_ready_only_with_a_token_and_nobody_waiting() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0.5, burst=1, clock=clock)
    assert limiter.ready()
    assert limiter._try_take() == 0
    assert not limiter.ready()  # the next token comes in ~2 s
    clock.now += 2.1
    assert limiter.ready()
    limiter._waiting = 1  # another request is already queued for that token
    assert not limiter.ready()


def test_after_an_idle_interval_the_first_request_waits_a_random_part_of_one() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0.5, burst=1, clock=clock, idle_jitter=lambda: 0.25)
    clock.now += 10.0  # idle
    assert limiter._try_take() == (1.0 - 0.25) / limiter.effective_rate
    clock.now += 1.6
    assert limiter._try_take() == 0.0
    clock.now += 0.5  # busy: no jitter, the usual spacing
    assert 0 < limiter._try_take() < 2.0
