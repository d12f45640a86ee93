"""Admission checks the CRD schema cannot express: they need the cluster's state or arithmetic on
Kubernetes quantities. They give fast feedback at apply time; the collection Lease, not this webhook,
is what guarantees one resource per collection (two simultaneous applies can both pass a webhook).

Which requests are judged at all is decided here too (`checks_for`): kopf's own finalizer and
annotation patches, status writes and anything on an object being deleted pass untouched, or a
resource waiting for a collection could never be deleted. The webhook tells the caller nothing about
Secrets: whoever may create a SekoiaIntelSync may not be allowed to read them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from . import naming, policy
from .spec import SpecError, SyncSpec, parse_spec

#: collection UUID -> (holder identity, holder uid) of a live holder, or None.
ClaimLookup = Callable[[str], "tuple[str, str] | None"]


@dataclass(frozen=True)
class Checks:
    """What to judge in one admission request."""

    spec: bool
    claim: bool


def _collection(obj: Mapping[str, Any] | None) -> str | None:
    sekoia = ((obj or {}).get("spec") or {}).get("sekoia") or {}
    value = sekoia.get("collectionId")
    return naming.collection_key(value) if isinstance(value, str) else None


def checks_for(operation: str | None, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> Checks:
    """Which checks an admission request deserves.

    CREATE: everything. UPDATE: nothing when the object is being deleted or the spec did not change
    (metadata and status patches); the spec checks when it changed, and the claim only when the
    change touches the collection.
    """
    if operation == "CREATE":
        return Checks(spec=True, claim=True)
    if operation != "UPDATE" or new is None:
        return Checks(spec=False, claim=False)
    if (new.get("metadata") or {}).get("deletionTimestamp"):
        return Checks(spec=False, claim=False)
    if old is not None and (old.get("spec") or {}) == (new.get("spec") or {}):
        return Checks(spec=False, claim=False)
    return Checks(spec=True, claim=old is None or _collection(old) != _collection(new))


def client_allowed(peer: Mapping[str, Any] | None, allowed_names: Sequence[str]) -> bool:
    """Whether the verified client certificate (as `ssl.getpeercert()` gives it) names an allowed
    client: its subject common name or a DNS subjectAltName. An empty list allows any verified cert."""
    if not peer:
        return False
    if not allowed_names:
        return True
    names = {value for rdn in peer.get("subject") or () for key, value in rdn if key == "commonName"}
    names |= {value for key, value in peer.get("subjectAltName") or () if key == "DNS"}
    return bool(names & set(allowed_names))


@dataclass
class Verdict:
    """Reasons to reject (errors) and things the user should know (warnings)."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_resources(spec: SyncSpec) -> list[str]:
    """Requests above limits would be accepted here but make every runtime Pod fail to be created."""
    resources = spec.runtime.resources or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    errors = []
    for name in sorted(set(requests) & set(limits)):
        try:
            if parse_quantity(requests[name]) > parse_quantity(limits[name]):
                errors.append(
                    f"spec.runtime.resources: the {name} request ({requests[name]}) is above its limit "
                    f"({limits[name]})"
                )
        except ValueError as exc:
            errors.append(f"spec.runtime.resources.{name}: {exc}")
    return errors


def _image_warnings(spec: SyncSpec) -> list[str]:
    image = spec.runtime.image
    if not image or "@" in image:
        return []
    last = image.rsplit("/", 1)[-1]
    if ":" not in last or last.endswith(":latest"):
        return [
            f"spec.runtime.image {image!r} has no fixed tag or digest: restarts may run a different runtime"
        ]
    return []


def validate(
    raw_spec: Mapping[str, Any] | None,
    *,
    uid: str | None,
    claim_lookup: ClaimLookup,
    allowlists: policy.Allowlists | None = None,
    default_image: str = "",
    check_claim: bool = True,
) -> Verdict:
    """Judge a SekoiaIntelSync about to be stored. `uid` is None on creation.

    With `allowlists`, the operator's policy is enforced at admission too (the reconciler enforces it
    again, so a resource stored while the webhook was down still runs nothing it may not).
    """
    verdict = Verdict()
    try:
        spec = parse_spec(raw_spec)
    except SpecError as exc:
        verdict.errors.append(str(exc))
        return verdict

    collection = naming.collection_key(spec.sekoia.collection_id)
    holder = claim_lookup(collection) if check_claim else None
    if holder is not None and holder[1] != uid:
        verdict.errors.append(
            f"collection {collection} is already synced by {holder[0]}: one collection can be fed by only "
            "one SekoiaIntelSync; delete that one first or choose another collection"
        )
    verdict.errors += check_resources(spec)
    if allowlists is not None:
        verdict.errors += [
            v.message for v in policy.check(spec, allowlists, default_image=default_image).violations
        ]
    verdict.warnings += _image_warnings(spec)
    if spec.sekoia.url.lower().startswith("http://"):
        verdict.warnings.append("spec.sekoia.url uses plain http: the API key would travel unencrypted")
    return verdict
