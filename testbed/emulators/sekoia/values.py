"""Observable value checks of the emulator: which Sekoia type a value has and whether it is valid.

Sekoia accepts IPv4, IPv6, domain names, URLs, e-mail addresses and MD5/SHA-1/SHA-256/SHA-512 hashes
(all hashes under `file.hashes`); CIDR ranges are refused. These checks are deliberately
independent from the runtime's own code so that the emulator can catch the runtime's mistakes.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

IPV4 = "ipv4-addr.value"
IPV6 = "ipv6-addr.value"
DOMAIN = "domain-name.value"
URL = "url.value"
EMAIL = "email-addr.value"
HASHES = "file.hashes"

TYPES: tuple[str, ...] = (IPV4, IPV6, DOMAIN, URL, EMAIL, HASHES)

# STIX observable type reported in `x_ic_observable_types` for each Sekoia type.
OBSERVABLE_TYPE = {
    IPV4: "ipv4-addr",
    IPV6: "ipv6-addr",
    DOMAIN: "domain-name",
    URL: "url",
    EMAIL: "email-addr",
    HASHES: "file",
}

_HASH_ALGORITHMS = {32: "MD5", 40: "SHA-1", 64: "SHA-256", 128: "SHA-512"}
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_TLD = re.compile(r"^(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})$")
_EMAIL_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")


class InvalidValue(ValueError):
    """The value cannot be stored with the requested (or any) type; the message says why."""


def hash_algorithm(value: str) -> str | None:
    """Return the hash algorithm name a hex string's length implies, or None when it is no hash."""
    if _HEX.match(value):
        return _HASH_ALGORITHMS.get(len(value))
    return None


def _is_domain(value: str) -> bool:
    if len(value) > 253 or "." not in value:
        return False
    labels = value.rstrip(".").split(".")
    return all(_LABEL.match(label) for label in labels[:-1]) and bool(_TLD.match(labels[-1]))


def _check_ip(value: str, version: int) -> None:
    if "/" in value:
        raise InvalidValue(f"CIDR ranges are not supported: {value!r}")
    try:
        address = ipaddress.ip_address(value)
    except ValueError as exc:
        raise InvalidValue(f"{value!r} is not a valid IPv{version} address") from exc
    if address.version != version:
        raise InvalidValue(f"{value!r} is not a valid IPv{version} address")


def _check_url(value: str) -> None:
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc or any(c.isspace() for c in value):
        raise InvalidValue(f"{value!r} is not a valid URL")


def _check_email(value: str) -> None:
    local, sep, domain = value.rpartition("@")
    if not sep or not _EMAIL_LOCAL.match(local) or not _is_domain(domain):
        raise InvalidValue(f"{value!r} is not a valid e-mail address")


def check(value: str, sekoia_type: str) -> None:
    """Raise InvalidValue unless `value` is a valid observable of `sekoia_type`."""
    if sekoia_type == IPV4:
        _check_ip(value, 4)
    elif sekoia_type == IPV6:
        _check_ip(value, 6)
    elif sekoia_type == DOMAIN:
        if not _is_domain(value):
            raise InvalidValue(f"{value!r} is not a valid domain name")
    elif sekoia_type == URL:
        _check_url(value)
    elif sekoia_type == EMAIL:
        _check_email(value)
    elif sekoia_type == HASHES:
        if hash_algorithm(value) is None:
            raise InvalidValue(f"{value!r} is not an MD5, SHA-1, SHA-256 or SHA-512 hash")
    else:
        raise InvalidValue(f"unknown indicator type {sekoia_type!r}")


def infer_type(value: str) -> str:
    """Guess the Sekoia type of a value the way a text import would; raise InvalidValue if none fits."""
    if hash_algorithm(value):
        return HASHES
    if "/" in value and "://" not in value:
        head = value.split("/", 1)[0]
        try:
            ipaddress.ip_address(head)
        except ValueError:
            pass
        else:
            raise InvalidValue(f"CIDR ranges are not supported: {value!r}")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        return IPV4 if address.version == 4 else IPV6
    if "://" in value:
        _check_url(value)
        return URL
    if "@" in value:
        _check_email(value)
        return EMAIL
    if _is_domain(value):
        return DOMAIN
    raise InvalidValue(f"{value!r} is not a supported observable")


def dedup_key(value: str, sekoia_type: str) -> str:
    """Key under which two spellings of the same observable are the same indicator."""
    if sekoia_type in (DOMAIN, EMAIL, HASHES):
        return value.lower().rstrip(".")
    if sekoia_type == IPV6:
        return ipaddress.ip_address(value).compressed
    return value


def stix_pattern(value: str, sekoia_type: str) -> str:
    """STIX pattern Sekoia would show for the value."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    if sekoia_type == HASHES:
        algorithm = hash_algorithm(value) or "MD5"
        return f"[file:hashes.'{algorithm}' = '{escaped}']"
    observable, _, prop = sekoia_type.partition(".")
    return f"[{observable}:{prop} = '{escaped}']"
