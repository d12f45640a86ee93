"""The emulated `/v2/inthreat/ioc-collections` endpoints, independent of HTTP plumbing.

`SekoiaApi.handle` takes a parsed request and returns a `Reply`; the server only moves bytes. Error
codes other than INTHREAT2500 (documented for an unknown collection) are the emulator's own inventions.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import auth
from . import values as v
from .options import EmulatorOptions
from .store import COLLECTION_PREFIX, NewItem, QuotaExceeded, RevokedValue, Store, canonical_collection_id

API_PREFIX = "/v2/inthreat/ioc-collections"
TEXT_FORMATS = ("one_per_line", *v.TYPES)


@dataclass
class Reply:
    """An answer to send: status, JSON body (None for no body) and extra headers."""

    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)
    values: int = 0  # values carried by the request, for the request log


class ApiError(Exception):
    """Stops handling with an error answer `{"message", "code"}`."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def error_reply(status: int, message: str, code: str) -> Reply:
    """A Sekoia-style error answer."""
    return Reply(status, {"message": message, "code": code})


def bearer_key(header: str | None) -> str | None:
    """The key of an `Authorization: Bearer <key>` header, None when absent or malformed."""
    if not header:
        return None
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


class Tasks:
    """Background imports (text adds, async structured adds): their outcome and a way to wait for them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._tasks: dict[str, dict[str, Any]] = {}
        self._pending = 0

    def open(self) -> str:
        task_id = str(uuid.uuid4())
        with self._cond:
            self._tasks[task_id] = {"task_id": task_id, "status": "pending"}
            self._pending += 1
        return task_id

    def close(self, task_id: str, result: dict[str, Any]) -> None:
        with self._cond:
            self._tasks[task_id].update(result, status="done")
            self._pending -= 1
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no task is pending; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._cond:
            return [dict(t) for t in self._tasks.values()]

    def clear(self) -> None:
        with self._cond:
            self._tasks = {k: t for k, t in self._tasks.items() if t["status"] == "pending"}


class SekoiaApi:
    """Request handling of the emulated API."""

    def __init__(
        self,
        store: Store,
        keys: auth.KeyRing,
        options: Callable[[], EmulatorOptions],
        run_later: Callable[[float, Callable[[], None]], None],
    ) -> None:
        self.store = store
        self.keys = keys
        self.tasks = Tasks()
        self._options = options
        self._run_later = run_later

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes, key: str | None
    ) -> Reply:
        """Answer one API request."""
        try:
            return self._route(method, path, query, body, key)
        except ApiError as exc:
            return error_reply(exc.status, exc.message, exc.code)

    # -- routing -------------------------------------------------------------------------------------
    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes, key: str | None
    ) -> Reply:
        if key is None:
            raise ApiError(401, "Missing or malformed bearer token", "UNAUTHORIZED")
        permissions = self.keys.permissions(key)
        if permissions is None:
            raise ApiError(401, "Invalid or expired API key", "UNAUTHORIZED")
        if not path.startswith(API_PREFIX + "/"):
            raise ApiError(404, "Not found", "NOT_FOUND")
        segments = [s for s in path[len(API_PREFIX) + 1 :].split("/") if s]
        handler, needed = self._pick(method, segments)
        if needed not in permissions:
            raise ApiError(403, f"The API key lacks the permission {needed!r}", "FORBIDDEN")
        cid = self._collection(segments[0])
        return handler(cid, segments, query, body)

    def _pick(self, method: str, segments: list[str]) -> tuple[Callable[..., Reply], str]:
        shape = (method, len(segments), segments[1] if len(segments) > 1 else None)
        routes: dict[tuple[str, int, str | None], tuple[Callable[..., Reply], str]] = {
            ("GET", 1, None): (self._get_collection, auth.VIEW),
            ("GET", 2, "indicators"): (self._search, auth.VIEW),
            ("POST", 2, "indicators"): (self._add, auth.MANAGE),
            ("POST", 3, "indicators"): (self._add_text, auth.MANAGE),
            ("DELETE", 3, "indicators"): (self._revoke, auth.MANAGE),
        }
        found = routes.get(shape)
        if found is None or (shape == ("POST", 3, "indicators") and segments[2] != "text"):
            known_path = any(shape[1:] == k[1:] for k in routes)
            if known_path:
                raise ApiError(405, f"Method {method} not allowed here", "METHOD_NOT_ALLOWED")
            raise ApiError(404, "Not found", "NOT_FOUND")
        return found

    def _collection(self, text: str) -> str:
        form = self._options().collection_id_form
        prefixed = text.lower().startswith(COLLECTION_PREFIX)
        allowed = form == "both" or (form == "prefixed") == prefixed
        cid = canonical_collection_id(text) if allowed else None
        if cid is None or self.store.describe(cid) is None:
            raise ApiError(404, "IOC Collection not found", "INTHREAT2500")
        return cid

    # -- endpoints -----------------------------------------------------------------------------------
    def _get_collection(self, cid: str, *_: object) -> Reply:
        return Reply(200, self.store.describe(cid))

    def _add(self, cid: str, _segments: list[str], _query: object, body: bytes) -> Reply:
        options = self._options()
        payload = _json_object(body, options)
        raw = payload.get("indicators")
        count = len(raw) if isinstance(raw, list) else 0
        if not isinstance(raw, list) or not 1 <= len(raw) <= options.max_values_per_add:
            raise _invalid(options, f"'indicators' must be a list of 1 to {options.max_values_per_add} items")
        defaults = payload.get("default_fields") or {}
        if not isinstance(defaults, dict):
            raise _invalid(options, "'default_fields' must be an object")
        shared = _shared_fields(defaults, options)
        forced_type = defaults.get("type")
        if forced_type is not None and forced_type not in v.TYPES:
            raise _invalid(options, f"unknown indicator type {forced_type!r}")
        items = [_structured_item(entry, forced_type, shared, options) for entry in raw]
        if options.structured_add_mode == "async":
            task_id = self._apply_later(cid, items, all_or_nothing=False)
            return Reply(202, {"task_id": task_id}, values=count)
        try:
            touched, _ = self.store.add(
                cid,
                items,
                readd_revoked=options.readd_revoked,
                quota=options.quota,
                quota_scope=options.quota_scope,
            )
        except QuotaExceeded as exc:
            raise ApiError(options.quota_status, str(exc), "INTHREAT_QUOTA_EXCEEDED") from None
        except RevokedValue as exc:
            raise _invalid(options, str(exc)) from None
        status = 200 if options.structured_add_mode == "sync" else 202
        return Reply(status, {"items": [i.to_api() for i in touched], "total": len(touched)}, values=count)

    def _add_text(self, cid: str, _segments: list[str], _query: object, body: bytes) -> Reply:
        options = self._options()
        payload = _json_object(body, options)
        text = payload.get("indicators")
        if not isinstance(text, str) or not text.strip():
            raise _invalid(options, "'indicators' must be a non-empty string, one value per line")
        fmt = payload.get("format", "one_per_line")
        if fmt not in TEXT_FORMATS:
            raise _invalid(options, f"unknown format {fmt!r}")
        shared = _shared_fields(payload, options)
        items: list[NewItem] = []
        skipped: list[dict[str, str]] = []
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        for line in lines:
            try:
                sekoia_type = v.infer_type(line) if fmt == "one_per_line" else fmt
                v.check(line, sekoia_type)
            except v.InvalidValue as exc:
                skipped.append({"value": line, "reason": str(exc)})
                continue
            items.append(NewItem(line, sekoia_type, shared["valid_from"], **_rest(shared)))
        task_id = self._apply_later(cid, items, all_or_nothing=False, invalid=skipped)
        return Reply(200, {"task_id": task_id}, values=len(lines))

    def _apply_later(
        self,
        cid: str,
        items: list[NewItem],
        *,
        all_or_nothing: bool,
        invalid: list[dict[str, str]] | None = None,
    ) -> str:
        options = self._options()
        task_id = self.tasks.open()

        def apply() -> None:
            touched, refused = self.store.add(
                cid,
                items,
                readd_revoked=options.readd_revoked,
                quota=options.quota,
                quota_scope=options.quota_scope,
                all_or_nothing=all_or_nothing,
                task_id=task_id,
            )
            skipped = list(invalid or []) + [{"value": x, "reason": "refused"} for x in refused]
            self.tasks.close(task_id, {"applied": len(touched), "skipped": skipped})

        self._run_later(options.async_delay, apply)
        return task_id

    def _search(self, cid: str, _segments: list[str], query: dict[str, list[str]], _body: bytes) -> Reply:
        options = self._options()
        term = query.get("term", [""])[0]
        limit = _int_param(query, "limit", options.max_search_limit, options)
        offset = _int_param(query, "offset", 0, options)
        if not 1 <= limit <= options.max_search_limit or offset < 0:
            raise _invalid(options, f"'limit' must be 1 to {options.max_search_limit}, 'offset' at least 0")
        page, total = self.store.search(cid, term, limit, offset, options.search_includes_revoked)
        return Reply(200, {"items": page, "total": total, "has_more": offset + len(page) < total})

    def _revoke(self, cid: str, segments: list[str], _query: object, _body: bytes) -> Reply:
        revoked = self.store.revoke(cid, segments[2])
        if revoked is None:
            raise ApiError(404, "Indicator not found", "INTHREAT_INDICATOR_NOT_FOUND")
        return Reply(200, revoked)


# -- body parsing helpers ----------------------------------------------------------------------------


def _invalid(options: EmulatorOptions, message: str) -> ApiError:
    return ApiError(options.validation_status, message, "INTHREAT_VALIDATION_ERROR")


def _json_object(body: bytes, options: EmulatorOptions) -> dict[str, Any]:
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        raise _invalid(options, "The body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise _invalid(options, "The body must be a JSON object")
    return payload


def _int_param(query: dict[str, list[str]], name: str, default: int, options: EmulatorOptions) -> int:
    raw = query.get(name)
    if not raw:
        return default
    try:
        return int(raw[0])
    except ValueError:
        raise _invalid(options, f"'{name}' must be an integer") from None


def _timestamp(value: Any, name: str, options: EmulatorOptions) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(options, f"'{name}' must be an ISO 8601 date-time string")
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(options, f"'{name}' is not an ISO 8601 date-time: {value!r}") from None
    return value


def _shared_fields(source: dict[str, Any], options: EmulatorOptions) -> dict[str, Any]:
    """Fields common to every value: timestamps, description, kill chain phases, threat refs."""
    description = source.get("description")
    if description is not None and (
        not isinstance(description, str) or len(description) > options.max_description
    ):
        raise _invalid(
            options, f"'description' must be a string of at most {options.max_description} characters"
        )
    phases_raw = source.get("kill_chain_phases") or []
    phases: list[tuple[str, str]] = []
    if not isinstance(phases_raw, list):
        raise _invalid(options, "'kill_chain_phases' must be a list")
    for phase in phases_raw:
        if not (
            isinstance(phase, dict)
            and isinstance(phase.get("kill_chain_name"), str)
            and isinstance(phase.get("phase_name"), str)
        ):
            raise _invalid(options, "each kill chain phase needs 'kill_chain_name' and 'phase_name' strings")
        phases.append((phase["kill_chain_name"], phase["phase_name"]))
    threats = source.get("x_ic_related_threat_refs") or []
    if not isinstance(threats, list) or not all(isinstance(t, str) for t in threats):
        raise _invalid(options, "'x_ic_related_threat_refs' must be a list of strings")
    return {
        "valid_from": _timestamp(source.get("valid_from"), "valid_from", options),
        "valid_until": _timestamp(source.get("valid_until"), "valid_until", options),
        "description": description,
        "kill_chain_phases": tuple(phases),
        "related_threats": tuple(threats),
    }


def _rest(shared: dict[str, Any]) -> dict[str, Any]:
    return {k: shared[k] for k in ("valid_until", "description", "kill_chain_phases", "related_threats")}


def _structured_item(
    entry: Any, forced_type: str | None, shared: dict[str, Any], options: EmulatorOptions
) -> NewItem:
    if not isinstance(entry, dict) or not isinstance(entry.get("value"), str) or not entry["value"].strip():
        raise _invalid(options, "each indicator must be an object with a non-empty 'value' string")
    value = entry["value"].strip()
    try:
        sekoia_type = forced_type or v.infer_type(value)
        v.check(value, sekoia_type)
    except v.InvalidValue as exc:
        raise _invalid(options, f"Invalid indicator: {exc}") from None
    valid_from = _timestamp(entry.get("valid_from"), "valid_from", options) or shared["valid_from"]
    until = shared["valid_until"]
    if valid_from and until and _parse(until) <= _parse(valid_from):
        raise _invalid(options, f"'valid_until' must be after 'valid_from' for {value!r}")
    return NewItem(value, sekoia_type, valid_from, **_rest(shared))


def _parse(stamp: str) -> datetime:
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    # A stamp without offset is read as UTC so that it compares with one that has an offset.
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
