"""Credential checks name keys, never values; the fingerprint only moves with referenced values."""

from __future__ import annotations

import base64

from sekoia_intel_operator.secrets import (
    OPT_IN_LABEL,
    REASON_NOT_OPTED_IN,
    check_ca_bundle_secret,
    check_credentials,
    fingerprint,
    not_readable,
)

KEYS = ("opencti-token", "sekoia-api-key")
OPTED_IN = {OPT_IN_LABEL: "true"}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


DATA = {"opencti-token": _b64("octi-SECRET"), "sekoia-api-key": _b64("sek-SECRET"), "other": _b64("x")}


def test_valid() -> None:
    check = check_credentials("creds", DATA, KEYS, "uid", exists=True, labels=OPTED_IN)
    assert check.valid and check.fingerprint
    assert "SECRET" not in check.message and "SECRET" not in (check.fingerprint or "")


def test_missing_secret_key_and_empty_value() -> None:
    assert check_credentials("creds", None, KEYS, "uid", exists=False).reason == "SecretNotFound"
    one_key = {"opencti-token": DATA["opencti-token"]}
    missing = check_credentials("creds", one_key, KEYS, "uid", exists=True, labels=OPTED_IN)
    assert missing.reason == "SecretKeyMissing" and "'sekoia-api-key'" in missing.message
    blank = {**DATA, "sekoia-api-key": _b64("  ")}
    empty = check_credentials("creds", blank, KEYS, "uid", exists=True, labels=OPTED_IN)
    assert empty.reason == "SecretKeyEmpty"


def test_a_secret_without_the_opt_in_label_is_refused_with_the_fix() -> None:
    for labels in (None, {}, {OPT_IN_LABEL: "false"}, {OPT_IN_LABEL: "True"}):
        check = check_credentials("creds", DATA, KEYS, "uid", exists=True, labels=labels, namespace="team-a")
        assert not check.valid and check.refused and check.reason == "SecretNotOptedIn"
        assert check.fingerprint is None  # nothing derived from a Secret that was not offered
        assert "kubectl -n team-a label secret creds sync.sekoia-intel.dev/credentials=true" in check.message
        assert "SECRET" not in check.message
    # Checked before the keys: an un-labelled Secret does not even reveal which keys it lacks.
    unlabelled = check_credentials("creds", {}, KEYS, "uid", exists=True, namespace="team-a")
    assert unlabelled.reason == "SecretNotOptedIn" and "sekoia-api-key" not in unlabelled.message


def test_unreadable_secret_names_the_rolebinding_to_create() -> None:
    grant = "kubectl -n team-a create rolebinding x --clusterrole=r --serviceaccount=sys:op"
    check = not_readable("team-a", "creds", grant)
    assert check.refused and check.reason == "SecretNotReadable" and grant in check.message
    assert "RoleBinding" in not_readable("team-a", "creds", None).message


def test_fingerprint_moves_only_with_referenced_values() -> None:
    base = fingerprint("uid", DATA, KEYS)
    assert fingerprint("uid", {**DATA, "other": _b64("y")}, KEYS) == base
    assert fingerprint("uid", {**DATA, "sekoia-api-key": _b64("rotated")}, KEYS) != base
    assert fingerprint("another-uid", DATA, KEYS) != base  # salted per resource


def test_a_malformed_value_is_refused_naming_the_key_never_the_value() -> None:
    for bad in ("sek-SECRET-line1\nline2", "sek-SECRET-trailing\n", " sek-SECRET-leading", "sek\x00SECRET"):
        check = check_credentials(
            "creds", {**DATA, "sekoia-api-key": _b64(bad)}, KEYS, "uid", exists=True, labels=OPTED_IN
        )
        assert not check.valid and check.reason == "SecretKeyMalformed"
        assert check.message.startswith("Secret 'creds' key 'sekoia-api-key' ")
        assert "SECRET" not in check.message and "line2" not in check.message and "\n" not in check.message
        assert check.fingerprint is None


def test_a_ca_bundle_secret_needs_the_same_opt_in_as_credentials() -> None:
    pem = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()
    args = {"exists": True, "namespace": "intel"}
    refused = check_ca_bundle_secret("corp-ca", {"ca.crt": pem}, "ca.crt", labels={}, **args)
    assert refused is not None and refused.reason == REASON_NOT_OPTED_IN and refused.refused
    assert "kubectl -n intel label secret corp-ca" in refused.message
    opted = {OPT_IN_LABEL: "true"}
    # A PEM bundle spans lines: unlike a token, its newlines are not a malformation.
    assert check_ca_bundle_secret("corp-ca", {"ca.crt": pem}, "ca.crt", labels=opted, **args) is None
    missing = check_ca_bundle_secret("corp-ca", {"other": pem}, "ca.crt", labels=opted, **args)
    assert missing is not None and missing.reason == "SecretKeyMissing" and pem not in missing.message
