"""TLS is verified by default, both ways: the real runtime (pycti inside) refuses an OpenCTI
platform or a Sekoia API whose certificate it cannot verify, says why, and works once given the
CA bundle."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import COLLECTION, DATA_FILE, OPENCTI_TOKEN, SEKOIA_KEY, STREAM_ID

from connector_runtime.conversion import convert_indicator
from testbed.controlplane.certs import make_self_signed
from testbed.emulators.opencti.emulator import OpenCTIEmulator
from testbed.emulators.sekoia.server import SekoiaEmulator
from testbed.processes import wait_until
from testbed.runtime_process import RuntimeProcess, runtime_env
from testbed.tlsfront import TLSFront


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return make_self_signed(tmp_path / "pki")


@pytest.fixture
def opencti_tls(certificate: tuple[Path, Path]) -> Iterator[OpenCTIEmulator]:
    cert, key = certificate
    emulator = OpenCTIEmulator(
        token=OPENCTI_TOKEN,
        streams=[STREAM_ID],
        heartbeat_interval=1.0,
        retry_ms=200,
        tls_cert=cert,
        tls_key=key,
    )
    emulator.start()
    yield emulator
    emulator.stop()


def _runtime(opencti: OpenCTIEmulator, sekoia: SekoiaEmulator, log: Path, **extra: str) -> RuntimeProcess:
    env = runtime_env(
        opencti.base_url,
        OPENCTI_TOKEN,
        STREAM_ID,
        sekoia.base_url,
        SEKOIA_KEY,
        COLLECTION,
        str(uuid.uuid4()),
        **extra,
    )
    return RuntimeProcess(env, log).start()


def test_an_unverifiable_opencti_certificate_is_refused_by_default_and_said_why(
    opencti_tls: OpenCTIEmulator, sekoia: SekoiaEmulator, tmp_path: Path
) -> None:
    assert opencti_tls.base_url.startswith("https://")
    runtime = _runtime(opencti_tls, sekoia, tmp_path / "runtime.log")
    try:
        assert runtime.process.popen is not None
        code = runtime.process.popen.wait(timeout=90)
    finally:
        runtime.kill()
    assert code == 1
    message = runtime.termination_log.read_text().strip()
    assert "certificate verify failed: self-signed certificate" in message, message
    assert message.startswith(f"cannot register with OpenCTI at {opencti_tls.base_url}")
    assert "caBundleRef" in message and "\n" not in message
    log = runtime.log()
    assert "certificate verify failed" in log
    assert OPENCTI_TOKEN not in log and OPENCTI_TOKEN not in message
    assert opencti_tls.connectors.all() == {}, "registered although the certificate was refused"
    assert opencti_tls.tls_failures, "the runtime never tried the handshake"


def test_the_ca_bundle_makes_the_certificate_trusted(
    opencti_tls: OpenCTIEmulator, sekoia: SekoiaEmulator, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    indicators = [json.loads(line) for line in DATA_FILE.read_text().splitlines() if line.strip()][:20]
    opencti_tls.add_bundle(indicators)
    runtime = _runtime(opencti_tls, sekoia, tmp_path / "runtime.log", OPENCTI_CA_BUNDLE=str(certificate[0]))
    try:
        runtime.wait_ready()
        expected = {v.value for ind in indicators for v in convert_indicator(ind).values}
        wait_until(lambda: sekoia.active_values(COLLECTION) == expected, 60, "the values to reach Sekoia")
        assert opencti_tls.tls_failures == []
    finally:
        runtime.kill()


def test_the_seed_waiver_still_works_when_run_by_hand(
    opencti_tls: OpenCTIEmulator, sekoia: SekoiaEmulator, tmp_path: Path
) -> None:
    runtime = _runtime(opencti_tls, sekoia, tmp_path / "runtime.log", OPENCTI_SSL_VERIFY="false")
    try:
        runtime.wait_ready()
    finally:
        runtime.kill()


@pytest.fixture
def sekoia_tls(sekoia: SekoiaEmulator, certificate: tuple[Path, Path]) -> Iterator[TLSFront]:
    host, port = sekoia.base_url.removeprefix("http://").rsplit(":", 1)
    front = TLSFront((host, int(port)), *certificate)
    front.start()
    yield front
    front.stop()


def _sekoia_runtime(opencti: OpenCTIEmulator, sekoia_url: str, log: Path, **extra: str) -> RuntimeProcess:
    env = runtime_env(
        opencti.base_url,
        OPENCTI_TOKEN,
        STREAM_ID,
        sekoia_url,
        SEKOIA_KEY,
        COLLECTION,
        str(uuid.uuid4()),
        **extra,
    )
    return RuntimeProcess(env, log).start()


def test_sekoia_behind_a_private_certificate_is_refused_then_trusted_with_its_ca_bundle(
    opencti: OpenCTIEmulator,
    sekoia: SekoiaEmulator,
    sekoia_tls: TLSFront,
    certificate: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    indicators = [json.loads(line) for line in DATA_FILE.read_text().splitlines() if line.strip()][:10]
    opencti.add_bundle(indicators)
    refused = _sekoia_runtime(opencti, sekoia_tls.base_url, tmp_path / "refused.log")
    try:
        wait_until(
            lambda: "certificate verify failed" in refused.readiness()[1],
            60,
            "the readiness reason to name the certificate problem",
            on_timeout=lambda: str(refused.readiness()),
        )
        assert not refused.readiness()[0]
        assert sekoia.active_values(COLLECTION) == set()
        assert SEKOIA_KEY not in refused.log()
    finally:
        refused.kill()

    trusted = _sekoia_runtime(
        opencti, sekoia_tls.base_url, tmp_path / "trusted.log", SEKOIA_INTEL_CA_BUNDLE=str(certificate[0])
    )
    try:
        trusted.wait_ready()
        expected = {v.value for ind in indicators for v in convert_indicator(ind).values}
        wait_until(lambda: sekoia.active_values(COLLECTION) == expected, 60, "the values to reach Sekoia")
    finally:
        trusted.kill()
