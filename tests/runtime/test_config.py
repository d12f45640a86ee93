"""Settings: the seed's variables work unchanged; a bad one gives one clear line and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from connector_runtime.config import (
    Coarsening,
    ConfigError,
    DescriptionMode,
    ValidityGranularity,
    load_settings,
)

UUID = "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
SEED_ENV = {
    "OPENCTI_URL": "http://opencti:8080/",
    "OPENCTI_TOKEN": "opencti-token-value",
    "CONNECTOR_ID": "7a3c1d0e-0000-4000-8000-000000000001",
    "CONNECTOR_NAME": "Sekoia",
    "CONNECTOR_SCOPE": "Sekoia",
    "CONNECTOR_LOG_LEVEL": "info",
    "CONNECTOR_LIVE_STREAM_ID": "live-1",
    "CONNECTOR_LIVE_STREAM_LISTEN_DELETE": "true",
    "CONNECTOR_LIVE_STREAM_NO_DEPENDENCIES": "false",
    "SEKOIA_INTEL_URL": "https://api.sekoia.io/v2/inthreat/ioc-collections",
    "SEKOIA_INTEL_APIKEY": "sekoia-key-value",
    "SEKOIA_INTEL_IOC_COLLECTION_UUID": UUID,
}


def test_seed_environment_variables_work_unchanged() -> None:
    settings = load_settings(environ=SEED_ENV)
    assert settings.opencti_url == "http://opencti:8080"
    assert settings.sekoia_url == "https://api.sekoia.io"
    assert settings.collection_id.endswith(UUID)
    assert settings.no_dependencies is False
    assert settings.listen_delete is True
    assert settings.batch_size == 100
    assert settings.requests_per_second == 5.0
    assert settings.description_mode is DescriptionMode.STREAM
    assert settings.validity_granularity is ValidityGranularity.EXACT
    assert settings.max_coarsening is Coarsening.MERGED
    assert settings.coarse_validity is ValidityGranularity.MONTH


def test_collection_id_accepts_the_prefixed_form() -> None:
    bare = load_settings(environ=SEED_ENV).collection_id
    prefixed = load_settings(
        environ={**SEED_ENV, "SEKOIA_INTEL_IOC_COLLECTION_UUID": f"ioc-collection--{UUID}"}
    )
    assert prefixed.collection_id == bare


def test_seed_config_yml_keys_work_and_environment_wins(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        "opencti:\n  url: 'http://from-file:8080'\n  token: 'file-token'\n"
        "connector:\n  id: 'file-id'\n  live_stream_id: 'file-stream'\n  live_stream_listen_delete: false\n"
        "sekoia_intel:\n  url: 'https://app.eu2.sekoia.io/api'\n  apikey: 'file-key'\n"
        f"  ioc_collection_uuid: '{UUID}'\n"
    )
    settings = load_settings(config, environ={"CONNECTOR_LIVE_STREAM_ID": "env-stream"})
    assert settings.opencti_url == "http://from-file:8080"
    assert settings.live_stream_id == "env-stream"
    assert settings.listen_delete is False
    assert settings.sekoia_url == "https://app.eu2.sekoia.io/api"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"OPENCTI_URL": None}, "OPENCTI_URL is required but not set"),
        ({"OPENCTI_URL": "opencti:8080"}, "OPENCTI_URL must be an http(s) URL"),
        ({"OPENCTI_TOKEN": "ChangeMe"}, "OPENCTI_TOKEN is still the placeholder"),
        ({"SEKOIA_INTEL_IOC_COLLECTION_UUID": "not-a-uuid"}, "SEKOIA_INTEL_IOC_COLLECTION_UUID"),
        ({"SEKOIA_INTEL_BATCH_SIZE": "500"}, "SEKOIA_INTEL_BATCH_SIZE"),
        ({"SEKOIA_INTEL_REQUESTS_PER_SECOND": "fast"}, "SEKOIA_INTEL_REQUESTS_PER_SECOND"),
        ({"CONNECTOR_LOG_LEVEL": "loud"}, "CONNECTOR_LOG_LEVEL must be one of"),
        ({"SEKOIA_INTEL_COARSE_VALIDITY": "none"}, "SEKOIA_INTEL_COARSE_VALIDITY must be one of hour, day"),
        ({"SEKOIA_INTEL_MAX_COARSENING": "everything"}, "SEKOIA_INTEL_MAX_COARSENING is invalid"),
    ],
)
def test_a_bad_setting_is_named_in_one_line(override: dict[str, str | None], expected: str) -> None:
    env = {k: v for k, v in {**SEED_ENV, **override}.items() if v is not None}
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=env)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message
    assert "sekoia-key-value" not in message and "opencti-token-value" not in message


def test_cli_reports_a_bad_setting_without_traceback_and_writes_the_termination_message(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in SEED_ENV.items() if k != "SEKOIA_INTEL_APIKEY"}
    env.update(PATH=os.environ["PATH"], RUNTIME_TERMINATION_LOG=str(tmp_path / "termination-log"))
    done = subprocess.run(
        [sys.executable, "-m", "connector_runtime.cli", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode != 0
    assert done.stderr.strip() == "configuration error: SEKOIA_INTEL_APIKEY is required but not set"
    assert "Traceback" not in done.stderr
    assert (tmp_path / "termination-log").read_text().strip() == done.stderr.strip()


def test_tls_is_verified_unless_waived_and_a_ca_bundle_is_used(tmp_path: Path) -> None:
    settings = load_settings(environ=SEED_ENV)
    assert settings.opencti_verify is True and settings.sekoia_verify is True
    # The seed's variable still works when the runtime is run by hand.
    waived = load_settings(environ={**SEED_ENV, "OPENCTI_SSL_VERIFY": "false"})
    assert waived.opencti_verify is False and waived.sekoia_verify is True
    bundle = tmp_path / "ca.crt"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    with_ca = load_settings(
        environ={**SEED_ENV, "OPENCTI_CA_BUNDLE": str(bundle), "SEKOIA_INTEL_CA_BUNDLE": str(bundle)}
    )
    assert with_ca.opencti_verify == str(bundle) and with_ca.sekoia_verify == str(bundle)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            {"OPENCTI_CA_BUNDLE": "/nonexistent/ca.crt"},
            "OPENCTI_CA_BUNDLE must be a readable file: /nonexistent/ca.crt",
        ),
        ({"OPENCTI_SSL_VERIFY": "/etc/ssl/ca.crt"}, "OPENCTI_SSL_VERIFY must be true or false"),
        ({"SEKOIA_INTEL_SSL_VERIFY": "maybe"}, "SEKOIA_INTEL_SSL_VERIFY"),
    ],
)
def test_a_bad_tls_setting_is_named(override: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={**SEED_ENV, **override})
    assert expected in str(caught.value)


def test_a_ca_bundle_that_is_not_pem_or_contradicts_the_waiver_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_text("not a certificate")
    with pytest.raises(ConfigError, match="OPENCTI_CA_BUNDLE must be a PEM CA bundle"):
        load_settings(environ={**SEED_ENV, "OPENCTI_CA_BUNDLE": str(junk)})
    pem = tmp_path / "ca.crt"
    pem.write_text("-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(ConfigError, match="OPENCTI_CA_BUNDLE is set but OPENCTI_SSL_VERIFY=false"):
        load_settings(environ={**SEED_ENV, "OPENCTI_CA_BUNDLE": str(pem), "OPENCTI_SSL_VERIFY": "false"})
