"""Checks and fingerprints of the credentials Secret, without ever exposing its values.

The operator reads the Secret only to (1) tell the user precisely what is missing and (2) compute a
fingerprint that rolls the runtime when the referenced values change. Neither output may contain,
or allow recovering, a secret value: the fingerprint is a salted hash and messages name keys only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

REASON_VALID = "CredentialsFound"
REASON_SECRET_NOT_FOUND = "SecretNotFound"
REASON_KEY_MISSING = "SecretKeyMissing"
REASON_KEY_EMPTY = "SecretKeyEmpty"
REASON_NOT_OPTED_IN = "SecretNotOptedIn"
REASON_NOT_READABLE = "SecretNotReadable"

#: A Secret is usable by a SekoiaIntelSync only when it carries this label with value "true": the
#: Secret's owner, not whoever writes the SekoiaIntelSync, decides that it may leave the namespace.
OPT_IN_LABEL = "sync.sekoia-intel.dev/credentials"
#: Reasons that stop the runtime from existing at all (not merely scaled to zero): the Secret was not
#: offered for this use, so no Pod may reference it.
REFUSED_REASONS = frozenset({REASON_NOT_OPTED_IN, REASON_NOT_READABLE})
REASON_KEY_MALFORMED = "SecretKeyMalformed"


@dataclass(frozen=True)
class CredentialsCheck:
    """Outcome of looking at the referenced Secret."""

    valid: bool
    reason: str
    message: str
    fingerprint: str | None = None

    @property
    def refused(self) -> bool:
        """The Secret may not be used at all: no Deployment may reference it."""
        return not self.valid and self.reason in REFUSED_REASONS


def _decoded(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def value_problem(raw: bytes) -> str | None:
    """Why a decoded credential cannot be sent as an HTTP header value, or None. The answer never
    quotes the value: it ends up in status and Events."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "is not UTF-8 text"
    if text != text.strip():
        return "has leading or trailing whitespace (often a line break left by `echo`)"
    if any(unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} for c in text):
        return "contains control characters (such as a line break)"
    if not text.isascii():
        return "contains non-ASCII characters, which an HTTP header cannot carry"
    return None


def fingerprint(salt: str, data: Mapping[str, str], keys: Sequence[str]) -> str:
    """Salted SHA-256 over the referenced keys of a Secret's base64 `data`.

    Only the referenced keys count, so unrelated keys in a shared Secret do not restart the runtime.
    The salt (the resource uid) stops anyone from matching the hash against a dictionary of tokens.
    """
    digest = hashlib.sha256()
    digest.update(salt.encode("utf-8"))
    for key in keys:
        digest.update(b"\x00" + key.encode("utf-8") + b"\x00")
        digest.update((data.get(key) or "").encode("ascii", "replace"))
    return digest.hexdigest()[:32]


def opt_in_command(namespace: str, secret_name: str) -> str:
    """The command that offers a Secret to SekoiaIntelSyncs."""
    return f"kubectl -n {namespace} label secret {secret_name} {OPT_IN_LABEL}=true"


def not_readable(namespace: str, secret_name: str, grant: str | None) -> CredentialsCheck:
    """The operator got 403 reading the Secret: say which RoleBinding would let it."""
    how = (
        f"bind the operator's Secret-reader role in this namespace: {grant}"
        if grant
        else "grant the operator's ServiceAccount `get` on Secrets in this namespace with a RoleBinding"
    )
    return CredentialsCheck(
        False,
        REASON_NOT_READABLE,
        f"the operator may not read Secret {secret_name!r} in namespace {namespace!r}; {how}",
    )


def _unusable(
    secret_name: str,
    data: Mapping[str, str] | None,
    keys: Sequence[str],
    *,
    exists: bool,
    labels: Mapping[str, str] | None,
    namespace: str,
) -> CredentialsCheck | None:
    """Why a referenced Secret cannot be used at all (absent, not offered, key missing), or None."""
    if not exists:
        return CredentialsCheck(
            False,
            REASON_SECRET_NOT_FOUND,
            f"Secret {secret_name!r} does not exist in this namespace; create it with the keys "
            f"{', '.join(repr(k) for k in keys)}",
        )
    if (labels or {}).get(OPT_IN_LABEL) != "true":
        command = opt_in_command(namespace or "<namespace>", secret_name)
        return CredentialsCheck(
            False,
            REASON_NOT_OPTED_IN,
            f"Secret {secret_name!r} is not opted in for SekoiaIntelSync use (label {OPT_IN_LABEL}=true "
            f"missing); its owner can allow it with: {command}",
        )
    missing = [k for k in keys if k not in (data or {})]
    if missing:
        return CredentialsCheck(
            False,
            REASON_KEY_MISSING,
            f"Secret {secret_name!r} has no key {', '.join(repr(k) for k in missing)}",
        )
    return None


def check_ca_bundle_secret(
    secret_name: str,
    data: Mapping[str, str] | None,
    key: str,
    *,
    exists: bool,
    labels: Mapping[str, str] | None,
    namespace: str,
) -> CredentialsCheck | None:
    """Why a Secret named as a CA bundle (`caBundleRef.secretKeyRef`) may not be mounted, or None.

    The same opt-in as for credentials: mounting a Secret into the runtime Pod is using it, and the
    author of the resource may not be allowed to read it.
    """
    return _unusable(secret_name, data, [key], exists=exists, labels=labels, namespace=namespace)


def check_credentials(
    secret_name: str,
    data: Mapping[str, str] | None,
    keys: Sequence[str],
    salt: str,
    *,
    exists: bool,
    labels: Mapping[str, str] | None = None,
    namespace: str = "",
) -> CredentialsCheck:
    """Judge the Secret from its presence, labels and base64 `data` (None when it has no data).

    Messages name the Secret and the keys, never their values.
    """
    refusal = _unusable(secret_name, data, keys, exists=exists, labels=labels, namespace=namespace)
    if refusal is not None:
        return refusal
    data = data or {}
    empty = [k for k in keys if not (_decoded(data[k]) or b"").strip()]
    if empty:
        return CredentialsCheck(
            False,
            REASON_KEY_EMPTY,
            f"Secret {secret_name!r} has an empty value for key {', '.join(repr(k) for k in empty)}",
        )
    for key in keys:
        problem = value_problem(_decoded(data[key]) or b"")
        if problem:
            return CredentialsCheck(
                False,
                REASON_KEY_MALFORMED,
                f"Secret {secret_name!r} key {key!r} {problem}; store the value without it",
            )
    return CredentialsCheck(
        True,
        REASON_VALID,
        f"Secret {secret_name!r} holds both credentials",
        fingerprint(salt, data, keys),
    )
