"""Runtime refreshes coalesce per owner: triggers during a run cost one more run, never zero."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sekoia_intel_operator.coalesce import Coalescer


def test_triggers_during_a_run_become_exactly_one_more_run() -> None:
    release = threading.Event()
    runs: list[int] = []

    def work() -> int:
        runs.append(len(runs))
        if len(runs) == 1:
            release.wait(5)  # the first run is slow: the other triggers arrive while it goes
        return len(runs)

    async def scenario() -> list[list[int]]:
        coalescer = Coalescer()
        first = asyncio.ensure_future(coalescer.trigger("a", work))
        while not runs:
            await asyncio.sleep(0.01)
        assert coalescer.busy("a")
        flagged = [await coalescer.trigger("a", work) for _ in range(5)]
        release.set()
        results = await first
        assert not coalescer.busy("a")
        return [results, *flagged]

    results, *flagged = asyncio.run(scenario())
    assert flagged == [[]] * 5  # they only flagged the running one
    assert results == [1, 2]  # ... which ran once more, after all of them
    assert len(runs) == 2


def test_keys_are_independent() -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        coalescer = Coalescer()
        return tuple(
            await asyncio.gather(coalescer.trigger("a", lambda: "a"), coalescer.trigger("b", lambda: "b"))
        )

    assert asyncio.run(scenario()) == (["a"], ["b"])


def test_a_failed_run_frees_the_key() -> None:
    def fail() -> None:
        raise RuntimeError("API down")

    async def scenario() -> list[str]:
        coalescer = Coalescer()
        with pytest.raises(RuntimeError):
            await coalescer.trigger("a", fail)
        assert not coalescer.busy("a")
        return await coalescer.trigger("a", lambda: "ok")

    assert asyncio.run(scenario()) == ["ok"]
