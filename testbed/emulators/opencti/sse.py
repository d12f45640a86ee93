"""Server-Sent Events framing and an HTTP/1.1 chunked writer."""

from __future__ import annotations

import contextlib
import socket
from typing import Protocol


class _Writable(Protocol):
    def write(self, data: bytes, /) -> object: ...

    def flush(self) -> object: ...


SSE_HEADERS = (
    # Without the charset, requests falls back to ISO-8859-1 for text/* and mangles non-ASCII data.
    ("Content-Type", "text/event-stream; charset=utf-8"),
    ("Cache-Control", "no-cache, no-transform"),
    ("Connection", "keep-alive"),
    ("Transfer-Encoding", "chunked"),
    ("X-Accel-Buffering", "no"),
)


def frame(event: str, data: str, event_id: str | None = None, retry_ms: int | None = None) -> bytes:
    """Encode one SSE event; `data` must already be a single line (JSON without raw newlines)."""
    parts = []
    if event_id is not None:
        parts.append(f"id: {event_id}\n")
    parts.append(f"event: {event}\n")
    if retry_ms is not None:
        parts.append(f"retry: {retry_ms}\n")
    parts.append(f"data: {data}\n\n")
    return "".join(parts).encode("utf-8")


class ChunkedWriter:
    """Writes HTTP/1.1 chunks straight to the socket file (one send per chunk, no buffering)."""

    def __init__(self, wfile: _Writable, sock: socket.socket) -> None:
        self._wfile = wfile
        self._sock = sock

    def write(self, payload: bytes) -> None:
        """Send `payload` as one chunk (nothing for an empty payload, which would end the body)."""
        if payload:
            self._wfile.write(b"%x\r\n%b\r\n" % (len(payload), payload))
            self._wfile.flush()

    def finish(self) -> None:
        """End the body properly (the client sees a clean end of stream)."""
        self._wfile.write(b"0\r\n\r\n")
        self._wfile.flush()

    def abort(self) -> None:
        """Cut the connection mid-body, as a network failure or a proxy timeout would."""
        with contextlib.suppress(OSError):  # already gone
            self._sock.shutdown(socket.SHUT_RDWR)
