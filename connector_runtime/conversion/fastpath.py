"""Regex fast path for the overwhelmingly common `[<type>:<prop> = '<value>']` pattern.

Parsing with the ANTLR runtime costs about a millisecond per pattern; this regex costs a few
microseconds. It only answers when it is certain to extract exactly what the full parser would
(the property tests check that), and returns None otherwise so that the caller falls back.
"""

import re

from .comparison import Comparison, Literal, unescape_string_literal
from .targets import resolve

# Whitespace limited to characters the STIX lexer certainly skips; anything unusual (comments,
# exotic spaces, spaces inside the object path, qualifiers) is left to the parser.
_WS = r"[ \t\r\n]*"
_SIMPLE = re.compile(
    rf"""{_WS}\[{_WS}
    (?P<comparison>
        (?P<path>
            (?P<object_type>ipv4-addr|ipv6-addr|domain-name|hostname|url|email-addr|file)
            :(?P<first>[A-Za-z_][A-Za-z0-9_]*)
            (?:\.(?P<key>[A-Za-z_][A-Za-z0-9_]*|'[A-Za-z0-9_-]+'))?
        )
        {_WS}={_WS}
        (?P<literal>'(?:[^'\\]|\\['\\])*')
    )
    {_WS}\]{_WS}""",
    re.VERBOSE,
)


def match_simple(pattern: str) -> tuple[Comparison, ...] | None:
    """Return the single comparison of a simple supported pattern, or None when not certain."""
    match = _SIMPLE.fullmatch(pattern)
    if match is None:
        return None
    object_type, first, key = match.group("object_type", "first", "key")
    if key is None:
        path: tuple[str, ...] = (first,)
    else:
        path = (first, unescape_string_literal(key) if key.startswith("'") else key)
    # Only supported paths: their identifiers are known not to be grammar keywords, which an
    # arbitrary identifier (`AND`, `IN`, `true`...) might be.
    if isinstance(resolve(object_type, path), str):
        return None
    literal = match.group("literal")
    return (
        Comparison(
            text=match.group("comparison"),
            path_text=match.group("path"),
            object_type=object_type,
            path=path,
            operator="=",
            negated=False,
            literals=(Literal(literal, unescape_string_literal(literal)),),
        ),
    )
