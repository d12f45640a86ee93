"""Which STIX object paths Sekoia accepts, under which Sekoia type, and how their values normalise."""

from typing import NamedTuple

from . import normalize, reasons
from .types import DOMAIN_NAME, EMAIL_ADDR, FILE_HASHES, IPV4_ADDR, IPV6_ADDR, URL


class Target(NamedTuple):
    """Where a comparison's values go: the Sekoia type and the normaliser for its values."""

    sekoia_type: str
    normalise: normalize.Normaliser


# Observables identified by their `value` property. `hostname` is OpenCTI's custom observable for
# host names; Sekoia has no separate type for it, and a host name is looked up as a domain.
_VALUE_TARGETS: dict[str, Target] = {
    "ipv4-addr": Target(IPV4_ADDR, normalize.ipv4),
    "ipv6-addr": Target(IPV6_ADDR, normalize.ipv6),
    "domain-name": Target(DOMAIN_NAME, normalize.domain),
    "hostname": Target(DOMAIN_NAME, normalize.domain),
    "url": Target(URL, normalize.url),
    "email-addr": Target(EMAIL_ADDR, normalize.email),
}

# Keyed by the algorithm name upper-cased without separators, so `'SHA-256'`, `SHA256` and `sha256`
# all match. The length check catches a digest filed under the wrong algorithm.
_HASH_TARGETS: dict[str, Target] = {
    "MD5": Target(FILE_HASHES, normalize.hash_of_length(32)),
    "SHA1": Target(FILE_HASHES, normalize.hash_of_length(40)),
    "SHA256": Target(FILE_HASHES, normalize.hash_of_length(64)),
    "SHA512": Target(FILE_HASHES, normalize.hash_of_length(128)),
}


def resolve(object_type: str, path: tuple[str, ...]) -> Target | str:
    """Return the Target for `object_type:path`, or the reason it cannot be sent to Sekoia."""
    if object_type in _VALUE_TARGETS:
        return _VALUE_TARGETS[object_type] if path == ("value",) else reasons.UNSUPPORTED_PROPERTY
    if object_type == "file":
        if len(path) == 2 and path[0] == "hashes":
            target = _HASH_TARGETS.get(path[1].upper().replace("-", "").replace("_", ""))
            if target is not None:
                return target
        return reasons.UNSUPPORTED_PROPERTY
    return reasons.UNSUPPORTED_OBJECT_TYPE
