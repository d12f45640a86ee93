"""The OpenCTI emulator over HTTPS: what a client meets in front of a platform with a private
certificate (refused without the CA, GraphQL and the live stream with it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from testbed.controlplane.certs import make_self_signed
from testbed.emulators.opencti.emulator import OpenCTIEmulator
from testbed.processes import wait_until


def test_https_with_a_self_signed_certificate(tmp_path: Path) -> None:
    cert, key = make_self_signed(tmp_path)
    with pytest.raises(ValueError, match="go together"):
        OpenCTIEmulator(token="t", tls_cert=cert)
    emulator = OpenCTIEmulator(
        token="tok-1234", streams=["live"], heartbeat_interval=0.2, tls_cert=cert, tls_key=key
    )
    url = emulator.start()
    try:
        assert url.startswith("https://127.0.0.1:")
        with pytest.raises(requests.exceptions.SSLError, match="certificate verify failed"):
            requests.get(f"{url}/health", timeout=5)
        # The refused handshake is visible to tests (recorded by the server's connection thread).
        wait_until(lambda: bool(emulator.tls_failures), 10, "the refused handshake to be recorded")
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(url.replace("https://", "http://") + "/health", timeout=5)

        headers = {"Authorization": "Bearer tok-1234"}
        answer = requests.post(
            f"{url}/graphql",
            json={"query": "query healthCheck { about { version } }"},
            headers=headers,
            timeout=5,
            verify=str(cert),
        )
        assert answer.status_code == 200 and answer.json()["data"]["about"]["version"]

        event_id = emulator.create(
            {
                "id": "indicator--0b2a4c6e-8f10-4a3b-9c5d-7e9f1a2b3c4d",
                "type": "indicator",
                "spec_version": "2.1",
                "pattern": "[ipv4-addr:value = '198.51.100.7']",
                "pattern_type": "stix",
            }
        )
        stream_headers = {**headers, "Last-Event-ID": "0-0", "Accept": "text/event-stream"}
        with requests.get(
            f"{url}/stream/live", headers=stream_headers, stream=True, timeout=5, verify=str(cert)
        ) as stream:
            assert stream.status_code == 200
            seen = ""
            for line in stream.iter_lines(decode_unicode=True):
                seen += (line or "") + "\n"
                if f"id: {event_id}" in seen and line.startswith("data:"):
                    break
        assert "198.51.100.7" in seen
    finally:
        emulator.stop()
