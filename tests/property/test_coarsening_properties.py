"""The coarsening ladder: whatever the values and the level, a request never changes a value's
type, never shortens its validity, and never mixes values whose shared fields must differ."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from connector_runtime.config import ValidityGranularity
from connector_runtime.delivery.coarsening import Ladder, Level, parse_validity
from connector_runtime.delivery.grouping import round_valid_until
from connector_runtime.delivery.pending import Pool, choose
from connector_runtime.sekoia.models import NewValue, SharedFields

TYPES = ["ipv4-addr.value", "domain-name.value", "url.value", "file.hashes"]
PHASES = [("mitre-attack", p) for p in ("execution", "persistence", "command-and-control")] + [
    ("lockheed-martin-cyber-kill-chain", "delivery")
]
VALIDITY = st.one_of(
    st.none(),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
        lambda when: when.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
    ),
    st.sampled_from(["9999-12-31T23:59:59Z", "soon", "2026-13-01"]),
)
FIELDS = st.builds(
    SharedFields,
    type=st.sampled_from(TYPES),
    valid_until=VALIDITY,
    kill_chain_phases=st.lists(st.sampled_from(PHASES), max_size=3, unique=True).map(
        lambda p: tuple(sorted(p))
    ),
    description=st.sampled_from([None, "stream", "https://cti/1", "https://cti/2"]),
)
LADDERS = st.builds(
    Ladder,
    coarse=st.sampled_from(
        [
            ValidityGranularity.HOUR,
            ValidityGranularity.DAY,
            ValidityGranularity.WEEK,
            ValidityGranularity.MONTH,
        ]
    ),
    top=st.sampled_from(list(Level)),
    fallback_description=st.sampled_from([None, "stream"]),
)


def assert_request_keeps_what_detection_needs(
    ladder: Ladder, level: Level, members: list[SharedFields], sent: SharedFields
) -> None:
    """The invariants of one request at ``level``."""
    for own in members:
        assert sent.type == own.type
        assert (sent.valid_until is None) == (own.valid_until is None)
        mine = parse_validity(own.valid_until)
        if own.valid_until is not None and mine is None:
            assert sent.valid_until == own.valid_until  # not comparable: passed on as given
        elif mine is not None:
            theirs = parse_validity(sent.valid_until)
            assert theirs is not None and theirs >= mine, "validity shortened"
        if level is Level.EXACT:
            assert sent == own
        if level is Level.ROUNDED:
            assert sent.valid_until == round_valid_until(own.valid_until, ladder.coarse)
        if level < Level.MERGED:
            assert sent.kill_chain_phases == own.kill_chain_phases
            assert sent.description == own.description
        else:
            assert set(own.kill_chain_phases) <= set(sent.kill_chain_phases)
            assert bool(sent.kill_chain_phases) == bool(own.kill_chain_phases)
            assert sent.description in (own.description, ladder.fallback_description)


@given(LADDERS, st.lists(FIELDS, min_size=1, max_size=40))
def test_every_group_at_every_level_keeps_type_and_validity(
    ladder: Ladder, fields: list[SharedFields]
) -> None:
    for level in range(ladder.top + 1):
        groups: dict[object, list[SharedFields]] = defaultdict(list)
        for item in fields:
            groups[ladder.keys(item)[level]].append(item)
        for members in groups.values():
            sent = ladder.request_fields(members, Level(level))
            assert_request_keeps_what_detection_needs(ladder, Level(level), members, sent)


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 30), FIELDS),
        st.tuples(st.just("remove"), st.integers(0, 30), st.none()),
        st.tuples(st.just("send"), st.floats(0, 1), st.floats(0, 1)),
    ),
    max_size=80,
)


@given(LADDERS, st.integers(1, 6), OPS)
def test_the_pool_sends_each_value_once_with_its_latest_fields(ladder: Ladder, batch: int, ops: list) -> None:
    pool = Pool(ladder, batch)
    latest: dict[str, SharedFields] = {}
    now = 0.0
    for op, arg, extra in ops:
        now += 0.25
        if op == "add":
            value = f"v{arg}"
            pool.add(NewValue(value, extra.type), extra, object(), set(), now)
            latest[value] = extra
        elif op == "remove":
            entry = pool.remove(f"v{arg}")
            assert (entry is None) == (latest.pop(f"v{arg}", None) is None)
        else:
            choice = choose(pool, now, linger=0.5, max_linger=2.0, budget_share=arg, idle_share=extra)
            if choice is None:
                continue
            level, key = choice
            taken = pool.take(level, key, batch)
            assert 1 <= len(taken) <= batch
            assert len({e.keys[level] for e in taken}) == 1, "one request mixes groups"
            members = [e.fields for e in taken]
            sent = ladder.request_fields(members, level)
            assert_request_keeps_what_detection_needs(ladder, level, members, sent)
            for entry in taken:
                assert latest.pop(entry.item.value) == entry.fields
        assert len(pool) == len(latest)
    while (oldest := pool.oldest()) is not None:
        for entry in pool.take(pool.levels[-1], oldest.keys[-1], batch):
            assert latest.pop(entry.item.value) == entry.fields
    assert not latest
