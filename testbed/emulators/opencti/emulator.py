"""`OpenCTIEmulator`: the facade tests use to run, feed and inspect an emulated OpenCTI platform."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from .connectors import ConnectorRegistry
from .faults import FaultInjector
from .feed import EventFeeder, StixObject
from .graphql import GraphQLEndpoint
from .jsonpatch import JsonPatch
from .server import EmulatorHTTPServer, server_tls_context
from .store import EventLog
from .streaming import ConnectionLog, StreamConfig

StreamSpec = StreamConfig | Mapping[str, Any] | None


def _normalise_streams(streams: Mapping[str, StreamSpec] | Iterable[str] | None) -> dict[str, StreamConfig]:
    if streams is None:
        streams = ["live"]
    items = streams.items() if isinstance(streams, Mapping) else ((sid, None) for sid in streams)
    result: dict[str, StreamConfig] = {}
    for stream_id, spec in items:
        if isinstance(spec, StreamConfig):
            result[stream_id] = spec
        else:
            result[stream_id] = StreamConfig(stream_id=stream_id, **dict(spec or {}))
    return result


class OpenCTIEmulator:
    """An in-process emulated OpenCTI platform (GraphQL + live stream + admin API).

    Example::

        with OpenCTIEmulator(token="t", streams={"live": None}) as emu:
            emu.load_jsonl("indicators.jsonl")
            run_connector(url=emu.base_url, token="t", stream="live")
    """

    def __init__(
        self,
        token: str,
        streams: Mapping[str, StreamSpec] | Iterable[str] | None = None,
        heartbeat_interval: float = 5.0,
        host: str = "127.0.0.1",
        port: int = 0,
        retry_ms: int | None = None,
        tls_cert: str | Path | None = None,
        tls_key: str | Path | None = None,
        recovery: bool = False,
    ) -> None:
        """`streams` maps stream ids to a `StreamConfig`, its keyword arguments, or None.

        With `tls_cert` and `tls_key` (PEM files) the platform is served over HTTPS only; the
        handshakes clients abandoned (e.g. refusing the certificate) are listed in `tls_failures`.

        `retry_ms`, when set, is sent as the SSE `retry:` field of the `connected` event so that
        clients reconnect faster than their default (pycti: 3000 ms). The platform does not send it.
        """
        if not token:
            raise ValueError("a token is required")
        self.token = token
        self.heartbeat_interval = heartbeat_interval
        self.retry_ms = retry_ms
        # The platform's recovery mode (`?recover=<date>` with an earlier Last-Event-ID sends the
        # current objects, then goes live from the date). Off by default: pycti asks for it on
        # every first run, and most tests are written against a replay of the event log.
        self.recovery = recovery
        self._host, self._port = host, port
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        self._tls_files = (str(tls_cert), str(tls_key)) if tls_cert and tls_key else None
        self.tls_failures: list[str] = []
        self._streams = _normalise_streams(streams)
        self._streams_lock = threading.Lock()
        self.log = EventLog()
        self.feeder = EventFeeder(self.log)
        self.connectors = ConnectorRegistry()
        self.faults = FaultInjector(on_change=self.log.wake_all)
        self.connections = ConnectionLog()
        self.markings = self.feeder.markings
        self.graphql = GraphQLEndpoint(self.connectors, self.streams, self.markings)
        self.stopping = threading.Event()
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()
        self.base_url = ""

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> str:
        """Start serving in a background thread; returns the base URL (`http://host:port`)."""
        if self._server is not None:
            return self.base_url
        self.stopping.clear()
        tls = server_tls_context(*self._tls_files) if self._tls_files else None
        self._server = EmulatorHTTPServer((self._host, self._port), self, tls)
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        self.base_url = f"{'https' if tls else 'http'}://{host}:{port}"
        self.feeder.origin["referer"] = f"{self.base_url}/dashboard"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="opencti-emulator",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving and cut every open stream (clients see the connection drop)."""
        if self._server is None:
            return
        self.stopping.set()
        self.log.wake_all()
        self._server.shutdown()
        with self._sockets_lock:
            for sock in list(self._sockets):
                with contextlib.suppress(OSError):  # already closed by its client
                    sock.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> OpenCTIEmulator:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def track_socket(self, sock: socket.socket, open_: bool) -> None:
        """Remember open stream sockets so that `stop()` can cut them."""
        with self._sockets_lock:
            if open_:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)

    # -- streams ------------------------------------------------------------------------------
    def streams(self) -> dict[str, StreamConfig]:
        """The configured live streams by id."""
        with self._streams_lock:
            return dict(self._streams)

    def stream_config(self, stream_id: str) -> StreamConfig | None:
        """The stream served at `/stream/{stream_id}`; `""` is the raw `/stream` (everything)."""
        if not stream_id:
            return StreamConfig(stream_id="", name="raw stream")
        with self._streams_lock:
            return self._streams.get(stream_id)

    def add_stream(self, stream_id: str, **options: Any) -> StreamConfig:
        """Create (or replace) a live stream; options are `StreamConfig` fields."""
        config = StreamConfig(stream_id=stream_id, **options)
        with self._streams_lock:
            self._streams[stream_id] = config
        return config

    def stop_stream(self, stream_id: str) -> None:
        """Stop a stream: open connections end, new ones get 410."""
        config = self.stream_config(stream_id)
        if config is None or not stream_id:
            raise KeyError(stream_id)
        config.stopped = True
        self.log.wake_all()

    def start_stream(self, stream_id: str) -> None:
        """Restart a stopped stream."""
        config = self.stream_config(stream_id)
        if config is None or not stream_id:
            raise KeyError(stream_id)
        config.stopped = False

    # -- feeding ------------------------------------------------------------------------------
    def create(self, obj: StixObject) -> str:
        """Emit a `create` event; returns its event id."""
        return self.feeder.create(obj)

    def update(self, obj: StixObject, patch: JsonPatch | None = None) -> str:
        """Emit an `update` event with the full new version; returns its event id."""
        return self.feeder.update(obj, patch)

    def delete(self, obj_or_id: StixObject | str) -> str:
        """Emit a `delete` event carrying the last version; returns its event id."""
        return self.feeder.delete(obj_or_id)

    def revoke(self, stix_id: str) -> str:
        """Emit an `update` setting `revoked: true`; returns its event id."""
        return self.feeder.revoke(stix_id)

    def merge(self, target: StixObject, sources: Iterable[StixObject | str]) -> str:
        """Emit a `merge` event; returns its event id."""
        return self.feeder.merge(target, sources)

    def add_bundle(self, bundle_or_objects: StixObject | Iterable[StixObject]) -> list[str]:
        """Emit `create` events for a bundle or a list of objects; returns their event ids."""
        return self.feeder.add_bundle(bundle_or_objects)

    def load_jsonl(self, path: str | Path) -> list[str]:
        """Emit `create` events for a JSON-lines file of STIX objects; returns their event ids."""
        return self.feeder.load_jsonl(path)

    def current_object(self, stix_id: str) -> StixObject | None:
        """The latest version of an object as the platform holds it (with the extension)."""
        return self.feeder.current(stix_id)

    # -- inspection ---------------------------------------------------------------------------
    def events(self) -> list[dict[str, Any]]:
        """Every event emitted so far: id, type, stix_id, stix_type and payload."""
        return [record.summary() for record in self.log.snapshot()]

    def event_ids(self) -> list[str]:
        """Ids of every event emitted so far, in order."""
        return [record.event_id for record in self.log.snapshot()]

    def connector(self, connector_id: str) -> dict[str, Any] | None:
        """A registered connector: state (parsed), state_raw, ping_count, last_ping_at, ..."""
        return self.connectors.get(connector_id)

    def connector_state(self, connector_id: str) -> Any:
        """The parsed state stored for a connector (None when unknown or empty)."""
        record = self.connectors.get(connector_id)
        return record["state"] if record else None

    def set_connector_state(self, connector_id: str, state: Any, reset: bool = True) -> None:
        """Pre-seed a state handed back by registerConnector, or reset a running connector's."""
        self.connectors.set_state(connector_id, state, reset)

    def graphql_calls(self) -> list[dict[str, Any]]:
        """Every GraphQL operation received, in order."""
        return self.graphql.calls()

    def stream_connections(self) -> list[dict[str, Any]]:
        """Every stream connection attempt: headers (no credentials), Last-Event-ID, outcome."""
        return self.connections.all()
