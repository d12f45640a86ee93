"""Coalescing of repeated work per key: many triggers while one run is going become one more run.

A runtime's Deployment, ReplicaSet and Pod change several times per rollout, and each change used
to cost a full refresh of the owner's status in its own handler thread, while kopf held the event
that caused it. Most of those refreshes would read the same state again. Here the first trigger for
an owner runs the work; the triggers that arrive meanwhile only flag it, and one more run follows
that sees everything they announced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


class Coalescer:
    """Runs blocking work per key in a thread, at most one run per key at a time, none lost.

    Single event loop only: the bookkeeping is not locked because only the loop's thread touches it.
    """

    def __init__(self) -> None:
        # key -> whether another trigger arrived while the current run was going
        self._again: dict[Hashable, bool] = {}

    def busy(self, key: Hashable) -> bool:
        """Whether a run for `key` is in progress."""
        return key in self._again

    async def trigger(self, key: Hashable, work: Callable[[], T]) -> list[T]:
        """Run `work` for `key` unless a run is in progress, in which case ask that run to repeat.

        Returns the results of the runs made by this call (empty when it only flagged a running one).
        An exception from `work` ends this call's runs and propagates; the next trigger starts afresh.
        """
        if key in self._again:
            self._again[key] = True
            return []
        self._again[key] = False
        results: list[T] = []
        try:
            while True:
                results.append(await asyncio.to_thread(work))
                if not self._again[key]:
                    return results
                self._again[key] = False
        finally:
            del self._again[key]
