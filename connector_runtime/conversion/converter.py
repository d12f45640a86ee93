"""STIX indicator / pattern → Sekoia values.

Every comparison of the pattern is judged on its own: it becomes a value with its own Sekoia type, or
a Skipped entry with a reason. How comparisons are combined (AND, OR, FOLLOWEDBY) and qualified
(WITHIN, START/STOP, REPEATS) is deliberately ignored: a Sekoia IOC collection is a flat list of
observables to watch for, and each observable named by a detection pattern for a threat is itself an
indicator of that threat. Dropping compound patterns instead would lose most file-hash indicators,
which OpenCTI writes as `MD5 OR SHA-1 OR SHA-256`.
"""

from collections.abc import Iterator, Mapping
from typing import Any

from . import reasons
from .comparison import Comparison
from .fastpath import match_simple
from .model import Conversion, SekoiaValue, Skipped
from .normalize import RejectedValue
from .parsing import MalformedPattern, parse_comparisons
from .targets import resolve

_EXCERPT_CHARS = 200  # a malformed pattern is echoed in reports, so bound what it can add to them


def convert_indicator(obj: Mapping[str, Any]) -> Conversion:
    """Convert a STIX 2.1 indicator object; non-indicators and non-STIX patterns give one Skipped."""
    if not isinstance(obj, Mapping) or obj.get("type") != "indicator":
        kind = obj.get("type") if isinstance(obj, Mapping) else type(obj).__name__
        return _skip_all(_text(kind), reasons.NOT_AN_INDICATOR)
    # STIX 2.0 indicators have no pattern_type: their pattern is always a STIX pattern.
    pattern_type = obj.get("pattern_type", "stix")
    if pattern_type != "stix":
        return _skip_all(_text(pattern_type), reasons.NOT_STIX_PATTERN)
    return convert_pattern(obj.get("pattern"))  # type: ignore[arg-type]  # checked there


def convert_pattern(pattern: str) -> Conversion:
    """Convert a STIX 2.1 pattern to Sekoia values; never raises, problems become Skipped entries."""
    if not isinstance(pattern, str):
        return _skip_all(_text(pattern), reasons.MALFORMED_PATTERN)
    comparisons = match_simple(pattern)
    if comparisons is None:
        try:
            comparisons = parse_comparisons(pattern)
        except MalformedPattern:
            return _skip_all(_text(pattern), reasons.MALFORMED_PATTERN)
    return convert_comparisons(comparisons)


def convert_comparisons(comparisons: tuple[Comparison, ...]) -> Conversion:
    """Judge extracted comparisons; values keep pattern order, identical (value, type) pairs once."""
    values: dict[SekoiaValue, None] = {}  # an ordered set
    skipped: list[Skipped] = []
    for comparison in comparisons:
        for outcome in _outcomes(comparison):
            if isinstance(outcome, SekoiaValue):
                values[outcome] = None
            else:
                skipped.append(outcome)
    return Conversion(tuple(values), tuple(skipped))


def _outcomes(comparison: Comparison) -> Iterator[SekoiaValue | Skipped]:
    # What is compared decides first: no operator or value can make an unsupported property usable.
    target = resolve(comparison.object_type, comparison.path)
    if isinstance(target, str):
        yield Skipped(comparison.text, target)
        return
    if comparison.negated:
        yield Skipped(comparison.text, reasons.NEGATED)
        return
    if comparison.operator not in ("=", "IN"):
        yield Skipped(comparison.text, reasons.UNSUPPORTED_OPERATOR)
        return
    if not comparison.literals:  # `IN ()`
        yield Skipped(comparison.text, reasons.EMPTY_VALUE)
        return
    for literal in comparison.literals:
        # A rejected set member is reported as the one-member comparison it stands for, so the
        # report names exactly what was dropped.
        text = (
            comparison.text if comparison.operator == "=" else f"{comparison.path_text} IN ({literal.text})"
        )
        if literal.string is None:  # a number, boolean, timestamp, binary or hex literal
            yield Skipped(text, reasons.INVALID_VALUE)
            continue
        try:
            yield SekoiaValue(target.normalise(literal.string), target.sekoia_type)
        except RejectedValue as rejected:
            yield Skipped(text, rejected.reason)


def _skip_all(comparison: str, reason: str) -> Conversion:
    return Conversion((), (Skipped(comparison, reason),))


def _text(value: object) -> str:
    text = "" if value is None else value if isinstance(value, str) else repr(value)
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1] + "…"
