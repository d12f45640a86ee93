"""HTTP layer: routes GraphQL, the live stream and the admin API of one emulator instance."""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import ssl
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from .feed import iso_ms
from .ids import ZERO_KEY, format_event_id, parse_event_id
from .sse import SSE_HEADERS, ChunkedWriter
from .streaming import ConnectionInfo, StreamSession, new_connection_id

if TYPE_CHECKING:
    from .emulator import OpenCTIEmulator

logger = logging.getLogger(__name__)

# Request headers worth keeping in the connection log; credentials are deliberately absent.
_LOGGED_HEADERS = (
    "listen-delete",
    "no-dependencies",
    "with-inferences",
    "last-event-id",
    "accept",
    "cache-control",
    "user-agent",
)
_MAX_BODY = 256 * 1024 * 1024


def _flag(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip().lower() in ("true", "1", "yes")


class EmulatorHTTPServer(ThreadingHTTPServer):
    """One thread per connection, so a slow SSE client never blocks anyone else."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], app: OpenCTIEmulator, tls: ssl.SSLContext | None = None
    ) -> None:
        super().__init__(address, EmulatorRequestHandler)
        self.app = app
        self.tls = tls

    def finish_request(self, request: Any, client_address: Any) -> None:
        """With TLS, the handshake happens here, in the connection's own thread: a client that
        refuses the certificate (or stalls) never holds up the accept loop."""
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.app.tls_failures.append(type(exc).__name__)
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            with contextlib.suppress(OSError):
                wrapped.close()


def server_tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server-side TLS context serving ``cert_file`` (the platform behind HTTPS)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


class EmulatorRequestHandler(BaseHTTPRequestHandler):
    """Routes requests to the emulator; written for HTTP/1.1 keep-alive and chunked streams."""

    protocol_version = "HTTP/1.1"
    server: EmulatorHTTPServer

    # -- helpers ------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        # The request line never holds the token; keep access logs out of test output anyway.
        logger.debug("%s %s", self.address_string(), format % args)

    def _send_json(self, status: int, body: Any, extra_headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def _read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > _MAX_BODY:
            raise ValueError("bad Content-Length")
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw.strip() else None

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.server.app.token.encode()
        )

    # -- routing ------------------------------------------------------------------------------
    def do_GET(self) -> None:
        """Live stream and admin reads."""
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        if path == "/stream" or path.startswith("/stream/"):
            self._handle_stream(path, parse_qs(parts.query))
        elif path.startswith("/_emulator/"):
            self._handle_admin("GET", path, parse_qs(parts.query))
        elif path in ("/health", "/health/"):
            self._send_json(200, {"status": "ok"})
        else:
            self._send_json(404, {"error": "not found", "path": path})

    def do_POST(self) -> None:
        """GraphQL and admin writes."""
        parts = urlsplit(self.path)
        path = unquote(parts.path).rstrip("/")
        if path == "/graphql":
            self._handle_graphql()
        elif path.startswith("/_emulator/"):
            self._handle_admin("POST", path, parse_qs(parts.query))
        else:
            self._send_json(404, {"error": "not found", "path": path})

    def do_PUT(self) -> None:
        """Admin writes (PUT is accepted as an alias of POST)."""
        parts = urlsplit(self.path)
        path = unquote(parts.path).rstrip("/")
        if path.startswith("/_emulator/"):
            self._handle_admin("POST", path, parse_qs(parts.query))
        else:
            self._send_json(405, {"error": "method not allowed"})

    # -- GraphQL ------------------------------------------------------------------------------
    def _handle_graphql(self) -> None:
        app = self.server.app
        try:
            body = self._read_json()
        except (ValueError, UnicodeDecodeError) as exc:
            self._send_json(400, {"errors": [{"message": f"invalid JSON body: {exc}"}]})
            return
        if not self._authorized():
            self._send_json(401, {"errors": [{"message": "You must be logged in to do this."}]})
            return
        failure = app.faults.take_graphql_failure()
        if failure is not None:
            self._send_json(failure, {"errors": [{"message": f"injected failure {failure}"}]})
            return
        self._send_json(200, app.graphql.execute(body))

    # -- live stream --------------------------------------------------------------------------
    def _handle_stream(self, path: str, query: dict[str, list[str]]) -> None:
        app = self.server.app
        stream_id = path[len("/stream/") :].strip("/") if path.startswith("/stream/") else ""
        last_event_id = self.headers.get("Last-Event-ID")
        recover = next(iter(query.get("recover", [])), None)
        info = app.connections.add(
            ConnectionInfo(
                connection_id=new_connection_id(),
                path=path,
                stream_id=stream_id or None,
                client=self.address_string(),
                headers={h: v for h in _LOGGED_HEADERS if (v := self.headers.get(h)) is not None},
                last_event_id=last_event_id,
                recover=recover,
            )
        )

        def refuse(status: int, message: str) -> None:
            info.status, info.end_reason, info.ended_at = status, message, info.started_at
            self._send_json(status, {"error": message})

        if not self._authorized():
            refuse(401, "unauthorized")
            return
        stream = app.stream_config(stream_id)
        if stream is None:
            refuse(404, "stream not found")
            return
        if stream.stopped:
            refuse(410, "stream stopped")
            return
        failure = app.faults.take_connect_failure()
        if failure is not None:
            refuse(failure, "injected failure")
            return
        if last_event_id is not None:
            try:
                start_key = parse_event_id(last_event_id)
            except ValueError:
                refuse(400, "invalid Last-Event-ID")
                return
            start_index = app.log.index_after(start_key)
        else:
            # Without Last-Event-ID the platform starts at the live end, as Redis `$` does.
            start_index = app.log.head_index()
            start_key = app.log.last_key() or ZERO_KEY
        info.start_position = format_event_id(start_key)
        recovery, recover_key = None, None
        if app.recovery and recover and last_event_id is not None:
            until_ms = iso_ms(recover)
            if until_ms is None:
                refuse(400, "invalid recover date")
                return
            # Like the platform: only a start position before the recover date recovers, from
            # the database (current objects); the live part starts at the recover date.
            if start_key < (until_ms, 0):
                recover_key = (until_ms, 0)
                recovery = [
                    (ms, obj)
                    for ms, obj in app.feeder.recoverable(start_key[0], until_ms)
                    if stream.accepts(obj)
                ]

        self.send_response(200)
        for name, value in SSE_HEADERS:
            self.send_header(name, value)
        self.end_headers()
        self.close_connection = True
        writer = ChunkedWriter(self.wfile, self.connection)
        session = StreamSession(
            log=app.log,
            feeder=app.feeder,
            faults=app.faults,
            stream=stream,
            writer=writer,
            info=info,
            start_index=start_index,
            start_key=start_key,
            listen_delete=_flag(self.headers.get("listen-delete"), True),
            no_dependencies=_flag(self.headers.get("no-dependencies"), True),
            heartbeat_interval=app.heartbeat_interval,
            retry_ms=app.retry_ms,
            server_stopping=app.stopping,
            recovery=recovery,
            recover_key=recover_key,
        )
        app.track_socket(self.connection, True)
        try:
            reason = session.run()
            try:
                abrupt = reason == "server_stopped" or (
                    reason == "injected_disconnect" and not app.faults.graceful_disconnect
                )
                if abrupt:
                    writer.abort()
                elif reason != "client_gone":
                    writer.finish()
            except OSError:
                reason = "client_gone"
        finally:
            app.track_socket(self.connection, False)
        info.end_reason, info.ended_at = reason, time.time()

    # -- admin --------------------------------------------------------------------------------
    def _handle_admin(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        from .admin import handle_admin  # local import: admin depends on the emulator facade

        try:
            body = self._read_json() if method == "POST" else None
        except (ValueError, UnicodeDecodeError) as exc:
            self._send_json(400, {"error": f"invalid JSON body: {exc}"})
            return
        status, result = handle_admin(self.server.app, method, path[len("/_emulator") :], query, body)
        self._send_json(status, result)
