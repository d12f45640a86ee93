"""Shared per-request fields: validity rounding, description modes, the coarsening ladder and
the pending pool that forms requests from it."""

from __future__ import annotations

from connector_runtime.config import DescriptionMode, ValidityGranularity
from connector_runtime.delivery.coarsening import BudgetMeter, Ladder, Level, coarsened_fields
from connector_runtime.delivery.grouping import SharedFieldsPolicy, kill_chain_of, round_valid_until
from connector_runtime.delivery.pending import Pool, choose
from connector_runtime.sekoia.models import NewValue, SharedFields
from connector_runtime.stream.events import OPENCTI_EXTENSION


def test_valid_until_is_rounded_up_never_down() -> None:
    assert round_valid_until("2026-01-01T10:20:00Z", ValidityGranularity.DAY) == "2026-01-02T00:00:00Z"
    assert round_valid_until("2026-01-01T00:00:00Z", ValidityGranularity.DAY) == "2026-01-01T00:00:00Z"
    assert round_valid_until("2026-01-01T10:20:00.123Z", ValidityGranularity.HOUR) == "2026-01-01T11:00:00Z"
    assert round_valid_until("2026-01-01T10:20:00Z", ValidityGranularity.EXACT) == "2026-01-01T10:20:00Z"
    assert round_valid_until("2026-01-01T10:20:00Z", ValidityGranularity.WEEK) == "2026-01-05T00:00:00Z"
    assert round_valid_until("2026-01-05T00:00:00Z", ValidityGranularity.WEEK) == "2026-01-05T00:00:00Z"
    assert round_valid_until("2026-01-31T10:20:00Z", ValidityGranularity.MONTH) == "2026-02-01T00:00:00Z"
    assert round_valid_until("2026-12-02T00:00:00Z", ValidityGranularity.MONTH) == "2027-01-01T00:00:00Z"
    assert round_valid_until("2026-02-01T00:00:00Z", ValidityGranularity.MONTH) == "2026-02-01T00:00:00Z"
    assert round_valid_until("2026-02-01T00:00:00Z", ValidityGranularity.NONE) is None
    assert round_valid_until(None, ValidityGranularity.DAY) is None
    assert round_valid_until("soon", ValidityGranularity.DAY) == "soon"


def test_kill_chain_is_a_sorted_hashable_tuple() -> None:
    phases = [
        {"kill_chain_name": "b", "phase_name": "x"},
        {"kill_chain_name": "a", "phase_name": "y"},
        {"kill_chain_name": "a", "phase_name": "y"},
        {"bogus": 1},
    ]
    assert kill_chain_of({"kill_chain_phases": phases}) == (("a", "y"), ("b", "x"))


def test_stream_description_lets_indicators_share_a_request() -> None:
    policy = SharedFieldsPolicy(
        DescriptionMode.STREAM, ValidityGranularity.DAY, "https://cti", "live", "sync"
    )
    one = {"valid_until": "2026-01-01T10:00:00Z", "extensions": {OPENCTI_EXTENSION: {"id": "1"}}}
    two = {"valid_until": "2026-01-01T18:00:00Z", "extensions": {OPENCTI_EXTENSION: {"id": "2"}}}
    assert policy.for_value(one, "ipv4-addr.value") == policy.for_value(two, "ipv4-addr.value")
    assert policy.for_value(one, "ipv4-addr.value") != policy.for_value(one, "domain-name.value")


def test_indicator_url_description_is_the_seed_behaviour() -> None:
    policy = SharedFieldsPolicy(
        DescriptionMode.INDICATOR_URL, ValidityGranularity.EXACT, "https://cti", "live", "sync"
    )
    shared = policy.for_value({"extensions": {OPENCTI_EXTENSION: {"id": "42"}}}, "url.value")
    assert shared.description == "https://cti/dashboard/observations/indicators/42"
    none = SharedFieldsPolicy(DescriptionMode.NONE, ValidityGranularity.EXACT, "https://cti", "live", "sync")
    assert none.for_value({}, "url.value").description is None


# -- the coarsening ladder and the pending pool --------------------------------------------------

IPV4, DOMAIN = "ipv4-addr.value", "domain-name.value"
C2 = (("mitre-attack", "command-and-control"),)
EXEC = (("mitre-attack", "execution"),)


def _fields(
    valid_until: str | None, phases: tuple = (), type_: str = IPV4, description: str | None = "s"
) -> SharedFields:
    return SharedFields(type_, valid_until, phases, description)


def test_each_level_lets_more_values_share_a_request_and_says_with_what() -> None:
    ladder = Ladder(ValidityGranularity.MONTH, Level.MERGED, "stream")
    one = _fields("2026-03-03T10:00:00Z", C2, description="https://cti/1")
    two = _fields("2026-03-20T08:00:00Z", C2, description="https://cti/1")
    three = _fields("2026-07-01T09:00:00Z", C2, description="https://cti/1")
    four = _fields("2026-05-01T00:00:00Z", EXEC, description="https://cti/2")
    keys = [ladder.keys(f) for f in (one, two, three, four)]
    assert len({k[Level.EXACT] for k in keys}) == 4
    assert keys[0][Level.ROUNDED] == keys[1][Level.ROUNDED] != keys[2][Level.ROUNDED]
    assert keys[0][Level.WIDENED] == keys[2][Level.WIDENED] != keys[3][Level.WIDENED]
    assert len({k[Level.MERGED] for k in keys}) == 1

    assert ladder.request_fields([one, two], Level.ROUNDED).valid_until == "2026-04-01T00:00:00Z"
    widened = ladder.request_fields([one, two, three], Level.WIDENED)
    assert widened.valid_until == "2026-08-01T00:00:00Z" and widened.kill_chain_phases == C2
    merged = ladder.request_fields([one, four], Level.MERGED)
    assert merged.valid_until == "2026-05-01T00:00:00Z"
    assert merged.kill_chain_phases == tuple(sorted(C2 + EXEC))
    assert merged.description == "stream"
    assert coarsened_fields(one, merged) == ("valid_until", "kill_chain_phases", "description")
    assert coarsened_fields(four, merged) == ("kill_chain_phases", "description")


def test_values_that_must_differ_never_share_a_key() -> None:
    ladder = Ladder(ValidityGranularity.MONTH, Level.MERGED, None)
    top = Level.MERGED
    timed = ladder.keys(_fields("2026-03-03T10:00:00Z"))[top]
    assert ladder.keys(_fields(None))[top] != timed  # "no expiry" is never given one
    assert ladder.keys(_fields("soon"))[top] != timed  # not comparable: kept apart
    assert ladder.keys(_fields("2026-03-03T10:00:00Z", C2))[top] != timed  # phases never added
    assert ladder.keys(_fields("2026-03-03T10:00:00Z", type_=DOMAIN))[top] != timed
    exact = Ladder(ValidityGranularity.MONTH, Level.EXACT, None)
    assert len(exact.keys(_fields("2026-03-03T10:00:00Z"))) == 1


def test_pool_coalesces_a_repush_and_a_revocation_withdraws_it() -> None:
    pool = Pool(Ladder(), batch_size=2)
    first, second = object(), object()
    pool.add(NewValue("1.1.1.1", IPV4), _fields("2026-03-03T10:00:00Z"), first, set(), 0.0)
    pool.add(NewValue("1.1.1.1", IPV4), _fields("2026-09-03T10:00:00Z"), second, set(), 5.0)
    entry = pool.get("1.1.1.1")
    assert entry is not None and len(pool) == 1
    assert entry.fields.valid_until == "2026-09-03T10:00:00Z" and entry.owners == [first, second]
    assert entry.since == 0.0  # keeps its place: its first event has waited since then
    assert pool.remove("1.1.1.1") is entry and len(pool) == 0 and pool.oldest() is None


def _pool_with(values: dict[str, SharedFields], batch_size: int = 3) -> Pool:
    pool = Pool(Ladder(ValidityGranularity.MONTH, Level.MERGED, None), batch_size)
    for index, (value, fields) in enumerate(values.items()):
        pool.add(NewValue(value, fields.type), fields, object(), set(), float(index) / 100)
    return pool


def test_choose_fills_requests_at_the_finest_level_that_can() -> None:
    same_month = {f"10.0.0.{i}": _fields(f"2026-03-0{i + 1}T10:00:00Z") for i in range(3)}
    pool = _pool_with(same_month)
    assert choose(pool, 0.1, linger=1, max_linger=30, budget_share=1.0, idle_share=0.5)[0] is Level.ROUNDED
    spread = {f"10.0.0.{i}": _fields(f"2026-0{i + 1}-02T10:00:00Z") for i in range(3)}
    assert choose(_pool_with(spread), 0.1, 1, 30, 1.0, 0.5)[0] is Level.WIDENED
    chains = {
        "10.0.0.1": _fields("2026-01-02T10:00:00Z", C2),
        "10.0.0.2": _fields("2026-01-02T10:00:00Z", EXEC),
    }
    chains["10.0.0.3"] = _fields("2026-01-02T10:00:00Z", EXEC)
    assert choose(_pool_with(chains), 0.1, 1, 30, 1.0, 0.5)[0] is Level.MERGED


def test_choose_spends_idle_budget_on_latency_and_a_scarce_one_on_fuller_requests() -> None:
    pool = _pool_with(
        {"10.0.0.1": _fields("2026-01-02T10:00:00Z"), "10.0.0.2": _fields("2026-05-02T10:00:00Z")}
    )
    assert choose(pool, 0.5, linger=1, max_linger=30, budget_share=0.0, idle_share=0.5) is None  # lingering
    level, key = choose(pool, 1.5, linger=1, max_linger=30, budget_share=0.2, idle_share=0.5)
    assert level is Level.EXACT and pool.group_size(level, key) == 1
    level, key = choose(pool, 1.5, linger=1, max_linger=30, budget_share=0.9, idle_share=0.5)
    assert level is Level.MERGED and pool.group_size(level, key) == 2


def test_choose_sends_a_value_waiting_too_long_whatever_the_rest() -> None:
    values = {f"10.0.0.{i}": _fields(f"2026-0{i + 1}-02T10:00:00Z", C2 if i else ()) for i in range(4)}
    values["10.0.1.1"] = _fields("2026-01-02T10:00:00Z", C2)
    values["10.0.1.2"] = _fields("2026-01-02T10:00:00Z", C2)
    pool = _pool_with(values)
    level, key = choose(pool, 40.0, linger=1, max_linger=30, budget_share=1.0, idle_share=0.5)
    oldest = pool.oldest()
    assert oldest is not None and oldest.item.value == "10.0.0.0" and key == oldest.keys[level]


def test_budget_meter_counts_the_recent_window() -> None:
    meter = BudgetMeter(requests_per_second=5, window_seconds=2)
    for t in (0.0, 0.1, 0.2, 0.3, 0.4):
        meter.note(t)
    assert meter.share(0.5) == 0.5
    assert meter.share(2.25) == 0.2
    assert meter.share(10) == 0
