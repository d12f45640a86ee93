"""Fuzz properties of live-stream event parsing (`connector_runtime.stream.events`).

`parse_event` documents that it never raises: malformed input becomes IGNORE with a reason. It runs
in pycti's listener thread, where an escaping exception stops the stream, and the event it failed on
is never committed, so the next run would fail on it again. An accepted event then goes through the
delivery engine's pure per-indicator steps (conversion, the shared fields of its values), where an
exception is fatal to the runtime for the same reason: those steps are covered here as well, fed
with whatever the parser lets through.

tests/runtime/test_events.py has the example-based decisions and a first arbitrary-text property;
this file adds JSON-shaped garbage, deep nesting, every encoding the parser accepts, and exact
decisions for well-formed create/update/delete/merge events.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from connector_runtime.config import DescriptionMode, ValidityGranularity
from connector_runtime.conversion import convert_indicator, reasons
from connector_runtime.conversion.types import ALL_TYPES
from connector_runtime.delivery.grouping import SharedFieldsPolicy, round_valid_until
from connector_runtime.stream.events import (
    OPENCTI_EXTENSION,
    Action,
    StreamEvent,
    opencti_url_of,
    parse_event,
)
from connector_runtime.stream.listener import report_undeliverable

EVENT_NAMES = ["create", "update", "delete", "merge"]
# The reasons parse_event gives; any other event name is ignored as `event-<name>`.
IGNORE_REASONS = {
    "malformed-json",
    "malformed-payload",
    "not-an-indicator",
    "not-stix-pattern",
    "malformed-indicator",
    "merge",
}
OPENCTI_URL = "https://opencti.example/"

ANY_CHAR = st.one_of(st.characters(codec=None, exclude_categories=()), st.characters(categories=["Cs"]))
# A list joined rather than st.text: st.text merges the two alphabets and loses the surrogates.
ANY_TEXT = st.lists(ANY_CHAR, max_size=30).map("".join)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(10**40), 10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    ANY_TEXT,
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(ANY_TEXT, inner, max_size=4)),
    max_leaves=10,
)
# The fields parse_event gates on, with a value that passes and values that come close.
GATES: dict[str, tuple[Any, st.SearchStrategy[Any]]] = {
    "type": ("indicator", st.sampled_from(["Indicator", "malware", ""])),
    "pattern_type": ("stix", st.sampled_from(["STIX", "yara", "sigma"])),
    "pattern": ("[ipv4-addr:value = '1.2.3.4']", st.sampled_from(["[url:value = 'http://a/\ud800']", "[x"])),
    "id": ("indicator--1", st.sampled_from(["", "indicator--\ud800"])),
}
# The fields the delivery steps read once an event is accepted, with likely and awkward values.
DELIVERY_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "revoked": st.sampled_from([True, False, "true", 1]),
    "valid_from": st.sampled_from(["2024-01-01T00:00:00Z", "not a date"]),
    "valid_until": st.sampled_from(
        [
            "2030-06-15T12:30:00Z",
            "9999-12-31T23:59:59Z",
            "9999-12-31T20:00:00-05:00",
            "0001-01-01T00:00:00+01:00",
            "2030-02-30T00:00:00Z",
        ]
    ),
    "kill_chain_phases": st.sampled_from(
        [[{"kill_chain_name": "mitre", "phase_name": "recon"}], [{"kill_chain_name": "x"}], ["x"], "x"]
    ),
    "extensions": st.sampled_from(
        [
            {OPENCTI_EXTENSION: {"id": "abc"}},
            {OPENCTI_EXTENSION: "abc"},
            {OPENCTI_EXTENSION: {"id": 5}},
            {OPENCTI_EXTENSION: []},
            [1],
            "x",
            5,
        ]
    ),
}

DECOY_OPS = st.one_of(
    # Operations that must not be read as the previous pattern: other paths, other verbs, no text.
    st.fixed_dictionaries(
        {"op": st.sampled_from(["replace", "add"]), "path": st.sampled_from(["/name", "/patterns", "/x"])},
        optional={"value": JSON_SCALARS},
    ),
    st.fixed_dictionaries({"op": st.sampled_from(["remove", "test", "move"]), "path": st.just("/pattern")}),
    st.fixed_dictionaries(
        {"op": st.sampled_from(["replace", "add"]), "path": st.just("/pattern"), "value": st.integers()}
    ),
    JSON_SCALARS,
)


@st.composite
def near_indicators(draw: st.DrawFn) -> dict[str, Any]:
    """Indicator objects that mostly pass the gates, so that the delivery steps see odd fields."""
    obj = draw(st.dictionaries(ANY_TEXT, JSON_VALUES, max_size=2))
    for key, (valid, close) in GATES.items():
        # sampled_from over a weighted list: mostly the passing value, sometimes a near miss.
        choice = draw(st.sampled_from(["valid"] * 6 + ["close", "anything", "absent"]))
        if choice == "valid":
            obj[key] = valid
        elif choice != "absent":
            obj[key] = draw(close if choice == "close" else JSON_VALUES)
    for key, likely in DELIVERY_FIELDS.items():
        choice = draw(st.sampled_from(["absent", "likely", "likely", "anything"]))
        if choice != "absent":
            obj[key] = draw(likely if choice == "likely" else JSON_VALUES)
    return obj


@st.composite
def payloads(draw: st.DrawFn) -> str | bytes | None:
    """Anything the data field of an SSE message could hold, biased towards near-valid events."""
    shape = draw(st.sampled_from(["none", "text", "bytes", "json", "deep", "near", "near", "near-bytes"]))
    if shape == "none":
        return None
    if shape == "text":
        return draw(ANY_TEXT)
    if shape == "bytes":
        return draw(st.binary(max_size=40))
    if shape == "json":
        return json.dumps(draw(JSON_VALUES))
    if shape == "deep":
        # Nesting deeper than the JSON decoder's recursion allows, as arrays or objects, possibly
        # under the `data` key where the parser looks first.
        depth = draw(st.integers(900, 20000))
        opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
        nested = opener * depth + "1" + closer * depth
        return draw(st.sampled_from([nested, '{"data": ' + nested + "}"]))
    payload = draw(st.dictionaries(ANY_TEXT, JSON_VALUES, max_size=2))
    payload["data"] = draw(near_indicators()) if draw(st.sampled_from(range(6))) else draw(JSON_VALUES)
    if draw(st.booleans()):
        payload["context"] = draw(
            st.one_of(JSON_VALUES, st.fixed_dictionaries({"reverse_patch": st.lists(DECOY_OPS, max_size=3)}))
        )
    if shape == "near-bytes":
        # json.loads detects UTF-8, UTF-16 and UTF-32 in bytes; surrogates only survive as escapes.
        encoding = draw(st.sampled_from(["utf-8", "utf-16", "utf-32"]))
        return json.dumps(payload).encode(encoding)
    return json.dumps(payload, ensure_ascii=draw(st.booleans()))


def assert_well_formed(event: StreamEvent, name: str, event_id: str) -> None:
    """Every event, whatever the input: the decision is one of three, and it is explained."""
    assert isinstance(event, StreamEvent)
    assert (event.name, event.event_id) == (name, event_id)
    assert event.action in set(Action)
    if event.action is Action.IGNORE:
        assert isinstance(event.ignore_reason, str) and event.ignore_reason
        assert event.ignore_reason in IGNORE_REASONS or event.ignore_reason.startswith("event-")
        assert event.previous_pattern is None
        if event.ignore_reason == "not-stix-pattern":
            # Kept on the event so that the runtime reports the indicator it cannot deliver.
            indicator = event.indicator
            assert isinstance(indicator, dict) and indicator.get("type") == "indicator"
            assert indicator.get("pattern_type") != "stix" and isinstance(indicator.get("id"), str)
            assert event.indicator_id == indicator["id"]
        else:
            assert event.indicator is None and event.indicator_id is None
        return
    assert event.ignore_reason is None
    indicator = event.indicator
    assert isinstance(indicator, dict)
    assert indicator.get("type") == "indicator" and indicator.get("pattern_type") == "stix"
    assert isinstance(indicator.get("pattern"), str) and isinstance(indicator.get("id"), str)
    assert event.indicator_id == indicator["id"]
    assert event.previous_pattern is None or isinstance(event.previous_pattern, str)
    if event.previous_pattern is not None:
        assert event.action is Action.PUSH and name == "update"


def assert_deliverable(event: StreamEvent) -> None:
    """What the runtime does next with the event never raises, in every configuration: report an
    indicator it cannot deliver, or run the delivery engine's pure steps on an accepted one."""
    if event.indicator is None:
        return
    if event.action is Action.IGNORE:
        report_undeliverable(event)
        return
    indicator = event.indicator
    conversion = convert_indicator(indicator)
    assert all(skipped.reason in reasons.ALL_REASONS for skipped in conversion.skipped)
    for value in conversion.values:
        value.value.encode("utf-8")  # the JSON body and the revocation search are UTF-8
    url = opencti_url_of(indicator, OPENCTI_URL)
    assert url is None or url.startswith(OPENCTI_URL.rstrip("/") + "/dashboard/")
    for mode in DescriptionMode:
        for validity in ValidityGranularity:
            policy = SharedFieldsPolicy(mode, validity, OPENCTI_URL, "live", "sync")
            for sekoia_type in sorted(ALL_TYPES):
                shared = policy.for_value(indicator, sekoia_type)
                assert shared.type == sekoia_type
                assert shared.valid_until is None or isinstance(shared.valid_until, str)


@given(
    st.one_of(st.sampled_from([*EVENT_NAMES, "heartbeat", ""]), ANY_TEXT),
    st.one_of(st.just("1700000000000-0"), ANY_TEXT),
    payloads(),
)
@example("create", "1-0", "[" * 5000 + "]" * 5000)  # escaped as RecursionError before the fix
@example("update", "1-0", '{"data": ' + '{"a":' * 3000 + "1" + "}" * 3000 + "}")
@example(  # a non-object `extensions` made the description's URL raise AttributeError
    "create",
    "1-0",
    json.dumps(
        {
            "data": {
                "type": "indicator",
                "pattern_type": "stix",
                "pattern": "[x]",
                "id": "i",
                "extensions": [1],
            }
        }
    ),
)
@example(  # a far-future valid_until overflowed the rounding of every granularity but exact/none
    "create",
    "1-0",
    json.dumps(
        {
            "data": {
                "type": "indicator",
                "pattern_type": "stix",
                "pattern": "[ipv4-addr:value = '1.2.3.4']",
                "id": "i",
                "valid_until": "9999-12-31T23:59:59Z",
            }
        }
    ),
)
def test_any_payload_gives_an_explained_decision_and_never_raises(
    name: str, event_id: str, data: str | bytes | None
) -> None:
    event = parse_event(name, event_id, data)
    assert_well_formed(event, name, event_id)
    assert_deliverable(event)


def _utf8_encodable(text: str | bytes | None) -> bool:
    # A lone surrogate in raw text has no UTF-8 form to compare with.
    return isinstance(text, str) and all(not "\ud800" <= char <= "\udfff" for char in text)


@given(st.sampled_from(EVENT_NAMES), payloads().filter(_utf8_encodable))
def test_text_and_its_utf8_bytes_decide_the_same(name: str, data: str) -> None:
    # pycti hands over text; the signature also takes bytes, which must not change the decision.
    assert parse_event(name, "1-0", data.encode("utf-8")) == parse_event(name, "1-0", data)


# --- well-formed events -------------------------------------------------------------------------

PATTERNS = st.sampled_from(
    [
        "[ipv4-addr:value = '198.51.100.7']",
        "[domain-name:value = 'evil.example' OR url:value = 'http://evil.example/a']",
        "[file:hashes.'SHA-256' = '" + "ab" * 32 + "']",
        "[mac-addr:value = '00:11:22:33:44:55']",
        "not even a pattern",
    ]
)
INDICATOR_IDS = st.uuids().map(lambda value: f"indicator--{value}")


@st.composite
def well_formed_events(draw: st.DrawFn) -> tuple[str, str, dict[str, Any], str | None]:
    """(event name, data, the indicator, the previous pattern an update must report)."""
    name = draw(st.sampled_from(EVENT_NAMES))
    indicator: dict[str, Any] = {
        "id": draw(INDICATOR_IDS),
        "type": "indicator",
        "spec_version": "2.1",
        "pattern_type": "stix",
        "pattern": draw(PATTERNS),
        "name": draw(st.text(max_size=20)),
        "extensions": {OPENCTI_EXTENSION: {"id": str(draw(st.uuids()))}},
    }
    if draw(st.booleans()):
        indicator["revoked"] = draw(st.booleans())
    if draw(st.booleans()):
        start = draw(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
        indicator["valid_from"] = f"{start:%Y-%m-%dT%H:%M:%S}Z"
        indicator["valid_until"] = f"{start + timedelta(days=draw(st.integers(1, 3650))):%Y-%m-%dT%H:%M:%S}Z"
    previous = draw(st.one_of(st.none(), PATTERNS))
    reverse_patch = draw(st.lists(DECOY_OPS, max_size=3))
    if previous is not None:
        position = draw(st.integers(0, len(reverse_patch)))
        reverse_patch.insert(
            position, {"op": draw(st.sampled_from(["replace", "add"])), "path": "/pattern", "value": previous}
        )
    payload: dict[str, Any] = {"version": "4", "type": name, "data": indicator}
    if draw(st.booleans()) or previous is not None:
        payload["context"] = {"reverse_patch": reverse_patch}
    if draw(st.booleans()):
        payload["origin"] = {"user_id": str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))}
    data = json.dumps(payload, ensure_ascii=draw(st.booleans()))
    return name, data, indicator, previous if name == "update" else None


@given(well_formed_events(), st.text(min_size=1, max_size=20))
def test_well_formed_events_get_the_documented_decision(
    case: tuple[str, str, dict[str, Any], str | None], event_id: str
) -> None:
    name, data, indicator, previous = case
    event = parse_event(name, event_id, data)
    assert_well_formed(event, name, event_id)
    if name == "merge":
        # A merge keeps the target object, whose values arrive as the target's own update.
        assert (event.action, event.ignore_reason) == (Action.IGNORE, "merge")
        return
    expected = Action.REVOKE if name == "delete" or indicator.get("revoked") is True else Action.PUSH
    assert event.action is expected
    assert event.indicator == indicator and event.indicator_id == indicator["id"]
    # Only a pushed update carries the pattern it replaced, read from the reverse patch.
    assert event.previous_pattern == (previous if expected is Action.PUSH else None)
    internal_id = indicator["extensions"][OPENCTI_EXTENSION]["id"]
    assert opencti_url_of(indicator, OPENCTI_URL) == (
        f"https://opencti.example/dashboard/observations/indicators/{internal_id}"
    )
    assert_deliverable(event)


RFC3339_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
# Fixed offsets, as timestamps carry them (and no dependency on the machine's time zone database).
OFFSETS = st.timedeltas(
    min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
).map(lambda offset: timezone(timedelta(minutes=offset // timedelta(minutes=1))))


@given(
    st.one_of(
        st.datetimes(timezones=OFFSETS).map(lambda when: when.isoformat()),
        st.datetimes().map(lambda when: when.isoformat() + "Z"),
        st.sampled_from(
            ["9999-12-31T23:59:59Z", "9999-12-31T23:59:59.999999+00:00", "0001-01-01T00:00:00+14:00"]
        ),
        ANY_TEXT,
    ),
    st.sampled_from(list(ValidityGranularity)),
)
@example("9999-12-31T23:59:59Z", ValidityGranularity.MONTH)  # OverflowError before the fix
@example("0001-01-01T00:00:00+01:00", ValidityGranularity.HOUR)
@example("0999-05-05T10:00:00Z", ValidityGranularity.MONTH)  # was rounded to "999-06-01T00:00:00Z"
def test_valid_until_rounding_never_raises_nor_shortens_validity(
    raw: str, granularity: ValidityGranularity
) -> None:
    rounded = round_valid_until(raw, granularity)
    if granularity is ValidityGranularity.NONE or not raw.strip():
        assert rounded is None
        return
    assert isinstance(rounded, str)
    try:
        given_at = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        assert rounded == raw  # not a timestamp Python reads: passed on for Sekoia to judge
        return
    if granularity is ValidityGranularity.EXACT:
        assert rounded == raw
        return
    if given_at.tzinfo is None:
        given_at = given_at.replace(tzinfo=UTC)
    try:
        # Within a month of the end of the calendar there may be no boundary left to round up to.
        at_edge = given_at.astimezone(UTC) > datetime.max.replace(tzinfo=UTC) - timedelta(days=32)
    except OverflowError:  # not even representable in UTC
        at_edge = True
    if at_edge and rounded == raw:
        return
    # Otherwise an RFC 3339 UTC timestamp (four-digit year, `Z`), rounded up and never down.
    assert RFC3339_UTC.fullmatch(rounded), rounded
    assert datetime.fromisoformat(rounded.replace("Z", "+00:00")) >= given_at
