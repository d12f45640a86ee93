"""The emulator object: an HTTP server on 127.0.0.1 plus the state tests inspect and drive."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from . import auth
from .admin import AdminApi
from .api import SekoiaApi, bearer_key, error_reply
from .faults import FaultInjector, SlidingWindowLimiter, retry_after_header
from .options import EmulatorOptions, FaultSettings
from .requestlog import RequestLog
from .store import Store, canonical_collection_id

ADMIN_PREFIX = "/_emulator/"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What a proxy in front of the API answers instead of it: a login page, a gateway's 414.
LOGIN_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head>"
    b"<body><form method=post action=/login><input name=user><input name=password type=password>"
    b"</form></body></html>\n"
)
URI_TOO_LONG_PAGE = b"<html><head><title>414 Request-URI Too Large</title></head><body></body></html>\n"
HTML = "text/html; charset=utf-8"


class SekoiaEmulator:
    """A Sekoia IOC-collections API emulator running its own HTTP server.

    `api_keys` is a set of keys (all permissions) or `{"key": {"permissions": [...]}}` with permission
    names or the aliases view / manage / all. `collections` are ids in either form.
    """

    def __init__(
        self,
        api_keys: Mapping[str, Any] | Iterable[str] | None = None,
        collections: Iterable[str] = (),
        options: EmulatorOptions | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._initial_keys = auth.normalise_keys(api_keys)
        self._initial_collections = list(collections)
        self._initial_options = options or EmulatorOptions()
        self._options = self._initial_options
        self._address = (host, port)
        self.store = Store()
        self.keys = auth.KeyRing(self._initial_keys)
        self.faults = FaultInjector(self._initial_options.seed)
        self.limiter = SlidingWindowLimiter()
        self.log = RequestLog()
        self.api = SekoiaApi(self.store, self.keys, lambda: self._options, _run_later)
        self.admin = AdminApi(self)
        for collection in self._initial_collections:
            self.store.add_collection(collection)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> str:
        """Start serving on a free port (unless one was given); return the base URL."""
        if self._server is not None:
            return self.base_url
        handler = type("BoundHandler", (_Handler,), {"emulator": self})
        self._server = _Server(self._address, handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="sekoia-emulator",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving; idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SekoiaEmulator:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """API root, e.g. http://127.0.0.1:41234 (the API lives under /v2/inthreat/ioc-collections)."""
        if self._server is None:
            raise RuntimeError("the emulator is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- control -------------------------------------------------------------------------------------
    @property
    def options(self) -> EmulatorOptions:
        return self._options

    def set_options(self, **changes: Any) -> EmulatorOptions:
        """Change behaviour switches at runtime (see EmulatorOptions)."""
        self._options = self._options.updated(changes)
        return self._options

    def set_faults(self, **changes: Any) -> FaultSettings:
        """Change injected faults at runtime (see FaultSettings)."""
        settings = self.faults.settings.updated(changes)
        self.faults.configure(settings)
        return settings

    def storm(
        self,
        status: int = 429,
        count: int | None = None,
        seconds: float | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer `status` to every API request for the next `count` requests and/or `seconds` seconds.

        `retry_after` sets the Retry-After header of the storm's answers (None: 1 s for a 429 when
        the retry_after option is on, no header for a 5xx).
        """
        self.faults.start_storm(status, count, seconds, retry_after)

    def calm(self) -> None:
        """End any storm."""
        self.faults.stop_storm()

    def add_api_key(self, key: str, permissions: Iterable[str] = ("all",)) -> None:
        """Accept a new key (or change a key's permissions)."""
        self.keys.set(key, auth.parse_permissions(permissions))

    def remove_api_key(self, key: str) -> bool:
        """Stop accepting a key."""
        return self.keys.remove(key)

    def add_collection(self, collection_id: str, name: str | None = None) -> str:
        """Create a collection; return its bare uuid."""
        return self.store.add_collection(collection_id, name)

    def reset(self) -> None:
        """Back to the state right after construction: data, keys, options, faults and logs."""
        self.api.tasks.wait_idle(timeout=5)
        self.store.clear()
        for collection in self._initial_collections:
            self.store.add_collection(collection)
        self.keys.replace_all(self._initial_keys)
        self._options = self._initial_options
        self.faults.reseed(self._initial_options.seed)
        self.limiter.reset()
        self.log.clear()
        self.api.tasks.clear()

    # -- inspection ----------------------------------------------------------------------------------
    def collection_ids(self) -> list[str]:
        """Bare uuids of every collection."""
        return self.store.collection_ids()

    def _cid(self, collection: str | None) -> str:
        if collection is None:
            ids = self.store.collection_ids()
            if not ids:
                raise LookupError("the emulator has no collection")
            return ids[0]
        cid = canonical_collection_id(collection)
        if cid is None or cid not in self.store.collection_ids():
            raise LookupError(f"unknown collection {collection!r}")
        return cid

    def indicators(self, collection: str | None = None) -> list[dict[str, Any]]:
        """Every indicator (revoked ones too) of a collection (default: the first one)."""
        return self.store.indicators(self._cid(collection))

    def active_values(self, collection: str | None = None) -> set[str]:
        """Values of the non-revoked indicators of a collection."""
        return {i["value"] for i in self.indicators(collection) if not i["revoked"]}

    def revoke_all(self, collection: str | None = None) -> int:
        """Revoke every active indicator of a collection, as a user would by hand (e.g. after a
        mistaken import); returns how many were revoked."""
        cid = self._cid(collection)
        active = [item["id"] for item in self.store.indicators(cid) if not item["revoked"]]
        for indicator_id in active:
            self.store.revoke(cid, indicator_id)
        return len(active)

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        """Logged API requests after sequence number `since` (admin calls are not logged)."""
        return self.log.entries(since)

    def counts(self) -> dict[str, Any]:
        """Request counts by status and indicator counts, overall and per collection."""
        per_collection = self.store.counts()
        return {
            "requests": self.log.total(),
            "by_status": self.log.by_status(),
            "active": sum(c["active"] for c in per_collection.values()),
            "revoked": sum(c["revoked"] for c in per_collection.values()),
            "collections": per_collection,
        }

    def summary(self) -> dict[str, Any]:
        """Counts plus the current options, faults and storm."""
        return {
            **self.counts(),
            "options": self._options.as_dict(),
            "faults": self.faults.settings.as_dict(),
            "storm": self.faults.storm_state(),
            "api_keys": self.keys.count(),
        }

    def tasks(self) -> list[dict[str, Any]]:
        """Background imports and their outcome."""
        return self.api.tasks.snapshot()

    def wait_tasks(self, timeout: float = 5.0) -> bool:
        """Wait until every background import is applied; False on timeout."""
        return self.api.tasks.wait_idle(timeout)

    # -- request path --------------------------------------------------------------------------------
    def serve_api(
        self, method: str, path: str, query: str, body: bytes, authorization: str | None, client: str
    ) -> tuple[int, dict[str, Any] | bytes | None, dict[str, str]] | None:
        """Answer one API request with faults and rate limiting applied; None means drop the connection.

        A bytes body is sent as it is, with the Content-Type of its headers (an HTML page)."""
        started = time.monotonic()
        options = self._options
        plan = self.faults.plan()
        key = bearer_key(authorization)
        # A firewall counts requests when they arrive, before any processing time.
        throttled_for = None
        if plan.storm_status is None and options.rate_limit is not None:
            counted = "*" if options.rate_scope == "global" else key or f"anonymous@{client}"
            throttled_for = self.limiter.check(
                counted, options.rate_limit, options.rate_window, options.rate_burst
            )
        if plan.delay:
            time.sleep(plan.delay)
        if plan.drop and not self.faults.settings.drop_after_apply:
            self.log.record(method, path, query, None, started, 0)
            return None
        reply = None
        if plan.storm_status is not None:
            reply = error_reply(plan.storm_status, "Injected storm", "EMULATOR_STORM")
            if plan.storm_retry_after is not None:
                reply.headers["Retry-After"] = str(int(plan.storm_retry_after + 0.999))
            elif plan.storm_status == 429 and options.retry_after:
                reply.headers["Retry-After"] = "1"
        elif throttled_for is not None:
            reply = error_reply(429, "Too many requests", "RATE_LIMITED")
            if options.retry_after:
                reply.headers["Retry-After"] = retry_after_header(throttled_for)
        if reply is None and plan.error_status is not None:
            reply = error_reply(plan.error_status, "Injected server error", "EMULATOR_ERROR")
        if reply is None:
            page = self._intercept(method, query)
            if page is not None:
                self.log.record(method, path, query, page[0], started, 0)
                return page
        if reply is None:
            reply = self.api.handle(method, path, parse_qs(query), body, key)
        if plan.drop:
            self.log.record(method, path, query, None, started, reply.values)
            return None
        self.log.record(method, path, query, reply.status, started, reply.values)
        return reply.status, reply.body, reply.headers

    def _intercept(self, method: str, query: str) -> tuple[int, bytes, dict[str, str]] | None:
        """What a misconfigured URL or a proxy answers in Sekoia's place (nothing is applied)."""
        faults = self.faults.settings
        is_write = method in WRITE_METHODS
        if faults.redirect_location and (is_write or faults.redirect_scope == "all"):
            return faults.redirect_status, b"", {"Location": faults.redirect_location}
        if faults.html_answers and (is_write or faults.proxy_scope == "all"):
            return 200, LOGIN_PAGE, {"Content-Type": HTML}
        if faults.wrong_shape_answers and (is_write or faults.proxy_scope == "all"):
            return 200, b'{"status": "ok"}', {"Content-Type": "application/json"}
        if faults.max_term_length is not None and method == "GET":
            term = parse_qs(query).get("term", [""])[0]
            if len(term) > faults.max_term_length:
                return 414, URI_TOO_LONG_PAGE, {"Content-Type": HTML}
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout, stop) is ordinary here; anything else still gets a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _run_later(delay: float, action: Callable[[], None]) -> None:
    timer = threading.Timer(delay, action)
    timer.daemon = True
    timer.start()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a requests.Session expects
    server_version = "SekoiaEmulator/1.0"
    # Headers and body go out in two writes; without this, Nagle plus delayed ACKs add ~40 ms per answer.
    disable_nagle_algorithm = True
    # An idle keep-alive connection is closed after this, so a stopped emulator leaves no thread behind long.
    timeout = 15
    emulator: SekoiaEmulator

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        # The request log replaces the default stderr access log.
        pass

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        if url.path.startswith(ADMIN_PREFIX):
            reply = self.emulator.admin.handle(self.command, url.path, parse_qs(url.query), body)
            self._send(reply.status, reply.body, reply.headers)
            return
        answer = self.emulator.serve_api(
            self.command, url.path, url.query, body, self.headers.get("Authorization"), self.client_address[0]
        )
        if answer is None:
            self.close_connection = True  # no answer at all: the client sees the connection close
            return
        self._send(*answer)

    def _send(self, status: int, body: dict[str, Any] | bytes | None, headers: dict[str, str]) -> None:
        payload = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None and not isinstance(body, bytes):
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
