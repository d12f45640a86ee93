"""STIX pattern → Sekoia values: per type, operator and reason, the real APT31 data, properties."""

import ipaddress
import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector_runtime.conversion import (
    Conversion,
    SekoiaValue,
    Skipped,
    convert_indicator,
    convert_pattern,
    reasons,
)
from connector_runtime.conversion.fastpath import match_simple
from connector_runtime.conversion.parsing import parse_comparisons
from connector_runtime.conversion.types import (
    ALL_TYPES,
    DOMAIN_NAME,
    EMAIL_ADDR,
    FILE_HASHES,
    IPV4_ADDR,
    IPV6_ADDR,
    URL,
)

# The copy kept in the repository (byte-identical to the shared data set), so the tests travel with it.
DATA = Path(__file__).resolve().parents[2] / "testbed" / "data" / "sekoia-apt31-indicators.jsonl"
MD5 = "4640805c362b1e5bee5312514dd0ab2b"
SHA1 = "f743a235ebed3f1757074acbef2f0c8b2d3f833a"
SHA256 = "e1999a3e5a611312e16bb65bb5a880dfedbab8d4d2c0a5d3ed1ed926a3f63e94"
SHA512 = (
    "849f0c8d530ab7815e74a64b6837f43cee02112b1fd315459fdaa820e15a8ce1"
    "b8e2fca6284729b1712fa901c7c037fe4d3211d0553da3e8613e3ed9fb75e569"
)

# Deterministic runs; the parser is slow, so no per-example deadline.
PROPERTY = settings(derandomize=True, database=None, deadline=None, max_examples=300)


def values(pattern: str) -> list[tuple[str, str]]:
    return [(v.value, v.type) for v in convert_pattern(pattern).values]


def reasons_of(pattern: str) -> list[str]:
    return [s.reason for s in convert_pattern(pattern).skipped]


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


# --- one value per supported type -------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("[ipv4-addr:value = '185.130.165.59']", ("185.130.165.59", IPV4_ADDR)),
        ("[ipv4-addr:value = ' 10.0.0.1 ']", ("10.0.0.1", IPV4_ADDR)),
        ("[ipv4-addr:value = '10.0.0.1/32']", ("10.0.0.1", IPV4_ADDR)),
        ("[ipv6-addr:value = '2001:0DB8:0000:0000:0000:0000:0000:0001']", ("2001:db8::1", IPV6_ADDR)),
        ("[ipv6-addr:value = '2001:db8::1/128']", ("2001:db8::1", IPV6_ADDR)),
        ("[domain-name:value = 'WWW.Nas-TimeSync.com.']", ("www.nas-timesync.com", DOMAIN_NAME)),
        ("[domain-name:value = 'xn--bcher-kva.example']", ("xn--bcher-kva.example", DOMAIN_NAME)),
        ("[domain-name:value = 'Bücher.Example']", ("bücher.example", DOMAIN_NAME)),
        ("[hostname:value = 'Host-1.Corp.Example']", ("host-1.corp.example", DOMAIN_NAME)),
        ("[url:value = ' http://Example.com/A?b=C#D ']", ("http://Example.com/A?b=C#D", URL)),
        ("[url:value = 'http://x/it\\'s']", ("http://x/it's", URL)),
        ("[email-addr:value = ' John.Doe@Example.COM ']", ("John.Doe@example.com", EMAIL_ADDR)),
        (f"[file:hashes.MD5 = '{MD5.upper()}']", (MD5, FILE_HASHES)),
        (f"[file:hashes.md5 = '{MD5}']", (MD5, FILE_HASHES)),
        (f"[file:hashes.'SHA-1' = '{SHA1}']", (SHA1, FILE_HASHES)),
        (f"[file:hashes.SHA1 = '{SHA1}']", (SHA1, FILE_HASHES)),
        (f"[file:hashes.'SHA-256' = '{SHA256}']", (SHA256, FILE_HASHES)),
        (f"[file:hashes.SHA256 = ' {SHA256} ']", (SHA256, FILE_HASHES)),
        (f"[file:hashes.'SHA-512' = '{SHA512}']", (SHA512, FILE_HASHES)),
        (f"[file:hashes.SHA512 = '{SHA512}']", (SHA512, FILE_HASHES)),
        ("[ipv4-addr:'value' = '1.2.3.4']", ("1.2.3.4", IPV4_ADDR)),
        ("  [ ipv4-addr : value\t=\n'1.2.3.4' ]  ", ("1.2.3.4", IPV4_ADDR)),
    ],
)
def test_single_value_per_type(pattern: str, expected: tuple[str, str]) -> None:
    assert convert_pattern(pattern) == Conversion(values=(SekoiaValue(*expected),), skipped=())


def test_each_comparison_keeps_its_own_type() -> None:
    # The seed applied the first comparison's format to every value.
    pattern = (
        f"[ipv4-addr:value = '1.2.3.4' OR domain-name:value = 'evil.example' OR url:value = 'http://e/'"
        f" OR file:hashes.MD5 = '{MD5}' OR email-addr:value = 'a@evil.example' OR ipv6-addr:value = '::1']"
    )
    assert values(pattern) == [
        ("1.2.3.4", IPV4_ADDR),
        ("evil.example", DOMAIN_NAME),
        ("http://e/", URL),
        (MD5, FILE_HASHES),
        ("a@evil.example", EMAIL_ADDR),
        ("::1", IPV6_ADDR),
    ]


def test_in_gives_every_member_and_reports_each_rejected_member() -> None:
    conversion = convert_pattern(
        "[ipv4-addr:value IN ('1.1.1.1', '10.0.0.0/8', 'nope', 7, '2.2.2.2/32', ' ')]"
    )
    assert [v.value for v in conversion.values] == ["1.1.1.1", "2.2.2.2"]
    assert conversion.skipped == (
        Skipped("ipv4-addr:value IN ('10.0.0.0/8')", reasons.CIDR_RANGE),
        Skipped("ipv4-addr:value IN ('nope')", reasons.INVALID_VALUE),
        Skipped("ipv4-addr:value IN (7)", reasons.INVALID_VALUE),
        Skipped("ipv4-addr:value IN (' ')", reasons.EMPTY_VALUE),
    )


def test_identical_values_are_kept_once_in_first_seen_order() -> None:
    pattern = (
        "[domain-name:value = 'B.example' OR domain-name:value = 'a.example' OR domain-name:value = "
        "'b.example.' OR hostname:value = 'A.EXAMPLE' OR url:value = 'b.example']"
    )
    assert values(pattern) == [("b.example", DOMAIN_NAME), ("a.example", DOMAIN_NAME), ("b.example", URL)]


def test_observation_operators_and_qualifiers_keep_every_convertible_comparison() -> None:
    pattern = (
        "([ipv4-addr:value = '1.1.1.1'] AND [domain-name:value = 'a.example']) WITHIN 300 SECONDS "
        "FOLLOWEDBY [url:value = 'http://a/'] REPEATS 2 TIMES "
        "OR [ipv6-addr:value = '::2'] START t'2021-01-01T00:00:00Z' STOP t'2022-01-01T00:00:00Z'"
    )
    assert values(pattern) == [
        ("1.1.1.1", IPV4_ADDR),
        ("a.example", DOMAIN_NAME),
        ("http://a/", URL),
        ("::2", IPV6_ADDR),
    ]


def test_and_inside_an_observation_keeps_both_sides() -> None:
    pattern = "[domain-name:value = 'a.example' AND (ipv4-addr:value = '1.1.1.1' OR mac-addr:value = 'x')]"
    conversion = convert_pattern(pattern)
    assert [v.value for v in conversion.values] == ["a.example", "1.1.1.1"]
    assert conversion.skipped == (Skipped("mac-addr:value = 'x'", reasons.UNSUPPORTED_OBJECT_TYPE),)


# --- reasons -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("[ipv4-addr:value = '10.0.0.0/8']", reasons.CIDR_RANGE),
        ("[ipv4-addr:value = '10.0.0.1/31']", reasons.CIDR_RANGE),
        ("[ipv4-addr:value = '0.0.0.0/0']", reasons.CIDR_RANGE),
        ("[ipv6-addr:value = '2001:db8::/32']", reasons.CIDR_RANGE),
        ("[ipv6-addr:value = '2001:db8::1/127']", reasons.CIDR_RANGE),
        ("[mac-addr:value = '00:11:22:33:44:55']", reasons.UNSUPPORTED_OBJECT_TYPE),
        ("[windows-registry-key:key = 'HKEY_LOCAL_MACHINE\\\\Run']", reasons.UNSUPPORTED_OBJECT_TYPE),
        ("[IPV4-ADDR:value = '1.2.3.4']", reasons.UNSUPPORTED_OBJECT_TYPE),
        ("[x-opencti-cryptocurrency-wallet:value = 'abc']", reasons.UNSUPPORTED_OBJECT_TYPE),
        ("[file:name = 'evil.exe']", reasons.UNSUPPORTED_PROPERTY),
        ("[file:hashes.SSDEEP = '3:abc:def']", reasons.UNSUPPORTED_PROPERTY),
        ("[file:hashes.'SHA3-256' = 'ab']", reasons.UNSUPPORTED_PROPERTY),
        ("[file:size = '951312']", reasons.UNSUPPORTED_PROPERTY),
        ("[file:size = 951312]", reasons.UNSUPPORTED_PROPERTY),
        ("[file:mime_type = 'application/octet-stream']", reasons.UNSUPPORTED_PROPERTY),
        ("[file:hashes = 'abc']", reasons.UNSUPPORTED_PROPERTY),
        ("[ipv4-addr:resolves_to_refs[*].value = '00:11']", reasons.UNSUPPORTED_PROPERTY),
        ("[email-addr:display_name = 'Bob']", reasons.UNSUPPORTED_PROPERTY),
        ("[domain-name:value.x = 'a.example']", reasons.UNSUPPORTED_PROPERTY),
        ("[url:value LIKE 'http://%']", reasons.UNSUPPORTED_OPERATOR),
        ("[url:value MATCHES '^http']", reasons.UNSUPPORTED_OPERATOR),
        ("[ipv4-addr:value != '1.2.3.4']", reasons.UNSUPPORTED_OPERATOR),
        ("[ipv4-addr:value > '1.2.3.4']", reasons.UNSUPPORTED_OPERATOR),
        ("[ipv4-addr:value <= '1.2.3.4']", reasons.UNSUPPORTED_OPERATOR),
        ("[ipv4-addr:value ISSUBSET '10.0.0.0/8']", reasons.UNSUPPORTED_OPERATOR),
        ("[ipv4-addr:value ISSUPERSET '10.0.0.1']", reasons.UNSUPPORTED_OPERATOR),
        ("[EXISTS ipv4-addr:value]", reasons.UNSUPPORTED_OPERATOR),
        ("[ipv4-addr:value NOT = '1.2.3.4']", reasons.NEGATED),
        ("[ipv4-addr:value NOT IN ('1.2.3.4')]", reasons.NEGATED),
        ("[url:value NOT LIKE 'x']", reasons.NEGATED),
        ("[file:hashes.MD5 = 'abc']", reasons.INVALID_VALUE),
        (f"[file:hashes.MD5 = '{SHA256}']", reasons.INVALID_VALUE),
        (f"[file:hashes.'SHA-256' = '{MD5}']", reasons.INVALID_VALUE),
        (f"[file:hashes.SHA1 = '{SHA1[:-1]}g']", reasons.INVALID_VALUE),
        (f"[file:hashes.'SHA-512' = '{SHA512}0']", reasons.INVALID_VALUE),
        (f"[file:hashes.MD5 = h'{MD5}']", reasons.INVALID_VALUE),
        ("[ipv4-addr:value = '256.1.1.1']", reasons.INVALID_VALUE),
        ("[ipv4-addr:value = '01.2.3.4']", reasons.INVALID_VALUE),
        ("[ipv4-addr:value = '1.2.3']", reasons.INVALID_VALUE),
        ("[ipv4-addr:value = '::1']", reasons.INVALID_VALUE),
        ("[ipv4-addr:value = '1.2.3.4/33']", reasons.INVALID_VALUE),
        ("[ipv4-addr:value = '1.2.3.4/x']", reasons.INVALID_VALUE),
        ("[ipv4-addr:value = '300.1.1.1/24']", reasons.INVALID_VALUE),
        ("[ipv4-addr:value = 16909060]", reasons.INVALID_VALUE),
        ("[ipv6-addr:value = '1.2.3.4']", reasons.INVALID_VALUE),
        ("[ipv6-addr:value = 'fe80::1%eth0']", reasons.INVALID_VALUE),
        ("[ipv6-addr:value = '2001:db8::1/129']", reasons.INVALID_VALUE),
        ("[domain-name:value = 'a..example']", reasons.INVALID_VALUE),
        ("[domain-name:value = 'evil example.com']", reasons.INVALID_VALUE),
        ("[domain-name:value = 'http://evil.example/']", reasons.INVALID_VALUE),
        ("[domain-name:value = '.']", reasons.INVALID_VALUE),
        (f"[domain-name:value = '{'a' * 64}.example']", reasons.INVALID_VALUE),
        ("[domain-name:value = 'a.example\nb.example']", reasons.INVALID_VALUE),
        ("[url:value = 'http://a/\r\nhttp://b/']", reasons.INVALID_VALUE),
        ("[email-addr:value = 'no-at-sign.example']", reasons.INVALID_VALUE),
        ("[email-addr:value = 'a@b@c.example']", reasons.INVALID_VALUE),
        ("[email-addr:value = '@c.example']", reasons.INVALID_VALUE),
        ("[email-addr:value = 'Bob <bob@c.example>']", reasons.INVALID_VALUE),
        ("[email-addr:value = 'bob@']", reasons.EMPTY_VALUE),
        ("[ipv4-addr:value = '']", reasons.EMPTY_VALUE),
        ("[url:value = '   ']", reasons.EMPTY_VALUE),
        ("[file:hashes.MD5 = '\t']", reasons.EMPTY_VALUE),
        ("[ipv4-addr:value IN ()]", reasons.EMPTY_VALUE),
        ("", reasons.MALFORMED_PATTERN),
        ("ipv4-addr:value = '1.2.3.4'", reasons.MALFORMED_PATTERN),
        ("[ipv4-addr:value = '1.2.3.4'", reasons.MALFORMED_PATTERN),
        ("[ipv4-addr:value = '1.2.3.4'] garbage", reasons.MALFORMED_PATTERN),
        ("[ipv4-addr:value = 1.2.3.4]", reasons.MALFORMED_PATTERN),
        ("[file:hashes.SHA-256 = 'ab']", reasons.MALFORMED_PATTERN),
        ("[ipv4-addr:value = 'a\\nb']", reasons.MALFORMED_PATTERN),
        ("[ipv4-addr:value = '1.1.1.1'] START '2020' STOP '2021'", reasons.MALFORMED_PATTERN),
        ("rule x { condition: true }", reasons.MALFORMED_PATTERN),
    ],
)
def test_skip_reasons(pattern: str, reason: str) -> None:
    conversion = convert_pattern(pattern)
    assert conversion.values == ()
    assert [s.reason for s in conversion.skipped] == [reason]
    assert reason in reasons.ALL_REASONS


def test_skipped_comparison_is_the_text_as_written() -> None:
    conversion = convert_pattern("[file:hashes.SSDEEP  =  'x' OR file:size > 5]")
    assert conversion.skipped == (
        Skipped("file:hashes.SSDEEP  =  'x'", reasons.UNSUPPORTED_PROPERTY),
        Skipped("file:size > 5", reasons.UNSUPPORTED_PROPERTY),
    )


def test_malformed_pattern_is_reported_whole_and_bounded() -> None:
    assert convert_pattern("[oops").skipped == (Skipped("[oops", reasons.MALFORMED_PATTERN),)
    long = "[" + "x" * 5000
    (skipped,) = convert_pattern(long).skipped
    assert skipped.reason == reasons.MALFORMED_PATTERN
    assert len(skipped.comparison) <= 200


def test_absurd_nesting_is_malformed_not_a_crash() -> None:
    pattern = "(" * 3000 + "[ipv4-addr:value = '1.1.1.1']" + ")" * 3000
    assert reasons_of(pattern) == [reasons.MALFORMED_PATTERN]


def test_non_string_pattern_is_malformed() -> None:
    assert reasons_of(None) == [reasons.MALFORMED_PATTERN]  # type: ignore[arg-type]
    assert reasons_of(42) == [reasons.MALFORMED_PATTERN]  # type: ignore[arg-type]


# --- indicators --------------------------------------------------------------------------------


def indicator(**fields: object) -> dict[str, object]:
    return {"type": "indicator", "id": "indicator--1", "pattern_type": "stix", **fields}


def test_indicator_is_converted_through_its_pattern() -> None:
    assert convert_indicator(indicator(pattern="[url:value = 'http://a/']")).values == (
        SekoiaValue("http://a/", URL),
    )


def test_indicator_without_pattern_type_is_read_as_stix_2_0() -> None:
    obj = {"type": "indicator", "pattern": "[ipv4-addr:value = '1.2.3.4']"}
    assert convert_indicator(obj).values == (SekoiaValue("1.2.3.4", IPV4_ADDR),)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (indicator(pattern_type="yara", pattern="rule x {}"), Skipped("yara", reasons.NOT_STIX_PATTERN)),
        (indicator(pattern_type="sigma", pattern="title: x"), Skipped("sigma", reasons.NOT_STIX_PATTERN)),
        (indicator(pattern_type=None), Skipped("", reasons.NOT_STIX_PATTERN)),
        ({"type": "malware", "id": "malware--1"}, Skipped("malware", reasons.NOT_AN_INDICATOR)),
        ({"id": "x"}, Skipped("", reasons.NOT_AN_INDICATOR)),
        ([1, 2], Skipped("list", reasons.NOT_AN_INDICATOR)),
        (indicator(), Skipped("", reasons.MALFORMED_PATTERN)),
        (
            indicator(pattern=["[url:value = 'x']"]),
            Skipped("[\"[url:value = 'x']\"]", reasons.MALFORMED_PATTERN),
        ),
    ],
)
def test_indicators_that_cannot_convert(obj: object, expected: Skipped) -> None:
    assert convert_indicator(obj) == Conversion((), (expected,))  # type: ignore[arg-type]


# --- the real APT31 indicators -----------------------------------------------------------------


def load_data() -> list[dict[str, object]]:
    return [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]


def test_real_data_counts() -> None:
    objects = load_data()
    assert len(objects) == 104
    conversions = [convert_indicator(obj) for obj in objects]
    types = Counter(v.type for c in conversions for v in c.values)
    assert types == {IPV4_ADDR: 53, DOMAIN_NAME: 43, FILE_HASHES: 4 + 3 + 4}
    skipped = Counter(s.reason for c in conversions for s in c.skipped)
    assert skipped == {reasons.UNSUPPORTED_PROPERTY: 3, reasons.NOT_STIX_PATTERN: 2}
    assert sum(1 for c in conversions if not c.values) == 2


def test_real_data_single_value_indicators_give_their_name() -> None:
    singles = 0
    for obj in load_data():
        conversion = convert_indicator(obj)
        if obj["pattern_type"] == "stix" and " OR " not in str(obj["pattern"]):
            singles += 1
            assert conversion == Conversion((SekoiaValue(str(obj["name"]), conversion.values[0].type),))
            # These are the fast path's bread and butter.
            assert match_simple(str(obj["pattern"])) is not None
    assert singles == 100


def test_real_data_compound_hash_patterns() -> None:
    by_id = {obj["id"]: convert_indicator(obj) for obj in load_data()}
    compound = [c for c in by_id.values() if len(c.values) > 1]
    assert len(compound) == 2
    with_extras = next(c for c in compound if c.skipped)
    assert [v.value for v in with_extras.values] == [MD5, SHA1, SHA256]
    assert {v.type for v in with_extras.values} == {FILE_HASHES}
    assert with_extras.skipped == (
        Skipped(
            "file:hashes.SSDEEP = '12288:yxgkyyicj+btv8udax6uds1elhtymebjeqx00vjb:yxgkyy+bq/ds1mcr00vjb'",
            reasons.UNSUPPORTED_PROPERTY,
        ),
        Skipped("file:size = '951312'", reasons.UNSUPPORTED_PROPERTY),
        Skipped("file:mime_type = 'application/octet-stream'", reasons.UNSUPPORTED_PROPERTY),
    )
    # The other one carries MD5, SHA-1, SHA-256 and SHA-512 and nothing to skip.
    full = next(c for c in compound if not c.skipped)
    assert [len(v.value) for v in full.values] == [32, 40, 64, 128]


def test_real_data_yara_indicators() -> None:
    yara = [obj for obj in load_data() if obj["pattern_type"] == "yara"]
    assert len(yara) == 2
    for obj in yara:
        assert convert_indicator(obj) == Conversion((), (Skipped("yara", reasons.NOT_STIX_PATTERN),))


# --- properties --------------------------------------------------------------------------------

TOKENS = [*"[]():=!<>'\\.,/ *-_%\n\t0123456789abcdefABCDEF"]
TOKENS += ["ipv4-addr", "file", "hashes", "'SHA-256'", "value", "url", "AND", "OR", "NOT", "IN", "LIKE"]
TOKENS += ["EXISTS", "FOLLOWEDBY", "WITHIN", "SECONDS", "t'", "h'"]
PATTERNISH = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)


def check_well_formed(conversion: Conversion) -> None:
    assert isinstance(conversion, Conversion)
    for value in conversion.values:
        assert value.type in ALL_TYPES
        assert value.value and value.value == value.value.strip()
        assert "\n" not in value.value and "\r" not in value.value
    for skipped in conversion.skipped:
        assert skipped.reason in reasons.ALL_REASONS
    assert len(set(conversion.values)) == len(conversion.values)


@PROPERTY
@given(st.one_of(st.text(), PATTERNISH))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    check_well_formed(convert_pattern(text))
    check_well_formed(convert_pattern(f"[{text}]"))
    check_well_formed(convert_pattern(f"[ipv4-addr:value = '{text}']"))
    check_well_formed(convert_indicator({"type": "indicator", "pattern_type": "stix", "pattern": text}))


STRING_LITERAL = st.one_of(st.text(max_size=12), st.ip_addresses().map(str)).map(lambda t: f"'{escape(t)}'")
ANY_LITERAL = st.one_of(
    STRING_LITERAL,
    st.sampled_from(["1", "-2", "3.5", "true", "t'2021-01-01T00:00:00Z'", "h'ab'", "b'YWI='"]),
)
OBJECT_PATHS = st.sampled_from(
    [
        *("ipv4-addr:value", "ipv6-addr:value", "domain-name:value", "url:value", "email-addr:value"),
        *("file:hashes.MD5", "file:hashes.'SHA-256'", "file:name", "file:size", "mac-addr:value"),
        *("x-custom:value", "ipv4-addr:resolves_to_refs[*].value", "hostname:'value'"),
    ]
)


@st.composite
def random_comparison(draw: st.DrawFn) -> str:
    path = draw(OBJECT_PATHS)
    operator = draw(st.sampled_from(["=", "!=", ">", "<=", "LIKE", "MATCHES", "IN", "ISSUBSET", "EXISTS"]))
    negation = draw(st.sampled_from(["", "NOT "]))
    if operator == "EXISTS":
        return f"EXISTS {path}"
    if operator == "IN":
        members = draw(st.lists(ANY_LITERAL, max_size=3))
        return f"{path} {negation}IN ({', '.join(members)})"
    if operator in ("LIKE", "MATCHES", "ISSUBSET"):
        literal = draw(STRING_LITERAL)
    else:  # booleans are not orderable in the grammar
        literal = draw(ANY_LITERAL.filter(lambda text: operator in ("=", "!=") or text != "true"))
    return f"{path} {negation}{operator} {literal}"


@PROPERTY
@given(st.lists(st.lists(random_comparison(), min_size=1, max_size=3), min_size=1, max_size=3))
def test_random_valid_patterns_account_for_every_comparison(observations: list[list[str]]) -> None:
    pattern = " OR ".join("[" + " AND ".join(comparisons) + "]" for comparisons in observations)
    conversion = convert_pattern(pattern)
    check_well_formed(conversion)
    # Each comparison alone leaves at least one trace, and the whole pattern is exactly the sum of
    # its comparisons judged alone (values de-duplicated): nothing lost, nothing invented.
    alone = [convert_pattern(f"[{comparison}]") for comparisons in observations for comparison in comparisons]
    assert all(one.values or one.skipped for one in alone)
    assert reasons.MALFORMED_PATTERN not in {s.reason for one in alone for s in one.skipped}
    assert conversion.values == tuple(dict.fromkeys(v for one in alone for v in one.values))
    assert conversion.skipped == tuple(s for one in alone for s in one.skipped)


@st.composite
def judged_comparison(draw: st.DrawFn) -> tuple[str, SekoiaValue | Skipped]:
    """A comparison and the outcome it must have, computed independently of the converter."""
    kind = draw(st.sampled_from(["ipv4", "ipv6", "cidr", "hash", "domain", "unsupported", "operator"]))
    if kind == "ipv4":
        address = draw(st.ip_addresses(v=4))
        return f"ipv4-addr:value = '{address}'", SekoiaValue(str(address), IPV4_ADDR)
    if kind == "ipv6":
        address = draw(st.ip_addresses(v=6))
        return f"ipv6-addr:value = '{address.exploded.upper()}'", SekoiaValue(address.compressed, IPV6_ADDR)
    if kind == "cidr":
        network = draw(st.ip_addresses(v=4).map(lambda a: ipaddress.ip_network(f"{a}/16", strict=False)))
        text = f"ipv4-addr:value = '{network}'"
        return text, Skipped(text, reasons.CIDR_RANGE)
    if kind == "hash":
        key, length = draw(
            st.sampled_from([("MD5", 32), ("'SHA-1'", 40), ("SHA256", 64), ("'SHA-512'", 128)])
        )
        digest = draw(st.text(alphabet="0123456789abcdefABCDEF", min_size=length, max_size=length))
        return f"file:hashes.{key} = '{digest}'", SekoiaValue(digest.lower(), FILE_HASHES)
    if kind == "domain":
        labels = draw(
            st.lists(
                st.from_regex(r"[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?", fullmatch=True),
                min_size=1,
                max_size=4,
            )
        )
        name = ".".join(labels)
        return f"domain-name:value = '{name}'", SekoiaValue(name.lower(), DOMAIN_NAME)
    if kind == "unsupported":
        text, reason = draw(
            st.sampled_from(
                [
                    ("file:size = 10", reasons.UNSUPPORTED_PROPERTY),
                    ("file:hashes.SSDEEP = '3:a:b'", reasons.UNSUPPORTED_PROPERTY),
                    ("mac-addr:value = '00:00:00:00:00:00'", reasons.UNSUPPORTED_OBJECT_TYPE),
                ]
            )
        )
        return text, Skipped(text, reason)
    text, reason = draw(
        st.sampled_from(
            [
                ("url:value LIKE 'http://%'", reasons.UNSUPPORTED_OPERATOR),
                ("ipv4-addr:value != '1.1.1.1'", reasons.UNSUPPORTED_OPERATOR),
                ("domain-name:value NOT = 'a.example'", reasons.NEGATED),
            ]
        )
    )
    return text, Skipped(text, reason)


@st.composite
def judged_pattern(draw: st.DrawFn) -> tuple[str, list[tuple[str, SekoiaValue | Skipped]]]:
    """Comparisons combined inside observations, observations combined and qualified."""
    observations = draw(
        st.lists(st.lists(judged_comparison(), min_size=1, max_size=4), min_size=1, max_size=3)
    )
    parts = []
    for comparisons in observations:
        joiner = draw(st.sampled_from([" AND ", " OR "]))
        qualifier = draw(st.sampled_from(["", " WITHIN 60 SECONDS", " REPEATS 3 TIMES"]))
        parts.append("[" + joiner.join(text for text, _ in comparisons) + "]" + qualifier)
    pattern = parts[0]
    for part in parts[1:]:
        pattern += draw(st.sampled_from([" AND ", " OR ", " FOLLOWEDBY "])) + part
    return pattern, [judged for comparisons in observations for judged in comparisons]


@PROPERTY
@given(judged_pattern())
def test_every_comparison_is_a_value_or_a_reasoned_skip(case: tuple[str, list]) -> None:
    pattern, judged = case
    conversion = convert_pattern(pattern)
    expected_values = [outcome for _, outcome in judged if isinstance(outcome, SekoiaValue)]
    expected_skipped = [outcome for _, outcome in judged if isinstance(outcome, Skipped)]
    assert conversion.values == tuple(dict.fromkeys(expected_values))
    assert conversion.skipped == tuple(expected_skipped)


SIMPLE_PATHS = st.sampled_from(
    [
        "ipv4-addr:value",
        "ipv6-addr:value",
        "domain-name:value",
        "hostname:value",
        "url:value",
        "email-addr:value",
        "file:hashes.MD5",
        "file:hashes.md5",
        "file:hashes.SHA1",
        "file:hashes.'SHA-1'",
        "file:hashes.SHA256",
        "file:hashes.'SHA-256'",
        "file:hashes.SHA512",
        "file:hashes.'SHA-512'",
    ]
)
WS = st.text(alphabet=" \t\r\n", max_size=3)
LITERAL_CONTENT = st.one_of(
    st.text(),
    st.text(alphabet="'\\ .:/abcdef0123456789", max_size=20),
    st.ip_addresses().map(str),
)


@st.composite
def simple_pattern(draw: st.DrawFn) -> str:
    path, content = draw(SIMPLE_PATHS), draw(LITERAL_CONTENT)
    ws = [draw(WS) for _ in range(6)]
    return f"{ws[0]}[{ws[1]}{path}{ws[2]}={ws[3]}'{escape(content)}'{ws[4]}]{ws[5]}"


@PROPERTY
@given(simple_pattern())
def test_fast_path_takes_simple_patterns_and_agrees_with_the_parser(pattern: str) -> None:
    fast = match_simple(pattern)
    assert fast is not None
    assert fast == parse_comparisons(pattern)


@st.composite
def mutated_pattern(draw: st.DrawFn) -> str:
    """A simple pattern with a few characters inserted, deleted or replaced: near misses."""
    chars = list(draw(simple_pattern()))
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(chars)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        char = draw(st.sampled_from(list("'\\[]() =:.-\u00a0/*xAN")))
        if action == "insert":
            chars.insert(position, char)
        elif position < len(chars):
            if action == "delete":
                del chars[position]
            else:
                chars[position] = char
    return "".join(chars)


@PROPERTY
@given(mutated_pattern())
def test_fast_path_answers_only_when_the_parser_agrees(pattern: str) -> None:
    fast = match_simple(pattern)
    if fast is not None:
        assert fast == parse_comparisons(pattern)
