"""The converter's view of one STIX comparison, shared by the fast path and the full parser.

Both extractors produce these records and all decisions are taken on them afterwards, so the two
paths can only disagree on extraction, which is what the property tests compare.
"""

import re
from dataclasses import dataclass

_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def unescape_string_literal(token_text: str) -> str:
    """Return the content of a STIX string literal token (`'...'`), with `\\'` and `\\\\` unescaped."""
    # The grammar only admits those two escapes, so a single left-to-right pass is exact (the
    # library's own helper chains two str.replace calls, which is order-sensitive).
    return _ESCAPE.sub(r"\1", token_text[1:-1])


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal as written (`text`) and, when it is a plain string literal, its unescaped content."""

    text: str
    string: str | None


@dataclass(frozen=True, slots=True)
class Comparison:
    """One comparison expression of a pattern, e.g. `file:hashes.'SHA-256' = '...'`."""

    text: str  # the comparison exactly as written, for reports
    path_text: str  # the object path exactly as written
    object_type: str
    path: tuple[str, ...]  # property path after the colon, unquoted; index steps as "[n]" / "[*]"
    operator: str  # "=", "!=", "IN", ">", "LIKE", "MATCHES", "ISSUBSET", "ISSUPERSET", "EXISTS"...
    negated: bool
    literals: tuple[Literal, ...]  # one for most operators, the members for IN, none for EXISTS
