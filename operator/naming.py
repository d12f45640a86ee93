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
_CHILD_PREFIX = "sis-"
_CHILD_HASH_CHARS = 10
CLAIM_PREFIX = "sis-claim-"
#: Label on runtime Deployments and Pods: which collection they feed, so that a new claim holder can
#: see every runtime of its collection, including one whose resource is gone.
LABEL_COLLECTION = f"{PREFIX}collection"


def _hash(text: str, chars: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:chars]


def child_name(namespace: str, sync_name: str, uid: str) -> str:
    """Name of the Deployment, ServiceAccount, Role and RoleBinding of one resource.

    `sis-<readable part of the name>-<hash of namespace/name/uid>`: the hash makes two resources'
    children distinct even when their names share a long prefix or end like another's hash, and the
    uid makes a re-created resource of the same name start from fresh children. At most 63 characters
    (a DNS label, valid for all four kinds).
    """
    suffix = _hash(f"{namespace}/{sync_name}/{uid}", _CHILD_HASH_CHARS)
    room = _MAX_LABEL - len(_CHILD_PREFIX) - len(suffix) - 1
    head = sync_name[:room].rstrip("-.")
    return f"{_CHILD_PREFIX}{head}-{suffix}" if head else f"{_CHILD_PREFIX}{suffix}"


def legacy_child_name(sync_name: str) -> str:
    """The child name used by earlier operator versions (`sis-<name>`, hashed when too long).

    Only to find children made by such a version: such a name could be shared by two resources,
    so a child found under it is used only when its ownerReferences name the resource.
    """
    name = f"{_CHILD_PREFIX}{sync_name}"
    if len(name) <= _MAX_LABEL:
        return name
    suffix = _hash(sync_name, 8)
    head = name[: _MAX_LABEL - len(suffix) - 1].rstrip("-.")
    return f"{head}-{suffix}"


def connector_id(uid: str) -> str:
    """The connector id registered in OpenCTI: stable for the life of the resource."""
    return str(uuid.uuid5(_CONNECTOR_NAMESPACE, f"{API_GROUP}/{KIND}/{uid}"))


def canonical_api_root(url: str) -> str:
    """Normalisation of a Sekoia.io API root by earlier versions (only for `legacy_claim_name`)."""
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


def collection_key(collection_id: str) -> str:
    """Identity of a collection: its bare lower-case UUID.

    A collection UUID is unique across Sekoia.io, and the API URL can be spelled in many ways that
    reach the same endpoint (`/v2/inthreat/ioc-collections` or not, a trailing dot on the host,
    `/./`); keying on the URL let two spellings run two runtimes into one collection.
    """
    return canonical_collection(collection_id)


def claim_name(collection_id: str) -> str:
    """Name of the Lease that claims a collection: `sis-claim-<uuid>` (46 characters, readable)."""
    return f"{CLAIM_PREFIX}{collection_key(collection_id)}"


def legacy_claim_name(sekoia_url: str, collection_id: str) -> str:
    """Lease name used by earlier operator versions, which keyed the claim on the API root as well."""
    key = f"{canonical_api_root(sekoia_url)}/{canonical_collection(collection_id)}"
    return f"{CLAIM_PREFIX}{_hash(key, _CLAIM_HASH_CHARS)}"


def collection_of_claim(annotation: str) -> str:
    """The collection UUID recorded in a claim Lease's annotation, current (`<uuid>`) or legacy
    (`<api root>/<uuid>`)."""
    return canonical_collection(annotation.rstrip("/").rsplit("/", 1)[-1])


def holder_identity(namespace: str, name: str) -> str:
    """How a resource is named in a claim and in messages."""
    return f"{namespace}/{name}"


def status_resource(namespace: str, name: str) -> str:
    """Value of RUNTIME_STATUS_RESOURCE: which resource's status the runtime reports into."""
    return f"{namespace}/{name}"
