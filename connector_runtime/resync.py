"""Resync on demand: replay the stream from a date, once per request, keeping the live position.

A request is a date (``RUNTIME_RESYNC_FROM``) and a token (``RUNTIME_RESYNC_TOKEN``, default the
date itself); the operator sets both from ``spec.opencti.resyncFrom`` / ``resyncToken``, which rolls
the runtime. The last honoured request is kept in the stream state the platform stores for the
connector (key ``resync``), so a restart never repeats it and a crash in the middle resumes it.

How (the platform's recovery mode, as pycti drives it): the state's ``start_from`` becomes the
request's date and ``recover_until`` the time of the position committed before the resync (now,
when there is none). The platform then sends the current version of every object updated in
between as ``create`` events, and goes live from ``recover_until``: events after the old committed
position arrive again, in order, so nothing that happened after it is lost (a deletion included).
The resync has ended once the committed position reaches ``recover_until``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from connector_runtime.delivery.positions import event_id_time


def iso(epoch: float) -> str:
    """RFC 3339 UTC with milliseconds (what the platform's ``recover`` parameter takes)."""
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_date(value: str) -> float:
    """Epoch seconds of an ISO 8601 date-time (a date alone means midnight UTC); ValueError else."""
    text = value.strip()
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be an RFC 3339 date-time such as 2025-01-31T00:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


@dataclass(frozen=True)
class ResyncRecord:
    """One resync as stored in the stream state and shown in ``status.progress.resync``."""

    token: str
    from_: str
    until: str
    started_at: str
    ended_at: str | None = None

    def as_state(self) -> dict[str, Any]:
        """The JSON kept in the connector state."""
        return {k.rstrip("_"): v for k, v in asdict(self).items()}

    @classmethod
    def from_state(cls, value: Any) -> ResyncRecord | None:
        """The record kept in a state (None when absent or not of this shape)."""
        if not isinstance(value, dict):
            return None
        try:
            return cls(
                str(value["token"]),
                str(value["from"]),
                str(value["until"]),
                str(value["started_at"]),
                str(value["ended_at"]) if value.get("ended_at") else None,
            )
        except KeyError:
            return None

    @property
    def start_id(self) -> str:
        """The stream position the replay starts from."""
        return f"{int(parse_date(self.from_) * 1000)}-0"

    def status(self, position: str | None) -> dict[str, Any]:
        """``status.progress.resync``."""
        return {
            "token": self.token,
            "from": self.from_,
            "until": self.until,
            "state": "Completed" if self.ended_at else "InProgress",
            "position": position,
            "startedAt": self.started_at,
            "endedAt": self.ended_at,
        }


def plan(token: str | None, from_date: str | None, state: dict[str, Any], now: float) -> ResyncRecord | None:
    """The resync to start now, or None (no request, or this token was already honoured)."""
    if not from_date:
        return None
    token = token or from_date
    done = ResyncRecord.from_state(state.get("resync"))
    if done is not None and done.token == token:
        return None
    committed = state.get("start_from")
    until = event_id_time(str(committed)) if committed else None
    # Never before the requested date: the platform would have nothing to recover.
    start = parse_date(from_date)
    until_epoch = until if until is not None and until > start else now
    return ResyncRecord(token, iso(start), iso(until_epoch), iso(now))


def ended(record: ResyncRecord, committed: str | None) -> bool:
    """Whether the committed position has reached the end of the recovered window."""
    moment = event_id_time(committed) if committed else None
    return moment is not None and moment * 1000 >= int(parse_date(record.until) * 1000)
