"""Live-stream messages -> what the runtime must do with them (pure parsing, never raises).

A message is an SSE event from pycti (``event``, ``id``, ``data`` as JSON text). The decision:
- ``create``/``update`` of a non-revoked STIX-pattern Indicator -> PUSH its values;
- ``delete``, or an update with ``revoked: true`` -> REVOKE its values;
- an ``update`` whose previous pattern (from the JSON-patch ``reverse_patch``) held values the new
  one no longer has -> PUSH the new ones and REVOKE the dropped ones;
- anything else -> IGNORE, with the reason counted; an indicator that is ignored (a YARA or Sigma
  rule) keeps its object on the event so that the runtime can say which one it did not deliver.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

OPENCTI_EXTENSION = "extension-definition--ea279b3e-5c71-4632-ac08-831c66a786ba"


class Action(StrEnum):
    """What an event asks of Sekoia."""

    PUSH = "push"
    REVOKE = "revoke"
    IGNORE = "ignore"


@dataclass(frozen=True)
class StreamEvent:
    """One parsed stream event."""

    event_id: str
    name: str
    action: Action
    indicator: dict[str, Any] | None = None
    previous_pattern: str | None = None
    ignore_reason: str | None = None
    # A marking-definition object (a dependency of the indicators that reference it): the
    # sharing guardrail learns its name from it.
    definition: dict[str, Any] | None = None

    @property
    def indicator_id(self) -> str | None:
        """The STIX id of the indicator, when the event is about one."""
        return str(self.indicator.get("id")) if self.indicator else None


def parse_event(name: str, event_id: str, data: str | bytes | None) -> StreamEvent:
    """Decide what a stream event means for Sekoia; malformed input becomes IGNORE with a reason."""

    def ignore(reason: str) -> StreamEvent:
        return StreamEvent(event_id, name, Action.IGNORE, ignore_reason=reason)

    if name not in {"create", "update", "delete", "merge"}:
        return ignore(f"event-{name or 'unnamed'}")
    try:
        payload = json.loads(data or "")
    except (TypeError, ValueError, RecursionError):
        # RecursionError: nesting deeper than the decoder's stack, which no real event has.
        return ignore("malformed-json")
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), dict):
        return ignore("malformed-payload")
    obj: dict[str, Any] = payload["data"]
    if obj.get("type") == "marking-definition" and name != "delete":
        return StreamEvent(event_id, name, Action.IGNORE, ignore_reason="not-an-indicator", definition=obj)
    if obj.get("type") != "indicator":
        return ignore("not-an-indicator")
    if obj.get("pattern_type") != "stix":
        if not isinstance(obj.get("id"), str):
            return ignore("malformed-indicator")
        # Kept on the event: an indicator that cannot be delivered is reported, never dropped quietly.
        return StreamEvent(event_id, name, Action.IGNORE, indicator=obj, ignore_reason="not-stix-pattern")
    if not isinstance(obj.get("pattern"), str) or not isinstance(obj.get("id"), str):
        return ignore("malformed-indicator")
    if name == "merge":
        # A merge keeps the target object; its values arrive as the target's update.
        return ignore("merge")
    if name == "delete" or obj.get("revoked") is True:
        return StreamEvent(event_id, name, Action.REVOKE, indicator=obj)
    previous = _previous_pattern(payload.get("context")) if name == "update" else None
    return StreamEvent(event_id, name, Action.PUSH, indicator=obj, previous_pattern=previous)


def _previous_pattern(context: Any) -> str | None:
    """The pattern before an update, read from the JSON-patch that undoes it."""
    if not isinstance(context, dict):
        return None
    reverse = context.get("reverse_patch")
    if not isinstance(reverse, list):
        return None
    for op in reverse:
        if (
            isinstance(op, dict)
            and op.get("path") == "/pattern"
            and op.get("op") in {"replace", "add"}
            and isinstance(op.get("value"), str)
        ):
            return str(op["value"])
    return None


def opencti_url_of(indicator: dict[str, Any], opencti_url: str) -> str | None:
    """The indicator's page on the platform (what the seed connector put in ``description``)."""
    # Any JSON can sit in these fields: what is not the expected shape simply gives no URL.
    extensions = indicator.get("extensions")
    extension = extensions.get(OPENCTI_EXTENSION) if isinstance(extensions, dict) else None
    internal_id = extension.get("id") if isinstance(extension, dict) else None
    if not internal_id or not isinstance(internal_id, str):
        return None
    return f"{opencti_url.rstrip('/')}/dashboard/observations/indicators/{internal_id}"
