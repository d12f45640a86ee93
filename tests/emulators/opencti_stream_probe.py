"""A tiny real pycti stream connector, run as a subprocess by the emulator tests.

Configured only through pycti's own environment variables (OPENCTI_URL, OPENCTI_TOKEN, CONNECTOR_ID,
CONNECTOR_LIVE_STREAM_ID, ...). Prints one JSON line per received event on stdout, tagged with
`"probe"` because pycti's SSE client also prints reconnect errors there.

PROBE_PING_INTERVAL (seconds) adds `force_ping()` calls so tests need not wait for pycti's 40 s ping.
It must never run inside the pytest process: pycti SIGTERMs its own process on any error.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from pycti import OpenCTIConnectorHelper


def emit(kind: str, **fields: Any) -> None:
    """One tagged JSON line on stdout, flushed at once so the test sees it immediately."""
    print(json.dumps({"probe": kind, **fields}), flush=True)


def main() -> None:
    """Register, listen to the live stream and report each event until killed."""
    helper = OpenCTIConnectorHelper({})

    def on_message(msg: Any) -> None:
        payload = json.loads(msg.data)
        data = payload.get("data") or {}
        emit(
            "event",
            event=msg.event,
            id=msg.id,
            type=payload.get("type"),
            stix_id=data.get("id"),
            stix_type=data.get("type"),
            revoked=data.get("revoked"),
            has_context="context" in payload,
        )

    interval = float(os.environ.get("PROBE_PING_INTERVAL") or 0)
    if interval > 0:

        def ping_loop() -> None:
            while True:
                threading.Event().wait(interval)
                helper.force_ping()

        threading.Thread(target=ping_loop, daemon=True).start()

    helper.listen_stream(message_callback=on_message)
    emit("started", state=helper.get_state())
    threading.Event().wait()


if __name__ == "__main__":
    main()
