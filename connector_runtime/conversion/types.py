"""Sekoia.io observable type names, as the converter uses them.

The names are defined once, by the Sekoia client's protocol module, so that the converter and the
client cannot disagree; this module only gives them the converter's spelling.
"""

from connector_runtime.sekoia.protocol import DOMAIN as DOMAIN_NAME
from connector_runtime.sekoia.protocol import EMAIL as EMAIL_ADDR
from connector_runtime.sekoia.protocol import FILE_HASHES, URL
from connector_runtime.sekoia.protocol import IPV4 as IPV4_ADDR
from connector_runtime.sekoia.protocol import IPV6 as IPV6_ADDR
from connector_runtime.sekoia.protocol import TYPES as ALL_TYPES

__all__ = ["ALL_TYPES", "DOMAIN_NAME", "EMAIL_ADDR", "FILE_HASHES", "IPV4_ADDR", "IPV6_ADDR", "URL"]
