"""In-memory IOC collections of the emulator: indicators, de-duplication, revocation, quota, search.

One lock guards everything; each operation is short (dictionary work only), so a single lock is both
simple and fast enough for hundreds of requests per second.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import values as v

COLLECTION_PREFIX = "ioc-collection--"


def now_iso() -> str:
    """Current UTC time in the STIX timestamp format."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def canonical_collection_id(text: str) -> str | None:
    """Bare lowercase uuid of a collection id in either form, None when it is neither."""
    text = text.strip().lower()
    if text.startswith(COLLECTION_PREFIX):
        text = text[len(COLLECTION_PREFIX) :]
    try:
        return str(uuid.UUID(text)) if len(text) == 36 else None
    except ValueError:
        return None


@dataclass
class Indicator:
    """One stored indicator; `to_api` renders it the way the API answers it."""

    id: str
    value: str
    type: str
    collection: str
    created: str
    modified: str
    valid_from: str
    valid_until: str | None = None
    description: str | None = None
    kill_chain_phases: list[dict[str, str]] = field(default_factory=list)
    related_threats: list[str] = field(default_factory=list)
    revoked: bool = False
    task_id: str | None = None

    def to_api(self) -> dict[str, Any]:
        """STIX-like indicator object as the API answers it."""
        return {
            "id": self.id,
            "type": "indicator",
            "spec_version": "2.1",
            "name": self.value,
            "pattern": v.stix_pattern(self.value, self.type),
            "pattern_type": "stix",
            "created": self.created,
            "modified": self.modified,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "revoked": self.revoked,
            "description": self.description,
            "kill_chain_phases": list(self.kill_chain_phases),
            "x_ic_observable_types": [v.OBSERVABLE_TYPE[self.type]],
            "x_ic_related_threat_refs": list(self.related_threats),
        }

    def to_state(self) -> dict[str, Any]:
        """Flat view for tests: value and type first, then every field."""
        return {
            "id": self.id,
            "value": self.value,
            "type": self.type,
            "revoked": self.revoked,
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
            "description": self.description,
            "kill_chain_phases": [dict(p) for p in self.kill_chain_phases],
            "related_threats": list(self.related_threats),
            "created": self.created,
            "modified": self.modified,
        }


@dataclass(frozen=True)
class NewItem:
    """A validated value to add, with the fields that apply to it."""

    value: str
    type: str
    valid_from: str | None
    valid_until: str | None
    description: str | None
    kill_chain_phases: tuple[tuple[str, str], ...]
    related_threats: tuple[str, ...]


class QuotaExceeded(Exception):
    """Adding the values would pass the IOC cap."""


class RevokedValue(Exception):
    """A revoked value was re-added while the emulator refuses that."""


@dataclass
class Collection:
    """A collection and its indicators, in creation order."""

    uuid: str
    name: str
    created: str
    indicators: list[Indicator] = field(default_factory=list)
    by_id: dict[str, Indicator] = field(default_factory=dict)
    latest_by_key: dict[str, Indicator] = field(default_factory=dict)
    active: int = 0

    def to_api(self) -> dict[str, Any]:
        return {
            "id": COLLECTION_PREFIX + self.uuid,
            "uuid": self.uuid,
            "name": self.name,
            "created_at": self.created,
            "indicators_count": self.active,
        }


class Store:
    """Every collection of the emulated community."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._collections: dict[str, Collection] = {}

    # -- collections ---------------------------------------------------------------------------------
    def add_collection(self, collection_id: str, name: str | None = None) -> str:
        """Create a collection (idempotent); return its bare uuid."""
        cid = canonical_collection_id(collection_id)
        if cid is None:
            raise ValueError(f"not a collection id: {collection_id!r}")
        with self._lock:
            if cid not in self._collections:
                self._collections[cid] = Collection(cid, name or f"Collection {cid[:8]}", now_iso())
        return cid

    def collection_ids(self) -> list[str]:
        with self._lock:
            return list(self._collections)

    def describe(self, cid: str) -> dict[str, Any] | None:
        """API view of a collection, None when unknown."""
        with self._lock:
            collection = self._collections.get(cid)
            return collection.to_api() if collection else None

    def clear(self) -> None:
        """Drop every collection."""
        with self._lock:
            self._collections.clear()

    # -- writes --------------------------------------------------------------------------------------
    def add(
        self,
        cid: str,
        items: list[NewItem],
        *,
        readd_revoked: str,
        quota: int | None,
        quota_scope: str,
        all_or_nothing: bool = True,
        task_id: str | None = None,
    ) -> tuple[list[Indicator], list[str]]:
        """Add or update values; return the indicators touched and the values skipped.

        With `all_or_nothing` (the structured endpoint) a quota or revoked-value refusal raises before
        anything changes; otherwise (the text import) offending values are skipped one by one.
        """
        with self._lock:
            collection = self._collections[cid]
            if all_or_nothing:
                self._precheck(collection, items, readd_revoked, quota, quota_scope)
            touched: list[Indicator] = []
            skipped: list[str] = []
            for item in items:
                key = v.dedup_key(item.value, item.type)
                existing = collection.latest_by_key.get(key)
                reactivates = existing is not None and existing.revoked and readd_revoked == "reactivate"
                creates = existing is None or (existing.revoked and readd_revoked == "create_new")
                if existing is not None and existing.revoked and readd_revoked == "reject":
                    skipped.append(item.value)
                    continue
                if (creates or reactivates) and not self._room_for(collection, 1, quota, quota_scope):
                    skipped.append(item.value)
                    continue
                if creates:
                    indicator = self._create(collection, item, task_id)
                else:
                    assert existing is not None
                    indicator = existing
                    self._update(indicator, item)
                    if reactivates:
                        indicator.revoked = False
                        collection.active += 1
                touched.append(indicator)
            return touched, skipped

    def _precheck(
        self,
        collection: Collection,
        items: list[NewItem],
        readd_revoked: str,
        quota: int | None,
        quota_scope: str,
    ) -> None:
        fresh: set[str] = set()
        for item in items:
            key = v.dedup_key(item.value, item.type)
            existing = collection.latest_by_key.get(key)
            if existing is not None and existing.revoked and readd_revoked == "reject":
                raise RevokedValue(f"Indicator {item.value!r} has been revoked and cannot be added again")
            if existing is None or existing.revoked:
                fresh.add(key)
        if not self._room_for(collection, len(fresh), quota, quota_scope):
            scope = "community" if quota_scope == "community" else "collection"
            raise QuotaExceeded(f"IOC quota exceeded: at most {quota} active indicators per {scope}")

    def _room_for(self, collection: Collection, extra: int, quota: int | None, scope: str) -> bool:
        if quota is None or extra == 0:
            return True
        used = (
            collection.active if scope == "collection" else sum(c.active for c in self._collections.values())
        )
        return used + extra <= quota

    @staticmethod
    def _create(collection: Collection, item: NewItem, task_id: str | None) -> Indicator:
        stamp = now_iso()
        indicator = Indicator(
            id=f"indicator--{uuid.uuid4()}",
            value=item.value,
            type=item.type,
            collection=collection.uuid,
            created=stamp,
            modified=stamp,
            valid_from=item.valid_from or stamp,
            valid_until=item.valid_until,
            description=item.description,
            kill_chain_phases=[{"kill_chain_name": k, "phase_name": p} for k, p in item.kill_chain_phases],
            related_threats=list(item.related_threats),
            task_id=task_id,
        )
        collection.indicators.append(indicator)
        collection.by_id[indicator.id] = indicator
        collection.latest_by_key[v.dedup_key(item.value, item.type)] = indicator
        collection.active += 1
        return indicator

    @staticmethod
    def _update(indicator: Indicator, item: NewItem) -> None:
        # A re-add refreshes what the sender says now; fields it leaves out keep their value.
        indicator.modified = now_iso()
        if item.valid_from:
            indicator.valid_from = item.valid_from
        if item.valid_until is not None:
            indicator.valid_until = item.valid_until
        if item.description is not None:
            indicator.description = item.description
        if item.kill_chain_phases:
            indicator.kill_chain_phases = [
                {"kill_chain_name": k, "phase_name": p} for k, p in item.kill_chain_phases
            ]
        if item.related_threats:
            indicator.related_threats = list(item.related_threats)

    def revoke(self, cid: str, indicator_id: str) -> dict[str, Any] | None:
        """Revoke an indicator; None when the collection does not hold that id."""
        with self._lock:
            collection = self._collections[cid]
            indicator = collection.by_id.get(indicator_id)
            if indicator is None:
                return None
            if not indicator.revoked:
                indicator.revoked = True
                indicator.modified = now_iso()
                collection.active -= 1
            return indicator.to_api()

    # -- reads ---------------------------------------------------------------------------------------
    def search(
        self, cid: str, term: str, limit: int, offset: int, include_revoked: bool
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of indicators whose value contains `term` (case-insensitive), and the total."""
        needle = term.casefold()
        with self._lock:
            matches = [
                i
                for i in self._collections[cid].indicators
                if (include_revoked or not i.revoked) and needle in i.value.casefold()
            ]
            return [i.to_api() for i in matches[offset : offset + limit]], len(matches)

    def indicators(self, cid: str) -> list[dict[str, Any]]:
        """Every indicator of a collection (revoked included), flat, in creation order."""
        with self._lock:
            return [i.to_state() for i in self._collections[cid].indicators]

    def counts(self) -> dict[str, dict[str, int]]:
        """Active and revoked indicator counts per collection."""
        with self._lock:
            return {
                cid: {"active": c.active, "revoked": len(c.indicators) - c.active, "total": len(c.indicators)}
                for cid, c in self._collections.items()
            }
