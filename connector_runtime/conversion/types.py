"""Sekoia.io observable type names (the `format` of the IOC collection text import).

Defined here because the Sekoia client module does not exist yet; once it does, these names should
be imported from it so that the converter and the client cannot disagree.
"""

from typing import Final

IPV4_ADDR: Final = "ipv4-addr.value"
IPV6_ADDR: Final = "ipv6-addr.value"
DOMAIN_NAME: Final = "domain-name.value"
URL: Final = "url.value"
EMAIL_ADDR: Final = "email-addr.value"
# Sekoia detects the algorithm (MD5, SHA-1, SHA-256, SHA-512) from the value's length.
FILE_HASHES: Final = "file.hashes"

ALL_TYPES: Final = frozenset({IPV4_ADDR, IPV6_ADDR, DOMAIN_NAME, URL, EMAIL_ADDR, FILE_HASHES})
