"""Which resources name which collection, kept in memory from the operator's own watch.

The claim goes to the oldest resource naming a collection, so every new claim (and every Lease
the watch restores) needs the collection's claimants. Listing every SekoiaIntelSync from the API
server for that made a burst of N creates cost N lists of N objects; the watch kopf already runs
delivers the same facts for free.

The index may lag the API server by the time an event takes to arrive; callers add themselves to
the claimants they get, and the Lease (an atomic create) still guarantees one holder.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from .claims import Holder


def holder_of(obj: Mapping[str, Any]) -> Holder:
    """The claimant a resource object describes (flagged when it is being deleted)."""
    meta = obj.get("metadata") or {}
    return Holder(
        created=str(meta.get("creationTimestamp", "")),
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        deleting=bool(meta.get("deletionTimestamp")),
    )


class ClaimantIndex:
    """collection UUID -> the resources naming it. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_uid: dict[str, tuple[str, Holder]] = {}
        self._primed = False

    @property
    def primed(self) -> bool:
        """True once the watch delivered anything: before that the index knows nothing."""
        return self._primed

    def observe(self, event_type: str | None, obj: Mapping[str, Any], collection: str | None) -> None:
        """Record one watch event of a resource (`collection` None: its spec is unusable)."""
        holder = holder_of(obj)
        if not holder.uid:
            return
        with self._lock:
            self._primed = True
            if event_type == "DELETED" or collection is None:
                self._by_uid.pop(holder.uid, None)
            else:
                self._by_uid[holder.uid] = (collection, holder)

    def claimants(self, collection: str) -> list[Holder]:
        """The resources naming `collection`, as last seen."""
        with self._lock:
            return [holder for coll, holder in self._by_uid.values() if coll == collection]
