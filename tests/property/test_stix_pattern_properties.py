"""Fuzz and grammar-aware properties of the STIX pattern converter (`connector_runtime.conversion`).

Patterns come from OpenCTI, so from whoever wrote the indicator: they are untrusted text. Three
families of input are generated here:

- arbitrary text (every code point, lone surrogates included, since a JSON string escape can carry
  one) and soups of STIX tokens, wrapped in the contexts where a pattern or a literal lands;
- patterns built from the STIX 2.1 grammar (nested observations and comparison expressions,
  AND/OR/FOLLOWEDBY, qualifiers, comments, exotic whitespace, every literal kind), each
  comparison drawn together with the outcome the documented rules give it, so the converter is
  compared with an oracle that does not read its code;
- every spelling the regex fast path claims, and near misses of them, against the full parser.

tests/runtime/test_conversion.py holds the example-based tests and a first round of properties;
this file goes further (nesting, qualifiers, unicode, long values, exact oracles, whole-converter
agreement between the fast path and the parser).
"""

from __future__ import annotations

import base64
import functools
import string
import unicodedata
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from hypothesis import example, given
from hypothesis import strategies as st
from stix2patterns.v21.grammars.STIXPatternLexer import STIXPatternLexer

from connector_runtime.conversion import (
    Conversion,
    SekoiaValue,
    Skipped,
    convert_indicator,
    convert_pattern,
    reasons,
)
from connector_runtime.conversion.converter import convert_comparisons
from connector_runtime.conversion.fastpath import match_simple
from connector_runtime.conversion.parsing import MalformedPattern, parse_comparisons
from connector_runtime.conversion.types import (
    ALL_TYPES,
    DOMAIN_NAME,
    EMAIL_ADDR,
    FILE_HASHES,
    IPV4_ADDR,
    IPV6_ADDR,
    URL,
)

# What the converter echoes of a malformed pattern (converter._EXCERPT_CHARS, a documented bound).
EXCERPT_CHARS = 200
# Identifiers the STIX lexer turns into keywords (read from the lexer, so a grammar update cannot
# leave one out); a generated object type or property name must avoid them.
KEYWORDS = frozenset(
    name.strip("'") for name in STIXPatternLexer.literalNames if name.strip("'").isidentifier()
)
# Characters no observable contains: they would split a value in Sekoia's one-value-per-line import,
# or (lone surrogates) cannot be encoded as UTF-8 for the JSON body and the search query.
Category = Literal["Cc", "Cs", "Zl", "Zp", "Zs"]
BREAKING_CATEGORIES: tuple[Category, ...] = ("Cc", "Cs", "Zl", "Zp")
BREAKING_OR_SPACE: tuple[Category, ...] = (*BREAKING_CATEGORIES, "Zs")

Outcome = SekoiaValue | Skipped
Judged = tuple[str, tuple[Outcome, ...]]  # a comparison as written, and what it must give


def stix_string(text: str) -> str:
    """`text` as a STIX string literal: the grammar only knows the `\\'` and `\\\\` escapes."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def breaks_a_value(char: str) -> bool:
    """Whether `char` may never appear inside a value sent to Sekoia."""
    return unicodedata.category(char) in BREAKING_CATEGORIES


# --- invariants every conversion must satisfy ---------------------------------------------------


def _names_dropped_text(comparison: str, pattern: str) -> bool:
    """A skipped comparison is text of the pattern, or an `IN` member as `<path> IN (<member>)`."""
    if comparison in pattern:
        return True
    if not comparison.endswith(")"):
        return False
    start = comparison.find(" IN (")
    while start != -1:
        path, member = comparison[:start], comparison[start + len(" IN (") : -1]
        if path in pattern and member in pattern:
            return True
        start = comparison.find(" IN (", start + 1)
    return False


def assert_accounted_for(pattern: str | None, conversion: Conversion) -> None:
    """The converter's contract for any input: values are clean, everything else has a reason.

    `pattern` is the text converted, or None when the input was not a pattern text (an object).
    """
    assert isinstance(conversion, Conversion)
    # Nothing vanishes: any input gives at least one value or one reasoned skip.
    assert conversion.values or conversion.skipped
    assert len(set(conversion.values)) == len(conversion.values)
    for value in conversion.values:
        assert isinstance(value, SekoiaValue)
        assert value.type in ALL_TYPES
        assert value.value and value.value == value.value.strip()
        assert not any(breaks_a_value(char) for char in value.value), ascii(value.value)
        value.value.encode("utf-8")  # the JSON body and the search query are UTF-8
    for skipped in conversion.skipped:
        assert isinstance(skipped, Skipped)
        assert isinstance(skipped.reason, str) and skipped.reason in reasons.ALL_REASONS
        assert isinstance(skipped.comparison, str)
        if skipped.reason == reasons.MALFORMED_PATTERN:
            # A malformed pattern is one bounded excerpt of the whole input, and nothing else.
            assert conversion.skipped == (skipped,) and not conversion.values
            assert len(skipped.comparison) <= EXCERPT_CHARS
            if pattern is not None:
                assert pattern.startswith(skipped.comparison.removesuffix("…"))
        elif pattern is not None:
            assert skipped.comparison, "a skip must name what was dropped"
            assert _names_dropped_text(skipped.comparison, pattern), skipped


def parser_only(pattern: str) -> Conversion | None:
    """The conversion through the full parser alone (None when it rejects the pattern)."""
    try:
        comparisons = parse_comparisons(pattern)
    except MalformedPattern:
        return None
    return convert_comparisons(comparisons)


def assert_fast_path_is_only_an_optimisation(pattern: str) -> None:
    """The converter's answer is the parser's answer, whether or not the fast path took it."""
    fast = match_simple(pattern)
    full = parser_only(pattern)
    if fast is not None:
        assert full is not None, "the fast path accepted a pattern the grammar rejects"
        assert fast == parse_comparisons(pattern)
    conversion = convert_pattern(pattern)
    if full is None:
        assert [s.reason for s in conversion.skipped] == [reasons.MALFORMED_PATTERN]
    else:
        assert conversion == full


# --- arbitrary input --------------------------------------------------------------------------

ANY_CHAR = st.one_of(st.characters(codec=None, exclude_categories=()), st.characters(categories=["Cs"]))


def any_text(min_size: int = 0, max_size: int = 60) -> st.SearchStrategy[str]:
    """Text over every code point, lone surrogates included.

    Built from a list because `st.text` merges a union of alphabets into one and drops the
    surrogates on the way.
    """
    return st.lists(ANY_CHAR, min_size=min_size, max_size=max_size).map("".join)


ANY_TEXT = any_text()
TOKENS = [
    *"[]():=!<>'\\.,/*+- \t\n",
    *("ipv4-addr", "ipv6-addr", "domain-name", "hostname", "url", "email-addr", "file", "x-custom"),
    *("value", "hashes", "'SHA-256'", "MD5", "name", "[*]", "[0]", "'value'"),
    *sorted(KEYWORDS),
    *("'1.2.3.4'", "'::1'", "'a.example'", "'a@b.example'", "'http://x/'", f"'{'ab' * 16}'", "''"),
    *("7", "-2", "3.5", "+1", "h'0f'", "b'YWI='", "t'2021-01-01T00:00:00Z'", "t'", "h'", "b'"),
    *("/* c */", "//", "\u00a0", "\u3000", "\u2028", "\ud800", "\x00", "é", "\U0001f600"),
]
TOKEN_SOUP = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)


@given(st.one_of(ANY_TEXT, TOKEN_SOUP))
# Before the fix in normalize._CONTROL, a lone surrogate inside a literal became a value.
@example("[url:value = 'http://a/\ud800']")
@example("[email-addr:value = '\udfff@a.example']")
def test_arbitrary_text_never_raises_and_is_accounted_for(text: str) -> None:
    # The raw text, and the text where it lands in real patterns: inside an observation, as a
    # whole literal (unescaped, so often malformed) and inside a well-formed literal.
    for pattern in (
        text,
        f"[{text}]",
        f"[ipv4-addr:value = '{text}']",
        f"[url:value = {stix_string(text)}]",
        f"[file:hashes.MD5 = {stix_string(text)}] OR [{text}]",
    ):
        assert_accounted_for(pattern, convert_pattern(pattern))
        assert_fast_path_is_only_an_optimisation(pattern)


JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), any_text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def indicator_objects(draw: st.DrawFn) -> object:
    """Anything a JSON document can hold, biased towards objects that look like indicators."""
    if draw(st.booleans()):
        return draw(JSON_VALUES)
    obj = draw(st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=3))
    for key, likely in (
        ("type", st.sampled_from(["indicator", "malware", "Indicator"])),
        ("pattern_type", st.sampled_from(["stix", "yara", "STIX", "sigma"])),
        ("pattern", st.one_of(TOKEN_SOUP, st.just("[ipv4-addr:value = '1.2.3.4']"))),
    ):
        choice = draw(st.sampled_from(["absent", "likely", "anything"]))
        if choice == "likely":
            obj[key] = draw(likely)
        elif choice == "anything":
            obj[key] = draw(JSON_VALUES)
    return obj


@given(indicator_objects())
def test_arbitrary_indicator_objects_never_raise(obj: object) -> None:
    conversion = convert_indicator(obj)  # type: ignore[arg-type]  # the point: any JSON value
    assert_accounted_for(None, conversion)
    reasons_given = [s.reason for s in conversion.skipped]
    if not isinstance(obj, dict) or obj.get("type") != "indicator":
        assert reasons_given == [reasons.NOT_AN_INDICATOR] and not conversion.values
    elif obj.get("pattern_type", "stix") != "stix":
        # A missing pattern_type is a STIX 2.0 indicator, whose patterns are always STIX ones.
        assert reasons_given == [reasons.NOT_STIX_PATTERN] and not conversion.values
    elif not isinstance(obj.get("pattern"), str):
        assert reasons_given == [reasons.MALFORMED_PATTERN]
    else:
        assert conversion == convert_pattern(obj["pattern"])


# --- grammar-aware generation with an oracle ----------------------------------------------------

# Between tokens: nothing, or what the STIX lexer skips (spaces, exotic spaces, block comments).
GAP = st.sampled_from(["", "", "", " ", "\t", "\n", "\u00a0", "\u3000", "/**/", " /* note */ "])
SPACE = st.sampled_from([" ", " ", " ", "  ", "\t", "\r\n", "\u2003", " /* c */ "])
# Around a value inside its literal: stripped by every normaliser.
PAD = st.sampled_from(["", "", "", " ", "  ", "\t", " \n "])

PRINTABLE = st.characters(codec=None, exclude_categories=BREAKING_CATEGORIES)
PRINTABLE_NO_SPACE = st.characters(codec=None, exclude_categories=BREAKING_OR_SPACE, exclude_characters="@")
BREAKERS = st.one_of(
    st.characters(categories=["Cc"]), st.sampled_from(["\u2028", "\u2029"]), st.characters(categories=["Cs"])
)
HEX = "0123456789abcdefABCDEF"
# Letters whose lower case is one letter, so the expected domain is simply `name.lower()`.
LABEL_CHARS = string.ascii_letters + string.digits + "-_" + "äöüéçñøåяжλπÄÖÜÉÇÑØÅЯЖΛΠ"

# A rejected literal is written as the reason it must get; an accepted one as its expected value.
Verdict = tuple[str, str]  # ("value", expected) or ("skip", reason)


def accepted(value: str) -> Verdict:
    """The verdict of a literal that becomes `value`."""
    return ("value", value)


def rejected(reason: str) -> Verdict:
    """The verdict of a literal skipped for `reason`."""
    return ("skip", reason)


@st.composite
def ipv4_core(draw: st.DrawFn) -> tuple[str, str]:
    """(an IPv4 address as written, its canonical form); `/32` is a host and is dropped."""
    address = draw(st.ip_addresses(v=4))
    return str(address) + draw(st.sampled_from(["", "/32"])), str(address)


@st.composite
def ipv6_core(draw: st.DrawFn) -> tuple[str, str]:
    """(an IPv6 address in any written form, its compressed form); `/128` is dropped."""
    address = draw(st.ip_addresses(v=6))
    written = draw(
        st.sampled_from([address.exploded, address.compressed, address.exploded.upper(), str(address)])
    )
    return written + draw(st.sampled_from(["", "/128"])), address.compressed


LABELS = st.lists(st.text(LABEL_CHARS, min_size=1, max_size=15), min_size=1, max_size=4)


@st.composite
def domain_core(draw: st.DrawFn) -> tuple[str, str]:
    """(a domain, maybe with the root's trailing dot, its lower-case form without it)."""
    # sampled_from, not integers: Hypothesis favours the bounds of integer ranges.
    if draw(st.sampled_from(range(10))) == 9:  # at the length limits: three 63-character labels
        labels = [draw(st.text(LABEL_CHARS, min_size=63, max_size=63)) for _ in range(3)]
    else:
        labels = draw(LABELS)
    name = ".".join(labels)
    return name + draw(st.sampled_from(["", "."])), name.lower()


@st.composite
def url_core(draw: st.DrawFn) -> tuple[str, str]:
    """(a URL-ish text, itself): URLs are kept as written."""
    text = draw(
        st.one_of(
            st.text(PRINTABLE, min_size=1, max_size=40),
            st.text("'\\/:?#&=%. abc", min_size=1, max_size=30),
            # Long values, through the parser as well as the fast path.
            st.text(PRINTABLE, min_size=1, max_size=8).map(lambda chunk: chunk * 150),
        )
        .map(str.strip)
        .filter(bool)
    )
    # Stripped, like every core: a breaking character inserted inside must stay inside.
    return text, text


@st.composite
def email_core(draw: st.DrawFn) -> tuple[str, str]:
    """(an address, the same with its domain normalised and its local part kept)."""
    local = draw(st.text(PRINTABLE_NO_SPACE, min_size=1, max_size=20))
    domain, expected_domain = draw(domain_core())
    return f"{local}@{domain}", f"{local}@{expected_domain}"


def hash_core(length: int) -> st.SearchStrategy[tuple[str, str]]:
    """(a hex digest of `length` in mixed case, its lower-case form)."""
    return st.text(HEX, min_size=length, max_size=length).map(lambda digest: (digest, digest.lower()))


def _insert(core: str, char: str, where: float) -> str:
    """`char` strictly inside `core` (never at an edge, where stripping could remove it)."""
    if len(core) < 2:
        return core + char + core
    position = 1 + int(where * (len(core) - 2))
    return core[:position] + char + core[position:]


def invalid_variants(kind: str, core: str) -> list[str]:
    """Literals derived from a valid `core` that the documented rules reject as invalid values."""
    if kind == "ipv4":
        address = core.partition("/")[0]
        first, rest = address.split(".", 1)
        return [f"0{first}.{rest}", address.rsplit(".", 1)[0], f"{address}/33", f"{address}/x", "::1"]
    if kind == "ipv6":
        address = core.partition("/")[0]
        return [f"{address}%eth0", f"{address}/129", "1.2.3.4", ":::", f"{address}/1x"]
    if kind == "domain":
        name = core.rstrip(".")
        return [_insert(name, " ", 0.5), _insert(name, "/", 0.3), f"{name}..x", "a" * 64 + ".example"]
    if kind == "email":
        local, _, domain = core.rpartition("@")
        return [local + domain, f"@{domain}", f"a b@{domain}", f"{local}@{domain} x"]
    if kind in HASH_LENGTHS:
        return [core[:-1], core + "0", _insert(core, "g", 0.5)]
    return []  # a URL is kept as written: only empty and breaking characters reject it


HASH_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
CORES: dict[str, Callable[[], st.SearchStrategy[tuple[str, str]]]] = {
    "ipv4": ipv4_core,
    "ipv6": ipv6_core,
    "domain": domain_core,
    "url": url_core,
    "email": email_core,
    **{kind: functools.partial(hash_core, length) for kind, length in HASH_LENGTHS.items()},
}


@st.composite
def string_literal_for(draw: st.DrawFn, kind: str) -> tuple[str, Verdict]:
    """A string literal for a target kind, and the verdict the rules give its content."""
    core, expected = draw(CORES[kind]())
    # A choice that does not apply to the kind (no invalid variant, not an IP) gives a valid value.
    choice = draw(st.sampled_from(["valid", "valid", "valid", "blank", "breaker", "invalid", "cidr"]))
    if choice == "blank":
        return stix_string(draw(PAD)), rejected(reasons.EMPTY_VALUE)
    if choice == "breaker":
        content = _insert(core, draw(BREAKERS), draw(st.floats(0, 1)))
        return stix_string(content), rejected(reasons.INVALID_VALUE)
    if choice == "invalid" and invalid_variants(kind, core):
        content = draw(st.sampled_from(invalid_variants(kind, core)))
        return stix_string(draw(PAD) + content + draw(PAD)), rejected(reasons.INVALID_VALUE)
    if choice == "cidr" and kind in ("ipv4", "ipv6"):
        host = 32 if kind == "ipv4" else 128
        network = f"{core.partition('/')[0]}/{draw(st.integers(0, host - 1))}"
        return stix_string(network), rejected(reasons.CIDR_RANGE)
    return stix_string(draw(PAD) + core + draw(PAD)), accepted(expected)


def timestamp_literal(when: datetime) -> str:
    """A STIX timestamp literal; some carry fractional seconds (the grammar allows any digits)."""
    fraction = f".{when.microsecond:06d}" if when.microsecond else ""
    return f"t'{when:%Y-%m-%dT%H:%M:%S}{fraction}Z'"


TIMESTAMPS = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2999, 12, 31)).map(
    timestamp_literal
)


NON_STRING_LITERALS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.integers(0, 99).map(lambda n: f"+{n}"),
    st.tuples(st.integers(-999, 999), st.integers(0, 10**6)).map(lambda p: f"{p[0]}.{p[1]}"),
    st.sampled_from(["true", "false"]),
    st.binary(max_size=6).map(lambda raw: "h'" + raw.hex() + "'"),
    st.binary(min_size=1, max_size=6).map(lambda raw: "b'" + base64.b64encode(raw).decode() + "'"),
    TIMESTAMPS,
)
ORDERABLE_NON_STRING = NON_STRING_LITERALS.filter(lambda text: text not in ("true", "false"))


@st.composite
def any_string_literal(draw: st.DrawFn) -> str:
    """A string literal with any printable content."""
    return stix_string(draw(st.text(PRINTABLE, max_size=12)))


# Supported targets: kind -> (object types, Sekoia type). Hash kinds share `file:hashes.<key>`.
VALUE_TARGETS = {
    "ipv4": (["ipv4-addr"], IPV4_ADDR),
    "ipv6": (["ipv6-addr"], IPV6_ADDR),
    "domain": (["domain-name", "hostname"], DOMAIN_NAME),
    "url": (["url"], URL),
    "email": (["email-addr"], EMAIL_ADDR),
}
HASH_KEYS = {
    "md5": ["MD5", "md5", "Md5", "_MD5", "'MD5'", "'md-5'"],
    "sha1": ["SHA1", "sha1", "SHA_1", "'SHA-1'", "'sha-1'", "'SHA1'"],
    "sha256": ["SHA256", "sha256", "Sha_256", "'SHA-256'", "'sha-256'", "'SHA_256'"],
    "sha512": ["SHA512", "sha512", "SHA_512", "'SHA-512'", "'sha-512'", "'S-H-A-512'"],
}
UNSUPPORTED_VALUE_PROPERTIES = ["value.x", "value[0]", "value[*]", "resolves_to_refs[*].value", "'val ue'"]
UNSUPPORTED_VALUE_PROPERTIES += ["display_name", "x_custom", "'value'.'value'"]
UNSUPPORTED_FILE_PROPERTIES = ["name", "size", "hashes", "hashes.SSDEEP", "hashes.'SHA3-256'"]
UNSUPPORTED_FILE_PROPERTIES += ["hashes.MD5.x", "hashes[0]", "parent_directory_ref.path", "'hashes'.TLSH"]
SUPPORTED_TYPES = {"file", *(t for types, _ in VALUE_TARGETS.values() for t in types)}
OBJECT_TYPE_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}(-[A-Za-z0-9_]{1,6}){0,2}", fullmatch=True)
UNSUPPORTED_TYPES = st.one_of(
    st.sampled_from(["mac-addr", "IPV4-ADDR", "File", "URL", "x-opencti-hostname", "autonomous-system"]),
    OBJECT_TYPE_NAMES,
).filter(lambda name: name not in SUPPORTED_TYPES and name not in KEYWORDS)
PROPERTY_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True).filter(
    lambda name: name not in KEYWORDS
)


@st.composite
def supported_path(draw: st.DrawFn) -> tuple[str, str, str]:
    """(path as written, target kind, Sekoia type) for a path the converter sends to Sekoia."""
    gap = [draw(st.sampled_from(["", "", "", " ", "/**/"])) for _ in range(4)]
    kind = draw(st.sampled_from([*VALUE_TARGETS, *HASH_KEYS]))
    if kind in VALUE_TARGETS:
        object_types, sekoia_type = VALUE_TARGETS[kind]
        first = draw(st.sampled_from(["value", "value", "'value'"]))
        return f"{draw(st.sampled_from(object_types))}{gap[0]}:{gap[1]}{first}", kind, sekoia_type
    hashes = draw(st.sampled_from(["hashes", "hashes", "'hashes'"]))
    key = draw(st.sampled_from(HASH_KEYS[kind]))
    return f"file{gap[0]}:{gap[1]}{hashes}{gap[2]}.{gap[3]}{key}", kind, FILE_HASHES


@st.composite
def unsupported_path(draw: st.DrawFn) -> tuple[str, str]:
    """(path as written, reason) for a path the converter cannot send to Sekoia."""
    if draw(st.booleans()):
        object_type = draw(UNSUPPORTED_TYPES)
        first = draw(st.one_of(PROPERTY_NAMES, st.just("value"), any_string_literal()))
        rest = draw(st.sampled_from(["", ".value", "[*].x", "[3]", ".'a b'"]))
        return f"{object_type}:{first}{rest}", reasons.UNSUPPORTED_OBJECT_TYPE
    if draw(st.booleans()):
        object_type = draw(st.sampled_from(sorted(SUPPORTED_TYPES - {"file"})))
        prop = draw(st.sampled_from(UNSUPPORTED_VALUE_PROPERTIES))
    else:
        object_type, prop = "file", draw(st.sampled_from(UNSUPPORTED_FILE_PROPERTIES))
    return f"{object_type}:{prop}", reasons.UNSUPPORTED_PROPERTY


@st.composite
def operator_tail(draw: st.DrawFn, operator: str) -> str:
    """The operator and its operand for an operator other than `=` and `IN`."""
    if operator in ("LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET"):
        return f"{operator}{draw(SPACE)}{draw(any_string_literal())}"
    if operator in (">", "<", ">=", "<="):
        operand = draw(st.one_of(any_string_literal(), ORDERABLE_NON_STRING))
        return f"{operator}{draw(GAP)}{operand}"
    operand = draw(st.one_of(any_string_literal(), NON_STRING_LITERALS))  # "!="
    return f"{operator}{draw(GAP)}{operand}"


OTHER_OPERATORS = ["!=", ">", "<", ">=", "<=", "LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET", "EXISTS"]


@st.composite
def any_operation(draw: st.DrawFn, path: str, negated: bool) -> str:
    """A whole comparison on `path` with any operator (its outcome decided by something else)."""
    operator = draw(st.sampled_from(["=", "IN", *OTHER_OPERATORS]))
    not_ = f"NOT{draw(SPACE)}" if negated else ""
    if operator == "EXISTS":
        return f"{not_}EXISTS{draw(SPACE)}{path}"
    if operator == "=":
        operand = draw(st.one_of(any_string_literal(), NON_STRING_LITERALS))
        return f"{path}{draw(SPACE)}{not_}={draw(GAP)}{operand}"
    if operator == "IN":
        members = draw(st.lists(st.one_of(any_string_literal(), NON_STRING_LITERALS), max_size=3))
        return f"{path}{draw(SPACE)}{not_}IN{draw(GAP)}({', '.join(members)})"
    return f"{path}{draw(SPACE)}{not_}{draw(operator_tail(operator))}"


@st.composite
def judged_comparison(draw: st.DrawFn) -> Judged:
    """One comparison and the outcomes the documented rules give it, in order."""
    if draw(st.sampled_from(range(5))) == 4:
        path, reason = draw(unsupported_path())
        text = draw(any_operation(path, negated=draw(st.booleans())))
        return text, (Skipped(text, reason),)
    path, kind, sekoia_type = draw(supported_path())
    shape = draw(st.sampled_from(["=", "=", "=", "IN", "NOT", "other", "non-string"]))
    if shape == "NOT":
        text = draw(any_operation(path, negated=True))
        return text, (Skipped(text, reasons.NEGATED),)
    if shape == "other":
        operator = draw(st.sampled_from(OTHER_OPERATORS))
        if operator == "EXISTS":
            text = f"EXISTS{draw(SPACE)}{path}"
        else:
            text = f"{path}{draw(SPACE)}{draw(operator_tail(operator))}"
        return text, (Skipped(text, reasons.UNSUPPORTED_OPERATOR),)
    if shape == "non-string":
        text = f"{path}{draw(GAP)}={draw(GAP)}{draw(NON_STRING_LITERALS)}"
        return text, (Skipped(text, reasons.INVALID_VALUE),)
    if shape == "=":
        literal, verdict = draw(string_literal_for(kind))
        text = f"{path}{draw(GAP)}={draw(GAP)}{literal}"
        return text, (_outcome(verdict, text, sekoia_type),)
    members = draw(
        st.lists(
            st.one_of(
                string_literal_for(kind),
                NON_STRING_LITERALS.map(lambda text: (text, rejected(reasons.INVALID_VALUE))),
            ),
            max_size=4,
        )
    )
    text = f"{path}{draw(SPACE)}IN{draw(GAP)}({draw(GAP)}{','.join(m for m, _ in members)}{draw(GAP)})"
    if not members:
        return text, (Skipped(text, reasons.EMPTY_VALUE),)
    # A rejected member is reported as the one-member comparison it stands for.
    outcomes = tuple(_outcome(verdict, f"{path} IN ({member})", sekoia_type) for member, verdict in members)
    return text, outcomes


def _outcome(verdict: Verdict, text: str, sekoia_type: str) -> Outcome:
    """The converter's result for a verdict on the literal of the comparison `text`."""
    kind, detail = verdict
    return SekoiaValue(detail, sekoia_type) if kind == "value" else Skipped(text, detail)


@st.composite
def _joined(draw: st.DrawFn, parts: st.SearchStrategy[Judged], operators: list[str]) -> Judged:
    (left, left_out), (right, right_out) = draw(parts), draw(parts)
    operator = draw(st.sampled_from(operators))
    return f"{left}{draw(SPACE)}{operator}{draw(SPACE)}{right}", left_out + right_out


@st.composite
def _parenthesised(draw: st.DrawFn, parts: st.SearchStrategy[Judged]) -> Judged:
    text, outcomes = draw(parts)
    return f"({draw(GAP)}{text}{draw(GAP)})", outcomes


COMPARISON_EXPRESSIONS = st.recursive(
    judged_comparison(),
    lambda inner: st.one_of(_joined(inner, ["AND", "OR"]), _parenthesised(inner)),
    max_leaves=4,
)


@st.composite
def _observation(draw: st.DrawFn) -> Judged:
    text, outcomes = draw(COMPARISON_EXPRESSIONS)
    return f"[{draw(GAP)}{text}{draw(GAP)}]", outcomes


@st.composite
def _qualified(draw: st.DrawFn, parts: st.SearchStrategy[Judged]) -> Judged:
    text, outcomes = draw(parts)
    s = [draw(SPACE) for _ in range(4)]
    qualifier = draw(
        st.one_of(
            st.integers(1, 10**6).map(lambda n: f"WITHIN{s[1]}{n}{s[2]}SECONDS"),
            st.sampled_from(["2.5", "+3", "0.001"]).map(lambda n: f"WITHIN{s[1]}{n}{s[2]}SECONDS"),
            st.integers(0, 999).map(lambda n: f"REPEATS{s[1]}{n}{s[2]}TIMES"),
            st.tuples(TIMESTAMPS, TIMESTAMPS).map(lambda t: f"START{s[1]}{t[0]}{s[2]}STOP{s[3]}{t[1]}"),
        )
    )
    return f"{text}{s[0]}{qualifier}", outcomes


OBSERVATION_EXPRESSIONS = st.recursive(
    _observation(),
    lambda inner: st.one_of(
        _joined(inner, ["AND", "OR", "FOLLOWEDBY"]), _parenthesised(inner), _qualified(inner)
    ),
    max_leaves=4,
)


@st.composite
def judged_patterns(draw: st.DrawFn) -> tuple[str, tuple[Outcome, ...]]:
    """A whole pattern and the outcomes of its comparisons in source order."""
    text, outcomes = draw(OBSERVATION_EXPRESSIONS)
    return f"{draw(GAP)}{text}{draw(GAP)}", outcomes


@given(judged_patterns())
@example(
    ("[url:value = 'http://a/\ud800/']", (Skipped("url:value = 'http://a/\ud800/'", reasons.INVALID_VALUE),))
)
def test_generated_patterns_give_exactly_what_the_rules_say(case: tuple[str, tuple[Outcome, ...]]) -> None:
    pattern, outcomes = case
    conversion = convert_pattern(pattern)
    assert_accounted_for(pattern, conversion)
    # How comparisons are combined and qualified is ignored: each one is judged alone, values keep
    # pattern order and identical (value, type) pairs appear once.
    expected_values = tuple(dict.fromkeys(o for o in outcomes if isinstance(o, SekoiaValue)))
    expected_skipped = tuple(o for o in outcomes if isinstance(o, Skipped))
    assert conversion == Conversion(expected_values, expected_skipped)
    assert_fast_path_is_only_an_optimisation(pattern)


@given(supported_path(), st.data())
def test_one_valid_comparison_round_trips_to_its_value(
    path: tuple[str, str, str], data: st.DataObject
) -> None:
    written, kind, sekoia_type = path
    core, expected = data.draw(CORES[kind]())
    outer = [data.draw(GAP) for _ in range(4)]
    literal = stix_string(data.draw(PAD) + core + data.draw(PAD))
    pattern = f"{outer[0]}[{outer[1]}{written} = {literal}{outer[2]}]{outer[3]}"
    assert convert_pattern(pattern) == Conversion((SekoiaValue(expected, sekoia_type),))
    assert_fast_path_is_only_an_optimisation(pattern)


@given(any_text(max_size=80))
@example("http://a/\ud800")  # before the fix: accepted, then unencodable when revoked (search query)
@example("\ud83d\ude00")  # a UTF-16 pair kept as two code points is no more encodable
def test_a_url_is_kept_as_written_unless_it_cannot_be_one(text: str) -> None:
    conversion = convert_pattern(f"[url:value = {stix_string(text)}]")
    value = text.strip()
    if not value:
        assert conversion.skipped == (Skipped(f"url:value = {stix_string(text)}", reasons.EMPTY_VALUE),)
    elif any(breaks_a_value(char) for char in value):
        assert [s.reason for s in conversion.skipped] == [reasons.INVALID_VALUE]
        assert not conversion.values
    else:
        assert conversion == Conversion((SekoiaValue(value, URL),))


# --- the fast path ------------------------------------------------------------------------------

FAST_WS = st.text(" \t\r\n", max_size=3)
FAST_TYPES = ["ipv4-addr", "ipv6-addr", "domain-name", "hostname", "url", "email-addr"]


@st.composite
def hash_key_spellings(draw: st.DrawFn) -> str:
    """Every key the fast path's regex and the resolver accept: any case, `_` (and `-` when quoted)."""
    name = draw(st.sampled_from(["MD5", "SHA1", "SHA256", "SHA512"]))
    quoted = draw(st.booleans())
    separators = "_-" if quoted else "_"
    out = []
    for char in name:
        out.append(char.lower() if draw(st.booleans()) else char)
        if draw(st.sampled_from(range(6))) == 5:
            out.append(draw(st.sampled_from(separators)))
    key = ("_" if not quoted and draw(st.sampled_from(range(6))) == 5 else "") + "".join(out)
    return f"'{key}'" if quoted else key


@st.composite
def fast_path_patterns(draw: st.DrawFn) -> str:
    """Patterns in the exact shape the fast path documents, with any literal content."""
    if draw(st.booleans()):
        path = f"{draw(st.sampled_from(FAST_TYPES))}:value"
    else:
        path = f"file:hashes.{draw(hash_key_spellings())}"
    content = draw(
        st.one_of(
            any_text(max_size=30),
            st.text("'\\", max_size=12),
            any_text(min_size=1, max_size=4).map(lambda chunk: chunk * 200),
            st.ip_addresses().map(str),
            st.text(HEX, min_size=32, max_size=32),
        )
    )
    ws = [draw(FAST_WS) for _ in range(6)]
    return f"{ws[0]}[{ws[1]}{path}{ws[2]}={ws[3]}{stix_string(content)}{ws[4]}]{ws[5]}"


@given(fast_path_patterns())
def test_fast_path_takes_every_shape_it_documents_and_agrees(pattern: str) -> None:
    # Not vacuous: the fast path must answer for these, and then say exactly what the parser says.
    assert match_simple(pattern) is not None
    assert_fast_path_is_only_an_optimisation(pattern)
    assert_accounted_for(pattern, convert_pattern(pattern))


SPLICES = [
    *"'\\[]()=:.-_ *",
    *("\u00a0", "\u2003", "\f", "\v", "/* c */", "//", "\ud800", "é", "0", "A", "'x'"),
    *(" AND ", " OR ", " NOT ", " IN ", " LIKE ", " WITHIN 5 SECONDS", " FOLLOWEDBY [url:value = 'x']"),
    *("value", "hashes.", "'value'", "[*]", "h'", "t'", "true"),
]


@st.composite
def near_misses(draw: st.DrawFn) -> str:
    """Fast-path patterns with a few splices, deletions or swaps: mostly just outside its shape."""
    chars = list(draw(fast_path_patterns()))
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(chars)))
        action = draw(st.sampled_from(["splice", "delete", "replace", "swap"]))
        if action == "splice":
            chars[position:position] = [draw(st.sampled_from(SPLICES))]
        elif position < len(chars):
            if action == "delete":
                del chars[position]
            elif action == "replace":
                chars[position] = draw(st.sampled_from(SPLICES))
            elif position + 1 < len(chars):
                chars[position], chars[position + 1] = chars[position + 1], chars[position]
    return "".join(chars)


@given(near_misses())
def test_fast_path_near_misses_never_disagree_with_the_parser(pattern: str) -> None:
    assert_fast_path_is_only_an_optimisation(pattern)
    assert_accounted_for(pattern, convert_pattern(pattern))


def test_the_oracle_spellings_are_really_supported() -> None:
    # Guards the generators themselves: a spelling the resolver rejects would make the oracle wrong
    # everywhere it is used, and the failures would point at the converter instead.
    for kind, keys in HASH_KEYS.items():
        for key in keys:
            digest = "a" * HASH_LENGTHS[kind]
            assert convert_pattern(f"[file:hashes.{key} = '{digest}']").values == (
                SekoiaValue(digest, FILE_HASHES),
            ), key
