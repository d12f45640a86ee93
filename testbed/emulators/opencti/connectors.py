"""Connector registrations and their stored state, as the platform keeps them between runs."""

from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any


def parse_state(raw: str | None) -> Any:
    """Decode a stored state string for inspection (None for null, "" or undecodable)."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return None


@dataclass
class ConnectorRecord:
    """What the platform knows about one connector id."""

    connector_id: str
    name: str | None = None
    connector_type: str | None = None
    scope: list[str] = field(default_factory=list)
    registration_input: dict[str, Any] = field(default_factory=dict)
    state_raw: str | None = None
    # Set by a "reset from the UI": the next ping answers with the stored state instead of storing.
    state_reset_pending: bool = False
    registrations: int = 0
    registered_at: float | None = None
    ping_count: int = 0
    last_ping_at: float | None = None
    last_connector_info: dict[str, Any] | None = None
    deleted: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view, with the state decoded."""
        return {
            "id": self.connector_id,
            "name": self.name,
            "type": self.connector_type,
            "scope": list(self.scope),
            "registrations": self.registrations,
            "registered_at": self.registered_at,
            "state": parse_state(self.state_raw),
            "state_raw": self.state_raw,
            "state_reset_pending": self.state_reset_pending,
            "ping_count": self.ping_count,
            "last_ping_at": self.last_ping_at,
            "last_connector_info": copy.deepcopy(self.last_connector_info),
            "deleted": self.deleted,
        }


class ConnectorRegistry:
    """Thread-safe store of connectors keyed by connector id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, ConnectorRecord] = {}

    def _get(self, connector_id: str) -> ConnectorRecord:
        record = self._records.get(connector_id)
        if record is None:
            record = self._records[connector_id] = ConnectorRecord(connector_id)
        return record

    def register(self, registration: dict[str, Any]) -> ConnectorRecord:
        """Record a RegisterConnector input; returns a copy holding the state to hand back."""
        connector_id = str(registration.get("id"))
        with self._lock:
            record = self._get(connector_id)
            record.name = registration.get("name")
            record.connector_type = registration.get("type")
            scope = registration.get("scope") or []
            record.scope = list(scope) if isinstance(scope, list) else [str(scope)]
            record.registration_input = copy.deepcopy(registration)
            record.registrations += 1
            record.registered_at = time.time()
            record.deleted = False
            # The state travels back with the registration, so a pending reset has been delivered.
            record.state_reset_pending = False
            return copy.deepcopy(record)

    def ping(self, connector_id: str, state_raw: str | None, info: dict[str, Any] | None) -> str | None:
        """Store the pinged state and return the state to answer with.

        Normally that is the sent state, echoed unchanged (pycti treats any difference as a remote
        reset). After `set_state(..., reset=True)` the stored state is answered once instead.
        """
        with self._lock:
            record = self._get(connector_id)
            record.ping_count += 1
            record.last_ping_at = time.time()
            record.last_connector_info = copy.deepcopy(info)
            if record.state_reset_pending:
                record.state_reset_pending = False
                return record.state_raw
            record.state_raw = state_raw
            return state_raw

    def set_state(self, connector_id: str, state: Any, reset: bool = True) -> None:
        """Pre-seed or overwrite a connector's stored state (a dict, a JSON string, or None).

        With `reset`, a running connector receives it on its next ping, like a reset from the UI.
        """
        raw = state if isinstance(state, str) or state is None else json.dumps(state)
        with self._lock:
            record = self._get(connector_id)
            record.state_raw = raw
            record.state_reset_pending = reset and record.registrations > 0

    def delete(self, connector_id: str) -> bool:
        """Mark a connector deleted (ConnectorDeletionMutation); its state is dropped as well."""
        with self._lock:
            record = self._records.get(connector_id)
            if record is None:
                return False
            record.deleted = True
            record.state_raw = None
            return True

    def get(self, connector_id: str) -> dict[str, Any] | None:
        """JSON-friendly view of one connector, or None."""
        with self._lock:
            record = self._records.get(connector_id)
            return record.as_dict() if record else None

    def all(self) -> dict[str, dict[str, Any]]:
        """JSON-friendly views of every connector, keyed by id."""
        with self._lock:
            return {cid: record.as_dict() for cid, record in self._records.items()}
