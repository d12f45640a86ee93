"""One live-stream connection: replays the log after Last-Event-ID, then follows it live."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .faults import FaultInjector
from .feed import EventFeeder
from .ids import EventKey, format_event_id
from .sse import ChunkedWriter, frame
from .stix import build_payload, now_iso
from .store import EventLog, EventRecord

# Flush at least this often while catching up: big enough for thousands of events per second,
# small enough that a client sees events promptly.
_FLUSH_BYTES = 64 * 1024
_NAP_SLICE = 0.05


@dataclass
class StreamConfig:
    """A live stream collection. `types` / `predicate` play the role of the stream's filters."""

    stream_id: str
    name: str | None = None
    description: str = ""
    stopped: bool = False
    types: list[str] | None = None
    predicate: Callable[[dict[str, Any]], bool] | None = None

    def accepts(self, obj: dict[str, Any] | None) -> bool:
        """Whether an object version passes the stream's filters."""
        if obj is None:
            return False
        if self.types is not None and obj.get("type") not in self.types:
            return False
        return self.predicate is None or bool(self.predicate(obj))

    def as_graphql(self) -> dict[str, Any]:
        """The `streamCollection` GraphQL shape."""
        return {
            "id": self.stream_id,
            "name": self.name or self.stream_id,
            "description": self.description,
            "stream_live": not self.stopped,
            "stream_public": False,
        }


@dataclass
class ConnectionInfo:
    """A line of the connection log. Tokens are never kept: only whether authentication passed."""

    connection_id: str
    path: str
    stream_id: str | None
    client: str
    headers: dict[str, str]
    last_event_id: str | None
    recover: str | None
    start_position: str | None = None
    started_at: float = field(default_factory=time.time)
    status: int = 200
    ended_at: float | None = None
    end_reason: str | None = None
    events_sent: int = 0
    heartbeats_sent: int = 0
    last_sent_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return dict(self.__dict__)


class ConnectionLog:
    """Thread-safe list of every stream connection attempt."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[ConnectionInfo] = []

    def add(self, info: ConnectionInfo) -> ConnectionInfo:
        """Record a new connection attempt."""
        with self._lock:
            self._items.append(info)
        return info

    def all(self) -> list[dict[str, Any]]:
        """JSON-friendly snapshot (attributes of live connections keep changing)."""
        with self._lock:
            return [item.as_dict() for item in self._items]


def _key_date(key: EventKey) -> str:
    moment = datetime.fromtimestamp(key[0] / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StreamSession:
    """Writes one SSE response until the client leaves, a fault cuts it, or the server stops."""

    def __init__(
        self,
        *,
        log: EventLog,
        feeder: EventFeeder,
        faults: FaultInjector,
        stream: StreamConfig,
        writer: ChunkedWriter,
        info: ConnectionInfo,
        start_index: int,
        start_key: EventKey,
        listen_delete: bool,
        no_dependencies: bool,
        heartbeat_interval: float,
        retry_ms: int | None,
        server_stopping: threading.Event,
        recovery: list[tuple[int, dict[str, Any]]] | None = None,
        recover_key: EventKey | None = None,
    ) -> None:
        """`recovery` (the platform's recovery mode, `?recover=<date>`): current objects to send
        first as `create` events with their update time as id; the live part then starts after
        `recover_key`, the recover date."""
        self._log = log
        self._feeder = feeder
        self._faults = faults
        self._stream = stream
        self._writer = writer
        self._info = info
        self._index = start_index
        self._position = start_key
        self._listen_delete = listen_delete
        self._no_dependencies = no_dependencies
        self._interval = heartbeat_interval
        self._retry_ms = retry_ms
        self._stopping = server_stopping
        self._generation = faults.generation
        # Dependencies are sent once per connection, like the platform's per-channel cache.
        self._sent_objects: set[str] = set()
        self._recovery = recovery or []
        self._recover_key = recover_key

    # -- control ------------------------------------------------------------------------------
    def _close_reason(self) -> str | None:
        if self._stopping.is_set():
            return "server_stopped"
        if self._faults.generation != self._generation:
            return "injected_disconnect"
        if self._stream.stopped:
            return "stream_stopped"
        return None

    def _nap(self, seconds: float) -> None:
        """Sleep, waking early when the connection must close."""
        deadline = time.monotonic() + seconds
        while self._close_reason() is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, _NAP_SLICE))

    def _flush(self, buf: bytearray) -> None:
        if buf:
            self._writer.write(bytes(buf))
            buf.clear()

    # -- rendering ----------------------------------------------------------------------------
    def _delivered_kind(self, record: EventRecord) -> str | None:
        """The event name this connection sees for a record, or None to skip it.

        Mirrors the platform: an update that moves an object into the filter arrives as `create`,
        one that moves it out arrives as `delete` (only with listen-delete).
        """
        accepts = self._stream.accepts
        kind = record.kind
        if kind == "update":
            now_in = accepts(record.data)
            was_in = accepts(record.previous) if record.previous is not None else now_in
            if not now_in:
                kind = "delete" if was_in else ""
            elif not was_in:
                kind = "create"
        elif not accepts(record.data):
            return None
        if not kind or (kind == "delete" and not self._listen_delete):
            return None
        return kind

    def _dependencies(self, obj: dict[str, Any], pending: list[str], seen: set[str]) -> None:
        """Collect the ids of referenced live objects not sent yet, dependencies first."""
        for key, value in obj.items():
            if key.endswith("_ref") and isinstance(value, str):
                refs = [value]
            elif key.endswith("_refs") and isinstance(value, list):
                refs = [ref for ref in value if isinstance(ref, str)]
            else:
                continue
            for ref in refs:
                if ref in seen or ref in self._sent_objects or ref == obj.get("id"):
                    continue
                seen.add(ref)
                target = self._feeder.current_unsafe(ref)
                if target is not None:
                    self._dependencies(target, pending, seen)
                    pending.append(ref)

    def _render(self, record: EventRecord) -> tuple[bytes, list[str]]:
        """The bytes to send for a record and the object ids they deliver (empty when skipped)."""
        kind = self._delivered_kind(record)
        if kind is None:
            return b"", []
        event_id = record.event_id
        out: list[bytes] = []
        delivered: list[str] = []
        if not self._no_dependencies and kind != "delete":
            pending: list[str] = []
            self._dependencies(record.data, pending, {record.data.get("id", "")})
            for ref in pending:
                dep = self._feeder.current_unsafe(ref)
                if dep is None:
                    continue
                # Dependencies reuse the triggering event's id: duplicate ids are legal on the wire.
                payload = build_payload("create", dep, record.origin)
                out.append(frame("create", json.dumps(payload, ensure_ascii=False), event_id))
                delivered.append(ref)
        if kind == record.kind:
            data = record.wire_data()
        else:
            context = None if kind in ("create", "delete") else record.context
            data = json.dumps(build_payload(kind, record.data, record.origin, context), ensure_ascii=False)
        out.append(frame(kind, data, event_id))
        delivered.append(record.data.get("id", ""))
        return b"".join(out), delivered

    # -- main loop ----------------------------------------------------------------------------
    def _connected_frame(self) -> bytes:
        first, last, size = self._log.bounds()
        info = {
            "lastEventId": last.event_id if last else "",
            "firstEventId": first.event_id if first else "",
            "firstEventDate": _key_date(first.key) if first else None,
            "lastEventDate": _key_date(last.key) if last else None,
            "streamSize": size,
            "connectionId": self._info.connection_id,
        }
        # The real `connected` event has no id, so pycti drops it without touching its state.
        return frame("connected", json.dumps(info), None, self._retry_ms)

    def _heartbeat(self) -> None:
        position = format_event_id(self._position)
        self._writer.write(frame("heartbeat", json.dumps(now_iso()), position))
        self._info.heartbeats_sent += 1
        self._info.last_sent_id = position

    def run(self) -> str:
        """Serve the connection; returns why it ended. Socket errors mean the client left."""
        try:
            return self._serve()
        except OSError:
            return "client_gone"

    def _recover(self) -> str | None:
        """Send the recovery snapshot; returns why the connection must end, or None."""
        buf = bytearray()
        origin = {"referer": "init-create"}
        for updated_ms, obj in self._recovery:
            reason = self._close_reason()
            if reason is not None:
                return reason
            event_id = format_event_id((updated_ms, 0))
            if not self._no_dependencies:
                pending: list[str] = []
                self._dependencies(obj, pending, {obj.get("id", "")})
                for ref in pending:
                    dep = self._feeder.current_unsafe(ref)
                    if dep is not None:
                        buf += frame("create", json.dumps(build_payload("create", dep, origin)), event_id)
                        self._sent_objects.add(ref)
            payload = build_payload("create", obj, origin)
            buf += frame("create", json.dumps(payload, ensure_ascii=False), event_id)
            self._sent_objects.add(obj.get("id", ""))
            self._info.events_sent += 1
            self._info.last_sent_id = event_id
            if len(buf) >= _FLUSH_BYTES:
                self._flush(buf)
        self._flush(buf)
        if self._recover_key is not None:
            self._index = self._log.index_after(self._recover_key)
            self._position = max(self._position, self._recover_key)
        return None

    def _serve(self) -> str:
        self._writer.write(self._connected_frame())
        if self._recovery or self._recover_key is not None:
            ended = self._recover()
            if ended is not None:
                return ended
        next_heartbeat = time.monotonic() + self._interval
        buf = bytearray()
        while True:
            reason = self._close_reason()
            if reason is not None:
                return reason
            stall = self._faults.stall_remaining()
            if stall > 0:
                self._nap(min(stall, _NAP_SLICE))
                continue
            records = self._log.wait_records(self._index, max(0.0, next_heartbeat - time.monotonic()))
            for record in records:
                if self._close_reason() is not None or self._faults.stall_remaining() > 0:
                    break
                data, delivered = self._render(record)
                delay = self._faults.delay_seconds
                if data and delay > 0:
                    self._flush(buf)
                    self._nap(delay)
                    if self._close_reason() is not None or self._faults.stall_remaining() > 0:
                        break  # not delivered: the record is sent again after the stall
                self._index += 1
                self._position = record.key
                if data:
                    buf += data
                    self._sent_objects.update(delivered)
                    self._info.events_sent += 1
                    self._info.last_sent_id = record.event_id
                    if self._faults.event_delivered():
                        self._flush(buf)
                        return "injected_disconnect"
                    if len(buf) >= _FLUSH_BYTES:
                        self._flush(buf)
                if time.monotonic() >= next_heartbeat:
                    self._flush(buf)
                    self._heartbeat()
                    next_heartbeat = time.monotonic() + self._interval
            self._flush(buf)
            if time.monotonic() >= next_heartbeat and self._close_reason() is None:
                if self._faults.stall_remaining() <= 0:
                    self._heartbeat()
                next_heartbeat = time.monotonic() + self._interval


def new_connection_id() -> str:
    """A fresh connection id (as in the `connected` event)."""
    return str(uuid.uuid4())
