"""Admission checks the CRD schema cannot express: they need the cluster's state or arithmetic on
Kubernetes quantities. They give fast feedback at apply time; the collection Lease, not this webhook,
is what guarantees one resource per collection (two simultaneous applies can both pass a webhook).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from . import naming, policy
from .spec import SpecError, SyncSpec, parse_spec

#: lease name -> (holder identity, holder uid) of a live holder, or None.
ClaimLookup = Callable[[str], "tuple[str, str] | None"]
#: secret name -> (exists, base64 data); None when the operator may not read it.
SecretLookup = Callable[[str], "tuple[bool, Mapping[str, str]] | None"]


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


def _secret_warnings(spec: SyncSpec, secret_lookup: SecretLookup) -> list[str]:
    ref = spec.credentials_secret_ref
    found = secret_lookup(ref.name)
    if found is None:
        return []
    exists, data = found
    if not exists:
        return [
            f"Secret {ref.name!r} does not exist yet: the runtime will not start until it is created with "
            f"the keys {ref.opencti_token_key!r} and {ref.sekoia_api_key_key!r}"
        ]
    missing = [k for k in ref.keys if k not in data]
    if missing:
        return [f"Secret {ref.name!r} has no key {', '.join(repr(k) for k in missing)} yet"]
    return []


def validate(
    raw_spec: Mapping[str, Any] | None,
    *,
    uid: str | None,
    claim_lookup: ClaimLookup,
    secret_lookup: SecretLookup,
    allowlists: policy.Allowlists | None = None,
    default_image: str = "",
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

    lease = naming.claim_name(spec.sekoia.url, spec.sekoia.collection_id)
    holder = claim_lookup(lease)
    if holder is not None and holder[1] != uid:
        collection = naming.collection_key(spec.sekoia.url, spec.sekoia.collection_id)
        verdict.errors.append(
            f"collection {collection} is already synced by {holder[0]}: one collection can be fed by only "
            "one SekoiaIntelSync; delete that one first or choose another collection"
        )
    verdict.errors += check_resources(spec)
    if allowlists is not None:
        verdict.errors += [
            v.message for v in policy.check(spec, allowlists, default_image=default_image).violations
        ]
    verdict.warnings += _secret_warnings(spec, secret_lookup)
    verdict.warnings += _image_warnings(spec)
    if spec.sekoia.url.lower().startswith("http://"):
        verdict.warnings.append("spec.sekoia.url uses plain http: the API key would travel unencrypted")
    return verdict
