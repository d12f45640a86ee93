"""Liveness, readiness and metrics over HTTP (``/healthz``, ``/readyz``, ``/metrics``)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from connector_runtime import metrics, redaction

STREAM_SILENCE_LIMIT = 60.0  # heartbeats come every ~5 s; a minute of silence is a lost stream


@dataclass(frozen=True)
class Block:
    """Why Sekoia acknowledges nothing: a condition reason, a message naming what to change, and
    since when (RFC 3339)."""

    reason: str
    message: str
    since: str

    def as_status(self) -> dict[str, str]:
        """The `status.progress.blocked` object."""
        return {"reason": self.reason, "message": self.message, "since": self.since}


class Health:
    """What the runtime knows about itself; updated by its parts, read by the HTTP server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stream_seen: float | None = None
        self._sekoia_ok = False
        self._sekoia_reason = "Sekoia not contacted yet"
        self._fatal: str | None = None
        # By source ("preflight", "delivery"): each clears only its own block.
        self._blocks: dict[str, Block] = {}
        self.started = time.monotonic()
        self.liveness_checks: list[tuple[str, object]] = []

    def stream_seen(self) -> None:
        """Any stream message (event or heartbeat) arrived."""
        with self._lock:
            self._stream_seen = time.monotonic()
        self._publish()

    def sekoia_state(self, ok: bool, reason: str = "") -> None:
        """Sekoia accepted (or refused) our credentials/collection."""
        with self._lock:
            self._sekoia_ok = ok
            self._sekoia_reason = redaction.one_line(reason)
        self._publish()

    def block(self, source: str, reason: str, message: str) -> None:
        """Sekoia's answers to `source` acknowledge nothing and will not until something changes."""
        with self._lock:
            current = self._blocks.get(source)
            since = current.since if current and current.reason == reason else _now_rfc3339()
            # One line, bounded: it ends up in the resource status (the CRD caps it at 4096).
            text = " ".join(message.split())
            self._blocks[source] = Block(reason, text[:2000], since)
        self._publish()

    def unblock(self, source: str) -> None:
        """Sekoia answers `source` properly again."""
        with self._lock:
            self._blocks.pop(source, None)
        self._publish()

    def blocked(self) -> Block | None:
        """The block to report (delivery first: it is what stops the stream position), or None."""
        with self._lock:
            return self._blocks.get("delivery") or next(iter(self._blocks.values()), None)

    def fatal(self, reason: str) -> None:
        """The runtime cannot continue; liveness fails from now on."""
        with self._lock:
            if self._fatal is None:
                self._fatal = redaction.one_line(reason)

    @property
    def fatal_reason(self) -> str | None:
        """Why the runtime gave up, if it did."""
        with self._lock:
            return self._fatal

    def readiness(self) -> tuple[bool, str]:
        """(ready, reason): ready = stream connected recently and Sekoia accepts the credentials."""
        with self._lock:
            if self._fatal:
                return False, self._fatal
            if self._stream_seen is None:
                return False, "OpenCTI stream not connected yet"
            if time.monotonic() - self._stream_seen > STREAM_SILENCE_LIMIT:
                return False, "no message from the OpenCTI stream for over a minute"
            if not self._sekoia_ok:
                return False, self._sekoia_reason
            block = self._blocks.get("delivery") or next(iter(self._blocks.values()), None)
        if block is not None:
            return False, f"{block.reason}: {block.message}"
        return True, "ok"

    def liveness(self) -> tuple[bool, str]:
        """(alive, reason): false once fatal or when a registered check fails."""
        reason = self.fatal_reason
        if reason:
            return False, reason
        for name, check in self.liveness_checks:
            if callable(check) and not check():
                return False, f"{name} stopped"
        return True, "ok"

    def _publish(self) -> None:
        # Called with the lock released: readiness() takes it.
        metrics.READY.set(1 if self.readiness()[0] else 0)


def _now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def serve(health: Health, port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Start the HTTP server in a daemon thread and return it (port 0 picks a free one)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(metrics.REGISTRY), CONTENT_TYPE_LATEST)
                return
            if path in {"/healthz", "/livez"}:
                ok, reason = health.liveness()
            elif path == "/readyz":
                ok, reason = health.readiness()
            else:
                self._send(404, b'{"error": "not found"}', "application/json")
                return
            body = json.dumps({"ok": ok, "reason": reason}).encode()
            self._send(200 if ok else 503, body, "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # probes every few seconds: stay quiet
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health-http", daemon=True).start()
    return server
