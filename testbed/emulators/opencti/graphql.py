"""The few GraphQL operations pycti sends, answered in the shapes pycti reads."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

from .connectors import ConnectorRegistry
from .markings import MarkingRegistry
from .streaming import StreamConfig

# pycti sends no `operationName`: the name is the first identifier after query/mutation.
_OPERATION_RE = re.compile(r"^\s*(?:#[^\n]*\n\s*)*(query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)")

PLATFORM_VERSION = "6.8.17"

GraphQLResult = dict[str, Any]


def operation_name(query: str) -> tuple[str | None, str | None]:
    """(operation type, operation name) of a GraphQL document; (None, None) if anonymous."""
    match = _OPERATION_RE.match(query or "")
    if match is None:
        return None, None
    return match.group(1), match.group(2)


def graphql_error(message: str, code: str = "UNSUPPORTED_OPERATION") -> GraphQLResult:
    """A GraphQL error document (HTTP 200, like the platform's functional errors)."""
    return {"errors": [{"message": message, "name": code, "extensions": {"code": code}}], "data": None}


class GraphQLEndpoint:
    """Dispatches a GraphQL request body to the matching handler and keeps a call log."""

    def __init__(
        self,
        connectors: ConnectorRegistry,
        streams: Callable[[], dict[str, StreamConfig]],
        markings: MarkingRegistry | None = None,
    ) -> None:
        self._connectors = connectors
        self._markings = markings or MarkingRegistry()
        self._streams = streams
        self._lock = threading.Lock()
        self._calls: list[dict[str, Any]] = []
        self._handlers: dict[str, Callable[[dict[str, Any]], GraphQLResult]] = {
            "healthCheck": self._health_check,
            "RegisterConnector": self._register,
            "PingConnector": self._ping,
            "ConnectorDeletionMutation": self._delete,
            "StreamCollection": self._stream_collection,
            "GetConnector": self._get_connector,
            "MarkingDefinition": self._marking_definition,
        }

    def calls(self) -> list[dict[str, Any]]:
        """Every operation received, in order: name, time and variables (never headers/tokens)."""
        with self._lock:
            return [dict(call) for call in self._calls]

    def execute(self, body: Any) -> GraphQLResult:
        """Answer one request body `{"query": ..., "variables": ...}`."""
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return graphql_error("Body must be a JSON object with a `query` string", "BAD_REQUEST")
        variables = body.get("variables") or {}
        _, name = operation_name(body["query"])
        if name is None and re.match(r"^\s*\{\s*about\b", body["query"]):
            name = "healthCheck"  # anonymous `{ about { version } }`
        with self._lock:
            self._calls.append({"operation": name, "at": time.time(), "variables": variables})
        handler = self._handlers.get(name or "")
        if handler is None:
            return graphql_error(f"The OpenCTI emulator does not implement the operation {name!r}")
        return handler(variables)

    # -- handlers -----------------------------------------------------------------------------
    def _health_check(self, _variables: dict[str, Any]) -> GraphQLResult:
        return {"data": {"about": {"version": PLATFORM_VERSION}}}

    def _register(self, variables: dict[str, Any]) -> GraphQLResult:
        registration = variables.get("input") or {}
        if not registration.get("id"):
            return graphql_error("registerConnector needs input.id", "MISSING_REFERENCE_ERROR")
        record = self._connectors.register(registration)
        # 7.x needs `jwks` present and no `config.s3: null`; both versions need `config.connection`.
        return {
            "data": {
                "registerConnector": {
                    "id": record.connector_id,
                    "connector_state": record.state_raw,
                    "connector_user_id": None,
                    "jwks": None,
                    "config": {
                        "connection": {
                            "host": "127.0.0.1",
                            "vhost": "/",
                            "use_ssl": False,
                            "port": 5672,
                            "user": "emulator",
                            "pass": "emulator",
                        },
                        "listen": f"listen_{record.connector_id}",
                        "listen_routing": f"listen_routing_{record.connector_id}",
                        "listen_exchange": "amqp.connector.exchange",
                        "push": f"push_{record.connector_id}",
                        "push_routing": f"push_routing_{record.connector_id}",
                        "push_exchange": "amqp.worker.exchange",
                    },
                }
            }
        }

    def _ping(self, variables: dict[str, Any]) -> GraphQLResult:
        connector_id = str(variables.get("id"))
        info = variables.get("connectorInfo")
        state = self._connectors.ping(connector_id, variables.get("state"), info)
        return {
            "data": {
                "pingConnector": {
                    "id": connector_id,
                    "connector_state": state,
                    "connector_info": info,
                }
            }
        }

    def _delete(self, variables: dict[str, Any]) -> GraphQLResult:
        connector_id = str(variables.get("id"))
        if not self._connectors.delete(connector_id):
            return graphql_error(f"Connector {connector_id} not found", "NOT_FOUND")
        return {"data": {"deleteConnector": connector_id}}

    def _stream_collection(self, variables: dict[str, Any]) -> GraphQLResult:
        stream = self._streams().get(str(variables.get("id")))
        return {"data": {"streamCollection": stream.as_graphql() if stream else None}}

    def _marking_definition(self, variables: dict[str, Any]) -> GraphQLResult:
        # Like the platform: an unknown id is a null answer, not an error.
        marking = self._markings.get(str(variables.get("id")))
        return {"data": {"markingDefinition": marking.as_graphql() if marking else None}}

    def _get_connector(self, variables: dict[str, Any]) -> GraphQLResult:
        record = self._connectors.get(str(variables.get("id")))
        if record is None:
            return {"data": {"connector": None}}
        return {
            "data": {
                "connector": {
                    "id": record["id"],
                    "name": record["name"],
                    "active": not record["deleted"],
                    "auto": False,
                    "only_contextual": False,
                    "connector_type": record["type"],
                    "connector_scope": record["scope"],
                    "connector_state": record["state_raw"],
                    "connector_queue_details": {"messages_number": 0, "messages_size": 0},
                    "updated_at": None,
                    "created_at": None,
                    "config": None,
                    "built_in": False,
                }
            }
        }
