"""Admin HTTP API under /_emulator/, so that an out-of-process emulator can be inspected and driven.

GET  summary | state[?collection=] | requests[?since=] | tasks
POST faults {FaultSettings fields..., "storm": {status, count, seconds, retry_after} | null}
POST options {EmulatorOptions fields...} | reset | api-keys {"key", "permissions"} | collections {"id"}
DELETE api-keys/<key>
No authentication, no faults, not in the request log.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .api import Reply

if TYPE_CHECKING:
    from .server import SekoiaEmulator


class AdminApi:
    """Routes of the admin API over a SekoiaEmulator."""

    def __init__(self, emulator: SekoiaEmulator) -> None:
        self._emulator = emulator

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Reply:
        """Answer one admin request; bad input gives 400 `{"message"}`."""
        name = path.removeprefix("/_emulator/").strip("/")
        try:
            payload = json.loads(body) if body else {}
            if not isinstance(payload, dict):
                raise ValueError("the body must be a JSON object")
            return self._route(method, name, query, payload)
        except (ValueError, TypeError, LookupError) as exc:
            return Reply(400, {"message": str(exc)})

    def _route(self, method: str, name: str, query: dict[str, list[str]], payload: dict[str, Any]) -> Reply:
        emu = self._emulator
        if method == "GET" and name == "summary":
            return Reply(200, emu.summary())
        if method == "GET" and name == "state":
            wanted = query.get("collection")
            ids = [wanted[0]] if wanted else emu.collection_ids()
            return Reply(200, {"collections": {cid: emu.indicators(cid) for cid in ids}})
        if method == "GET" and name == "requests":
            since = int(query.get("since", ["0"])[0])
            return Reply(200, {"requests": emu.requests(since)})
        if method == "GET" and name == "tasks":
            return Reply(200, {"tasks": emu.tasks()})
        if method == "POST" and name == "faults":
            return Reply(200, self._faults(payload))
        if method == "POST" and name == "options":
            return Reply(200, emu.set_options(**payload).as_dict())
        if method == "POST" and name == "revoke-all":
            return Reply(200, {"revoked": emu.revoke_all(payload.get("collection"))})
        if method == "POST" and name == "reset":
            emu.reset()
            return Reply(200, {"reset": True})
        if method == "POST" and name == "api-keys":
            emu.add_api_key(_required(payload, "key"), payload.get("permissions") or ["all"])
            return Reply(200, {"keys": emu.keys.count()})
        if method == "DELETE" and name.startswith("api-keys/"):
            removed = emu.remove_api_key(name.removeprefix("api-keys/"))
            return Reply(200 if removed else 404, {"removed": removed})
        if method == "POST" and name == "collections":
            return Reply(200, {"uuid": emu.add_collection(_required(payload, "id"), payload.get("name"))})
        return Reply(404, {"message": f"no admin route {method} /_emulator/{name}"})

    def _faults(self, payload: dict[str, Any]) -> dict[str, Any]:
        emu = self._emulator
        storm_given = "storm" in payload
        storm = payload.pop("storm", None)
        settings = emu.set_faults(**payload)
        if storm_given and storm is None:
            emu.calm()
        elif storm is not None:
            if not isinstance(storm, dict):
                raise ValueError("'storm' must be an object or null")
            emu.storm(**storm)
        return {"faults": settings.as_dict(), "storm": emu.faults.storm_state()}


def _required(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"'{name}' is required")
    return value
