"""Per-type value normalisation and validation.

Each normaliser takes the unescaped literal and returns the value Sekoia should receive, or raises
RejectedValue with a reason from `reasons`.
"""

import ipaddress
import re
from collections.abc import Callable

from . import reasons


class RejectedValue(ValueError):
    """The literal cannot become a Sekoia value; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Normaliser = Callable[[str], str]

# Sekoia's text import is one value per line, so a line break inside a value would silently become
# two values; other control characters are never part of a real observable either. Nor is a lone
# surrogate (a JSON `\ud800` escape gives one): it cannot be encoded as UTF-8, so the search that
# revokes the value would fail on it.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_PREFIX = re.compile(r"[0-9]{1,3}")
_LABEL = re.compile(r"[\w-]{1,63}")  # str patterns: \w includes non-ASCII letters (IDN in U-label form)
_LOCAL_PART = re.compile(r"[^\s@]+")


def _clean(raw: str) -> str:
    value = raw.strip()
    if not value:
        raise RejectedValue(reasons.EMPTY_VALUE)
    if _CONTROL.search(value):
        raise RejectedValue(reasons.INVALID_VALUE)
    return value


def _check_prefix(value: str, host_prefix: int) -> None:
    """Accept no prefix or a host-sized one; any other prefix is a range (or junk)."""
    _, slash, prefix = value.partition("/")
    if not slash:
        return
    if not _PREFIX.fullmatch(prefix) or int(prefix) > host_prefix:
        raise RejectedValue(reasons.INVALID_VALUE)
    if int(prefix) != host_prefix:
        raise RejectedValue(reasons.CIDR_RANGE)


def ipv4(raw: str) -> str:
    """Canonical dotted-quad; `/32` dropped; other prefixes rejected as CIDR ranges."""
    value = _clean(raw)
    address = value.partition("/")[0]
    try:
        # Strict: leading zeros are rejected, as they are ambiguous (octal in some tools).
        canonical = str(ipaddress.IPv4Address(address))
    except ValueError:
        raise RejectedValue(reasons.INVALID_VALUE) from None
    _check_prefix(value, 32)
    return canonical


def ipv6(raw: str) -> str:
    """Compressed canonical form; `/128` dropped; other prefixes rejected as CIDR ranges."""
    value = _clean(raw)
    address = value.partition("/")[0]
    if "%" in address:  # a zone index only means something on the host that wrote it
        raise RejectedValue(reasons.INVALID_VALUE)
    try:
        canonical = ipaddress.IPv6Address(address).compressed
    except ValueError:
        raise RejectedValue(reasons.INVALID_VALUE) from None
    _check_prefix(value, 128)
    return canonical


def domain(raw: str) -> str:
    """Lower-case, without the root's trailing dot; labels of letters, digits, `-` and `_`."""
    value = _clean(raw).lower()
    if value.endswith("."):
        value = value[:-1]
    if not value or len(value) > 253 or not all(_LABEL.fullmatch(label) for label in value.split(".")):
        raise RejectedValue(reasons.INVALID_VALUE)
    return value


def url(raw: str) -> str:
    """Kept exactly as given apart from surrounding whitespace: any rewrite could change the IOC."""
    return _clean(raw)


def email(raw: str) -> str:
    """`local@domain` with the domain normalised; the local part is case-sensitive and kept."""
    value = _clean(raw)
    local, at, host = value.rpartition("@")
    if not at or not _LOCAL_PART.fullmatch(local):
        raise RejectedValue(reasons.INVALID_VALUE)
    return f"{local}@{domain(host)}"


def hash_of_length(length: int) -> Normaliser:
    """A normaliser for hex digests of exactly `length` characters, returned in lower case."""
    pattern = re.compile(f"[0-9a-f]{{{length}}}")

    def normalise(raw: str) -> str:
        value = _clean(raw).lower()
        if not pattern.fullmatch(value):
            raise RejectedValue(reasons.INVALID_VALUE)
        return value

    return normalise
