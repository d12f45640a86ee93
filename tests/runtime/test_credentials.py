"""Credentials are validated before use and never echoed: not by a ConfigError, not on stderr,
not in the termination message, not in a log line, in any form (raw, escaped, encoded)."""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from test_config import SEED_ENV

from connector_runtime import redaction
from connector_runtime.config import ConfigError, load_settings
from connector_runtime.logs import JsonFormatter
from connector_runtime.termination import write_termination_message

LEAKY_KEY = "sekoia-KEY-line1\nline2-do-not-leak"
PIECES = ("sekoia-KEY-line1", "line2-do-not-leak")


def _forms(secret: str) -> list[str]:
    """What a leak of ``secret`` looks like in text: raw, repr/JSON-escaped, URL-encoded, base64."""
    raw = secret.encode()
    return [
        secret,
        secret.encode("unicode_escape").decode(),
        json.dumps(secret)[1:-1],
        quote(secret, safe=""),
        base64.b64encode(raw).decode().rstrip("="),
        *(piece for piece in PIECES if piece in secret),
    ]


def _assert_clean(text: str, secret: str = LEAKY_KEY) -> None:
    for form in _forms(secret):
        assert form not in text, f"{form!r} leaked"


@pytest.fixture(autouse=True)
def _fresh_masker() -> None:
    redaction.clear()


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("SEKOIA_INTEL_APIKEY", LEAKY_KEY, "must not contain control characters"),
        (
            "SEKOIA_INTEL_APIKEY",
            "sekoia-key-with-newline-at-the-end\n",
            "must not have leading or trailing whitespace",
        ),
        ("OPENCTI_TOKEN", " opencti-token-with-a-space", "must not have leading or trailing whitespace"),
        ("OPENCTI_TOKEN", "opencti\x00token-with-nul", "must not contain control characters"),
        ("OPENCTI_TOKEN", "opencti-token-\u2028separator", "must not contain control characters"),
    ],
)
def test_a_malformed_credential_is_refused_naming_the_variable_not_the_value(
    variable: str, value: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={**SEED_ENV, variable: value})
    message = str(caught.value)
    assert message.startswith(f"{variable} ") and problem in message
    assert "\n" not in message
    _assert_clean(message, value.strip() or value)


@pytest.mark.parametrize("variable", ["OPENCTI_URL", "SEKOIA_INTEL_URL"])
def test_a_url_with_userinfo_is_refused_without_echoing_it(variable: str) -> None:
    url = "https://svc-user:Pa55-w0rd-do-not-leak@example.org/api"
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={**SEED_ENV, variable: url})
    message = str(caught.value)
    assert message.startswith(f"{variable} must not contain a user name or password")
    assert "Pa55-w0rd-do-not-leak" not in message and "svc-user" not in message


def test_the_cli_refuses_a_key_with_a_newline_and_leaks_it_nowhere(tmp_path: Path) -> None:
    env = {**SEED_ENV, "SEKOIA_INTEL_APIKEY": LEAKY_KEY}
    env.update(PATH=os.environ["PATH"], RUNTIME_TERMINATION_LOG=str(tmp_path / "termination-log"))
    done = subprocess.run(
        [sys.executable, "-m", "connector_runtime.cli", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "configuration error: SEKOIA_INTEL_APIKEY must not contain control characters "
        "(such as a line break); store the value without them"
    )
    termination = (tmp_path / "termination-log").read_text()
    assert termination.strip() == done.stderr.strip()
    for text in (done.stdout, done.stderr, termination):
        _assert_clean(text)


def test_the_masker_catches_every_form_a_secret_takes() -> None:
    redaction.register([LEAKY_KEY])
    text = " | ".join([*_forms(LEAKY_KEY), repr(LEAKY_KEY), repr(LEAKY_KEY.encode()), "keep-me"])
    masked = redaction.mask(text)
    _assert_clean(masked)
    assert "keep-me" in masked


def test_the_header_error_of_requests_reaches_no_message_unmasked(tmp_path: Path) -> None:
    """The issue's path: `requests` refuses the header and quotes it in its message."""
    redaction.register([LEAKY_KEY])
    with pytest.raises(requests.exceptions.InvalidHeader) as caught:
        requests.get("http://127.0.0.1:9/", headers={"Authorization": f"Bearer {LEAKY_KEY}"}, timeout=1)
    leaked = str(caught.value)
    assert "line2-do-not-leak" in leaked  # the raw material really holds the key...
    reason = redaction.one_line(f"InvalidHeader: {leaked}")
    path = tmp_path / "termination"
    assert write_termination_message(path, f"InvalidHeader: {leaked}")
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "fatal: %s", (leaked,), None)
    record.reason = leaked
    line = JsonFormatter().format(record)
    for text in (reason, path.read_text(), line):  # ...and none of the outputs does
        _assert_clean(text)
        assert "\n" not in text.rstrip("\n")


def test_a_tls_failure_reason_names_the_certificate_problem() -> None:
    from connector_runtime.tls import describe

    try:
        raise requests.exceptions.SSLError(
            "HTTPSConnectionPool(host='x', port=443): Max retries exceeded (Caused by SSLError("
            "SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
            "self-signed certificate (_ssl.c:1006)')))"
        )
    except requests.exceptions.SSLError as exc:
        assert describe(exc) == "certificate verify failed: self-signed certificate"
    assert describe(ValueError("whatever Bearer token")) == "ValueError"
