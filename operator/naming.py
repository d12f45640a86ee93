"""Names derived from a SekoiaIntelSync: child objects, connector identity, collection claim.

Every function here is deterministic: the same resource always yields the same names, which is what
lets a restarted operator find its children and a restarted runtime resume its stream position.
"""

from __future__ import annotations

import hashlib
import uuid
from urllib.parse import urlsplit, urlunsplit

API_GROUP = "sync.sekoia-intel.dev"
API_VERSION = "v1alpha1"
KIND = "SekoiaIntelSync"
PLURAL = "sekoiaintelsyncs"

#: Prefix of every label/annotation the operator owns.
PREFIX = f"{API_GROUP}/"
LABEL_UID = f"{PREFIX}uid"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "sekoia-intel-operator"
ANNOTATION_SYNC_NAME = f"{PREFIX}sync-name"
ANNOTATION_CREDENTIALS_HASH = f"{PREFIX}credentials-hash"
ANNOTATION_RECONCILE_REQUEST = f"{PREFIX}reconcile-requested"

# Fixed namespace for uuid5: changing it would change every CONNECTOR_ID and make runtimes replay.
_CONNECTOR_NAMESPACE = uuid.UUID("0b0c4a1e-5e6f-5a3c-9d2e-7c1f7e0a4b21")

_MAX_LABEL = 63
_CLAIM_HASH_CHARS = 40


def _hash(text: str, chars: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:chars]


def child_name(sync_name: str) -> str:
    """Name of the Deployment, ServiceAccount, Role and RoleBinding of one resource.

    Kept within 63 characters (a DNS label, valid for all four kinds) by truncating long names and
    appending a hash of the full name, so two long names sharing a prefix still get distinct children.
    """
    name = f"sis-{sync_name}"
    if len(name) <= _MAX_LABEL:
        return name
    suffix = _hash(sync_name, 8)
    head = name[: _MAX_LABEL - len(suffix) - 1].rstrip("-.")
    return f"{head}-{suffix}"


def connector_id(uid: str) -> str:
    """The connector id registered in OpenCTI: stable for the life of the resource."""
    return str(uuid.uuid5(_CONNECTOR_NAMESPACE, f"{API_GROUP}/{KIND}/{uid}"))


def canonical_api_root(url: str) -> str:
    """Normalise a Sekoia.io API root so that spelling variants name the same tenant.

    Scheme and host are case-insensitive, default ports and trailing slashes carry no meaning.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port is not None and not ((scheme == "https" and port == 443) or (scheme == "http" and port == 80)):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, host, path, "", ""))


def canonical_collection(collection_id: str) -> str:
    """The bare, lower-case UUID of a collection id written bare or as `ioc-collection--<uuid>`."""
    value = collection_id.strip().lower()
    return value.removeprefix("ioc-collection--")


def collection_key(sekoia_url: str, collection_id: str) -> str:
    """Human-readable identity of a collection: canonical API root + "/" + collection UUID."""
    return f"{canonical_api_root(sekoia_url)}/{canonical_collection(collection_id)}"


def claim_name(sekoia_url: str, collection_id: str) -> str:
    """Name of the Lease that claims a collection (a valid object name whatever the URL holds)."""
    return f"sis-claim-{_hash(collection_key(sekoia_url, collection_id), _CLAIM_HASH_CHARS)}"


def holder_identity(namespace: str, name: str) -> str:
    """How a resource is named in a claim and in messages."""
    return f"{namespace}/{name}"


def status_resource(namespace: str, name: str) -> str:
    """Value of RUNTIME_STATUS_RESOURCE: which resource's status the runtime reports into."""
    return f"{namespace}/{name}"
