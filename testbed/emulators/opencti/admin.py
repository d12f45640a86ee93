"""The `/_emulator/` admin API: drive and inspect an emulator running in another process.

Unauthenticated on purpose (test-only, bound to loopback by default). Bodies and answers are JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .ids import parse_event_id

if TYPE_CHECKING:
    from .emulator import OpenCTIEmulator

AdminResult = tuple[int, Any]


def _object_of(body: Any) -> dict[str, Any]:
    """Accept either a bare STIX object or `{"object": {...}}`."""
    if isinstance(body, dict) and isinstance(body.get("object"), dict):
        return body["object"]
    if isinstance(body, dict):
        return body
    raise ValueError("expected a JSON object")


def _events(app: OpenCTIEmulator, query: dict[str, list[str]]) -> AdminResult:
    events = app.events()
    after = next(iter(query.get("after", [])), None)
    if after:
        key = parse_event_id(after)
        events = [e for e in events if parse_event_id(e["id"]) > key]
    limit = next(iter(query.get("limit", [])), None)
    if limit:
        events = events[: int(limit)]
    return 200, events


def _post_event(app: OpenCTIEmulator, action: str, body: Any) -> AdminResult:
    if action == "create":
        return 200, {"event_id": app.create(_object_of(body))}
    if action == "update":
        patch = body.get("patch") if isinstance(body, dict) and "object" in body else None
        return 200, {"event_id": app.update(_object_of(body), patch)}
    if action in ("delete", "revoke"):
        target = body.get("id") if isinstance(body, dict) and isinstance(body.get("id"), str) else None
        if action == "revoke":
            if target is None:
                raise ValueError('revoke needs {"id": ...}')
            return 200, {"event_id": app.revoke(target)}
        return 200, {"event_id": app.delete(target if target and "type" not in body else _object_of(body))}
    if action == "merge":
        if not isinstance(body, dict) or not isinstance(body.get("target"), dict):
            raise ValueError('merge needs {"target": {...}, "sources": [...]}')
        return 200, {"event_id": app.merge(body["target"], body.get("sources") or [])}
    if action == "bundle":
        return 200, {"event_ids": app.add_bundle(body)}
    return 404, {"error": f"unknown event action {action!r}"}


def _post_batch(app: OpenCTIEmulator, body: Any) -> AdminResult:
    """Several event actions in one call, applied in order (a soak emits tens of thousands)."""
    operations = body.get("operations") if isinstance(body, dict) else None
    if not isinstance(operations, list):
        raise ValueError('batch needs {"operations": [{"action": ..., "body": ...}, ...]}')
    event_ids: list[Any] = []
    for index, operation in enumerate(operations):
        if not isinstance(operation, dict) or not isinstance(operation.get("action"), str):
            raise ValueError(f"operations[{index}] needs an 'action' and a 'body'")
        status, answer = _post_event(app, operation["action"], operation.get("body"))
        if status != 200:
            raise ValueError(f"operations[{index}]: {answer['error']}")
        event_ids.append(answer.get("event_id", answer.get("event_ids")))
    return 200, {"event_ids": event_ids}


def _get(app: OpenCTIEmulator, parts: list[str], query: dict[str, list[str]]) -> AdminResult:
    match parts:
        case ["health"]:
            return 200, {"status": "ok", "base_url": app.base_url}
        case ["events"]:
            return _events(app, query)
        case ["connectors"]:
            return 200, app.connectors.all()
        case ["connectors", connector_id]:
            record = app.connector(connector_id)
            return (200, record) if record else (404, {"error": "unknown connector"})
        case ["connectors", connector_id, "state"]:
            record = app.connector(connector_id)
            return (200, {"state": record["state"]}) if record else (404, {"error": "unknown connector"})
        case ["state"]:
            return 200, {cid: rec["state"] for cid, rec in app.connectors.all().items()}
        case ["connections"]:
            return 200, app.stream_connections()
        case ["graphql-calls"]:
            return 200, app.graphql_calls()
        case ["faults"]:
            return 200, app.faults.status()
        case ["streams"]:
            return 200, {sid: s.as_graphql() for sid, s in app.streams().items()}
    return 404, {"error": "unknown admin endpoint"}


def _post(app: OpenCTIEmulator, parts: list[str], body: Any) -> AdminResult:
    match parts:
        case ["events", "batch"]:
            return _post_batch(app, body)
        case ["events", action]:
            return _post_event(app, action, body)
        case ["load"]:
            if not isinstance(body, dict) or not isinstance(body.get("path"), str):
                raise ValueError('load needs {"path": "..."}')
            return 200, {"event_ids": app.load_jsonl(body["path"])}
        case ["faults"]:
            app.faults.apply(body or {})
            return 200, app.faults.status()
        case ["connectors", connector_id, "state"]:
            spec = body if isinstance(body, dict) else {}
            app.set_connector_state(connector_id, spec.get("state"), bool(spec.get("reset", True)))
            return 200, app.connector(connector_id)
        case ["streams"]:
            spec = dict(body or {})
            stream_id = spec.pop("id", None)
            if not isinstance(stream_id, str) or not stream_id:
                raise ValueError('streams needs {"id": "..."}')
            return 200, app.add_stream(stream_id, **spec).as_graphql()
        case ["streams", stream_id, "stop"]:
            app.stop_stream(stream_id)
            return 200, {"stopped": stream_id}
        case ["streams", stream_id, "start"]:
            app.start_stream(stream_id)
            return 200, {"started": stream_id}
    return 404, {"error": "unknown admin endpoint"}


def handle_admin(
    app: OpenCTIEmulator, method: str, path: str, query: dict[str, list[str]], body: Any
) -> AdminResult:
    """Answer one admin request; `path` is relative to `/_emulator`."""
    parts = [part for part in path.split("/") if part]
    try:
        return _get(app, parts, query) if method == "GET" else _post(app, parts, body)
    except KeyError as exc:
        return 404, {"error": str(exc.args[0]) if exc.args else "not found"}
    except (ValueError, TypeError) as exc:
        return 400, {"error": str(exc)}
