"""Turns STIX objects into create/update/delete/merge events, tracking each object's current version."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .jsonpatch import JsonPatch, compute_patch
from .markings import MarkingRegistry
from .stix import extension_of, now_iso, with_opencti_extension
from .store import EventLog, EventRecord

StixObject = dict[str, Any]

# The fixed user the emulator attributes every change to (the platform's admin user id).
_EMULATOR_USER_ID = "88ec0c6a-13ce-5e39-b486-354fe4a7084f"


class EventFeeder:
    """Feeds the event log the way the platform would after each knowledge change.

    One lock serialises "read current version, compute patch, append" so that patches are always
    computed against the version that the previous event carried.
    """

    def __init__(self, log: EventLog, origin: dict[str, Any] | None = None) -> None:
        self._log = log
        self._lock = threading.RLock()
        self._current: dict[str, StixObject] = {}
        self.origin = origin or {"referer": "http://opencti/dashboard", "user_id": _EMULATOR_USER_ID}
        # The platform's marking definitions: referenced, hence sent as dependencies, without
        # ever being events of the log themselves.
        self.markings = MarkingRegistry()

    # -- object store -------------------------------------------------------------------------
    def current(self, stix_id: str) -> StixObject | None:
        """The latest version of a live (not deleted) object, as a deep copy."""
        with self._lock:
            obj = self._current.get(stix_id)
            return copy.deepcopy(obj) if obj is not None else None

    def recoverable(self, start_ms: int, until_ms: int) -> list[tuple[int, StixObject]]:
        """Current objects last updated within [start_ms, until_ms], oldest update first, with the
        update time in ms: what the platform's recovery mode reads from its database."""
        found: list[tuple[int, StixObject]] = []
        with self._lock:
            for obj in self._current.values():
                updated = iso_ms(extension_of(obj).get("updated_at"))
                if updated is not None and start_ms <= updated <= until_ms:
                    found.append((updated, copy.deepcopy(obj)))
        found.sort(key=lambda item: item[0])
        return found

    def current_unsafe(self, stix_id: str) -> StixObject | None:
        """The stored latest version without copying (callers must not modify it); marking
        definitions come from the platform's registry."""
        found = self._current.get(stix_id)
        return found if found is not None else self.markings.stix(stix_id)

    # -- events -------------------------------------------------------------------------------
    def _append(
        self,
        kind: str,
        data: StixObject,
        context: dict[str, Any] | None = None,
        previous: StixObject | None = None,
        referer: str | None = None,
    ) -> EventRecord:
        origin = dict(self.origin)
        if referer:
            origin["referer"] = referer
        return self._log.append(
            lambda key: EventRecord(
                key=key,
                kind=kind,
                data=data,
                origin=origin,
                context=context,
                previous=previous,
                created_at=time.time(),
            )
        )

    def create(self, obj: StixObject) -> str:
        """Emit a `create` event for `obj` (also used for an object that already exists: the
        platform upserts, and the stream still says create)."""
        with self._lock:
            data = with_opencti_extension(obj, self._current.get(obj.get("id", "")))
            self._current[data["id"]] = data
            return self._append("create", data).event_id

    def update(self, obj: StixObject, patch: JsonPatch | None = None) -> str:
        """Emit an `update` event: `obj` is the full new version.

        Without `patch`, patch and reverse_patch are computed from the previous version. `modified`
        and the extension's `updated_at` are bumped when the caller left them unchanged, as the
        platform does on every change.
        """
        with self._lock:
            previous = self._current.get(obj.get("id", ""))
            if previous is None:
                raise KeyError(f"cannot update unknown object {obj.get('id')!r}; create it first")
            stamp = now_iso()
            new = copy.deepcopy(obj)
            if new.get("modified") == previous.get("modified"):
                new["modified"] = stamp
            new_ext = extension_of(new)
            if new_ext and new_ext.get("updated_at") == extension_of(previous).get("updated_at"):
                new_ext.pop("updated_at")
            data = with_opencti_extension(new, previous, touched_at=stamp)
            context: dict[str, Any] = {
                "patch": patch if patch is not None else compute_patch(previous, data),
                "reverse_patch": compute_patch(data, previous),
            }
            self._current[data["id"]] = data
            return self._append("update", data, context, previous=previous).event_id

    def revoke(self, stix_id: str) -> str:
        """Emit an `update` that sets `revoked: true` on the current version."""
        with self._lock:
            current = self.current(stix_id)
            if current is None:
                raise KeyError(f"cannot revoke unknown object {stix_id!r}")
            current["revoked"] = True
            return self.update(current)

    def delete(self, obj_or_id: StixObject | str) -> str:
        """Emit a `delete` event carrying the last known version of the object."""
        with self._lock:
            stix_id = obj_or_id if isinstance(obj_or_id, str) else obj_or_id.get("id", "")
            last = self._current.pop(stix_id, None)
            if last is None:
                if isinstance(obj_or_id, str):
                    raise KeyError(f"cannot delete unknown object {stix_id!r}")
                last = with_opencti_extension(obj_or_id)
            return self._append("delete", last).event_id

    def merge(self, target: StixObject, sources: Iterable[StixObject | str]) -> str:
        """Emit a `merge` event: `target` (full new version) absorbed `sources`, which disappear."""
        with self._lock:
            previous = self._current.get(target.get("id", ""))
            data = with_opencti_extension(target, previous)
            source_objects: list[StixObject] = []
            for source in sources:
                source_id = source if isinstance(source, str) else source.get("id", "")
                known = self._current.pop(source_id, None)
                if known is None and not isinstance(source, str):
                    known = with_opencti_extension(source)
                if known is None:
                    raise KeyError(f"unknown merge source {source_id!r}")
                source_objects.append(known)
            context = {
                "patch": compute_patch(previous or {}, data),
                "reverse_patch": compute_patch(data, previous or {}),
                "sources": source_objects,
            }
            self._current[data["id"]] = data
            return self._append("merge", data, context, previous=previous).event_id

    def add_bundle(self, bundle_or_objects: StixObject | Iterable[StixObject]) -> list[str]:
        """Emit one `create` per object of a STIX bundle, a list of objects, or a single object."""
        if isinstance(bundle_or_objects, dict):
            if bundle_or_objects.get("type") == "bundle":
                objects: Iterable[StixObject] = bundle_or_objects.get("objects") or []
            else:
                objects = [bundle_or_objects]
        else:
            objects = bundle_or_objects
        return [self.create(obj) for obj in objects]

    def load_jsonl(self, path: str | Path) -> list[str]:
        """Emit `create` events for a file with one STIX object (or bundle) per line."""
        ids: list[str] = []
        with open(path, encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{line_no}: not JSON: {exc}") from exc
                ids.extend(self.add_bundle(item))
        return ids


def iso_ms(value: object) -> int | None:
    """Epoch milliseconds of an ISO date (``2025-01-01T00:00:00.000Z``), None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
