"""Marking ids -> marking definitions: built-ins, the stream's own objects, then the platform.

Events carry only ids (``object_marking_refs``). The names come, cheapest first, from OpenCTI's
fixed built-in ids, from ``marking-definition`` objects the stream sent earlier (dependencies,
with ``no-dependencies: false``), and finally from the OpenCTI API through pycti. Answers are
cached (a marking's name does not change under its id); a failed lookup is not, so the next
indicator asks again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from connector_runtime import redaction
from connector_runtime.guardrail.catalog import Marking, from_graphql, from_stix, known

log = logging.getLogger(__name__)

Lookup = Callable[[str], Any]


def marking_refs(indicator: dict[str, Any]) -> list[str]:
    """The marking ids an indicator carries (object-level markings; granular markings on single
    properties do not change whether the indicator may be shared)."""
    refs = indicator.get("object_marking_refs")
    if not isinstance(refs, list):
        return []
    return list(dict.fromkeys(ref for ref in refs if isinstance(ref, str) and ref.strip()))


class MarkingResolver:
    """Thread-safe, bounded cache of marking definitions with a platform lookup behind it."""

    def __init__(
        self,
        lookup: Lookup | None = None,
        capacity: int = 10_000,
        attempts: int = 3,
        backoff_seconds: float = 1.0,
    ) -> None:
        """``lookup(stix_id)`` returns pycti's ``marking_definition.read`` answer (None when the
        platform does not know the id) and may raise when the platform cannot be reached."""
        self._lookup = lookup
        self._capacity = capacity
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._cache: OrderedDict[str, Marking] = OrderedDict()
        self._lock = threading.Lock()

    def learn(self, obj: dict[str, Any]) -> None:
        """Remember a ``marking-definition`` object seen in the stream."""
        marking = from_stix(obj)
        if marking is not None and marking.name:
            self._remember(marking)

    def resolve(self, stix_ids: list[str]) -> list[Marking]:
        """The markings for these ids; an id nobody can name comes back with ``resolved=False``."""
        return [self._one(stix_id) for stix_id in stix_ids]

    def _remember(self, marking: Marking) -> None:
        with self._lock:
            self._cache[marking.stix_id] = marking
            self._cache.move_to_end(marking.stix_id)
            while len(self._cache) > self._capacity:
                self._cache.popitem(last=False)

    def _one(self, stix_id: str) -> Marking:
        built_in = known(stix_id)
        if built_in is not None:
            return built_in
        with self._lock:
            cached = self._cache.get(stix_id)
        if cached is not None:
            return cached
        found = self._ask(stix_id)
        if found is None:
            return Marking(stix_id, stix_id, resolved=False)
        self._remember(found)
        return found

    def _ask(self, stix_id: str) -> Marking | None:
        if self._lookup is None:
            return None
        for attempt in range(self._attempts):
            try:
                answer = self._lookup(stix_id)
            except Exception as exc:  # pycti raises bare Exceptions for GraphQL and HTTP errors
                log.warning(
                    "could not read a marking definition from OpenCTI",
                    extra={"marking": stix_id, "reason": redaction.one_line(str(exc))[:300]},
                )
                if attempt + 1 < self._attempts:
                    time.sleep(self._backoff * (2**attempt))
                continue
            marking = from_graphql(stix_id, answer)
            if marking is None:
                log.warning("OpenCTI does not know a marking definition", extra={"marking": stix_id})
                # Remembered as unresolved: asking again for every indicator would not change it.
                unresolved = Marking(stix_id, stix_id, resolved=False)
                self._remember(unresolved)
                return unresolved
            return marking
        return None
