"""Credential checks name keys, never values; the fingerprint only moves with referenced values."""

from __future__ import annotations

import base64

from sekoia_intel_operator.secrets import check_credentials, fingerprint

KEYS = ("opencti-token", "sekoia-api-key")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


DATA = {"opencti-token": _b64("octi-SECRET"), "sekoia-api-key": _b64("sek-SECRET"), "other": _b64("x")}


def test_valid() -> None:
    check = check_credentials("creds", DATA, KEYS, "uid", exists=True)
    assert check.valid and check.fingerprint
    assert "SECRET" not in check.message and "SECRET" not in (check.fingerprint or "")


def test_missing_secret_key_and_empty_value() -> None:
    assert check_credentials("creds", None, KEYS, "uid", exists=False).reason == "SecretNotFound"
    missing = check_credentials("creds", {"opencti-token": DATA["opencti-token"]}, KEYS, "uid", exists=True)
    assert missing.reason == "SecretKeyMissing" and "'sekoia-api-key'" in missing.message
    empty = check_credentials("creds", {**DATA, "sekoia-api-key": _b64("  ")}, KEYS, "uid", exists=True)
    assert empty.reason == "SecretKeyEmpty"


def test_fingerprint_moves_only_with_referenced_values() -> None:
    base = fingerprint("uid", DATA, KEYS)
    assert fingerprint("uid", {**DATA, "other": _b64("y")}, KEYS) == base
    assert fingerprint("uid", {**DATA, "sekoia-api-key": _b64("rotated")}, KEYS) != base
    assert fingerprint("another-uid", DATA, KEYS) != base  # salted per resource


def test_a_malformed_value_is_refused_naming_the_key_never_the_value() -> None:
    for bad in ("sek-SECRET-line1\nline2", "sek-SECRET-trailing\n", " sek-SECRET-leading", "sek\x00SECRET"):
        check = check_credentials("creds", {**DATA, "sekoia-api-key": _b64(bad)}, KEYS, "uid", exists=True)
        assert not check.valid and check.reason == "SecretKeyMalformed"
        assert check.message.startswith("Secret 'creds' key 'sekoia-api-key' ")
        assert "SECRET" not in check.message and "line2" not in check.message and "\n" not in check.message
        assert check.fingerprint is None
