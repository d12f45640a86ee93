"""Stable, machine-friendly reasons for a comparison that did not become a Sekoia value.

They end up in logs, metrics labels and the `convert` command's output, so treat them as an API:
add new ones freely, never rename.
"""

from typing import Final

NOT_AN_INDICATOR: Final = "not-an-indicator"
NOT_STIX_PATTERN: Final = "not-stix-pattern"
MALFORMED_PATTERN: Final = "malformed-pattern"
UNSUPPORTED_OBJECT_TYPE: Final = "unsupported-object-type"
UNSUPPORTED_PROPERTY: Final = "unsupported-property"
UNSUPPORTED_OPERATOR: Final = "unsupported-operator"
NEGATED: Final = "negated"
CIDR_RANGE: Final = "cidr-range"
INVALID_VALUE: Final = "invalid-value"
EMPTY_VALUE: Final = "empty-value"

ALL_REASONS: Final = frozenset(
    {
        NOT_AN_INDICATOR,
        NOT_STIX_PATTERN,
        MALFORMED_PATTERN,
        UNSUPPORTED_OBJECT_TYPE,
        UNSUPPORTED_PROPERTY,
        UNSUPPORTED_OPERATOR,
        NEGATED,
        CIDR_RANGE,
        INVALID_VALUE,
        EMPTY_VALUE,
    }
)
