"""What the soak needs from whatever runs its runtime Pod: the real node's kubelet
(:mod:`testbed.soak.nodepods`) or, where this machine cannot run one, the local stand-in
(:mod:`testbed.soak.supervisor`). Both keep one record per runtime process and answer the same calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

# Counters scraped from each runtime process while it lives; the report adds them up over every
# process of the run (a SIGKILL loses at most the last scrape interval).
SCRAPED = ("sis_sekoia_retries_total", "sis_values_rejected_total", "sis_values_pushed_total")
SCRAPE_INTERVAL = 2.0
ROLLOUT = "rollout (its Pod was deleted)"


@dataclass
class RuntimeRecord:
    """One runtime process: the Pod it ran for, what identifies it (a pid, a container id), why it
    ended, and its last counter values."""

    pod: str
    ident: str
    started: float  # monotonic, when first seen running
    ended: float | None = None
    exit_code: int | None = None
    end_reason: str = ""
    counters: dict[str, float] = field(default_factory=dict)


def reasons_counted(records: list[RuntimeRecord]) -> dict[str, int]:
    """Why processes ended, counted."""
    result: dict[str, int] = {}
    for record in records:
        if record.end_reason:
            result[record.end_reason] = result.get(record.end_reason, 0) + 1
    return result


def counters_summed(records: list[RuntimeRecord]) -> dict[str, float]:
    """Each scraped counter summed over the records."""
    return {name: sum(r.counters.get(name, 0.0) for r in records) for name in SCRAPED}


class Runtimes(Protocol):
    """The runtime processes of one soak, whoever runs them."""

    #: One line for the report: what ran the runtime Pods, and why when it was the stand-in.
    where: str

    def start(self) -> Runtimes: ...

    def stop(self) -> None: ...

    def kill_runtime(self) -> str | None:
        """SIGKILL the running process (a crash); it must come back. Returns what was killed."""
        ...

    def wait_ready(self, timeout: float, started_after: float = 0.0) -> float:
        """Seconds until a process started after ``started_after`` (monotonic) is ready."""
        ...

    def totals(self) -> dict[str, float]: ...

    def starts(self) -> int: ...

    def restarts_by_reason(self) -> dict[str, int]: ...

    def log_path(self) -> Path:
        """One file with every runtime process's log lines, current when returned."""
        ...

    def peak_memory(self) -> dict[str, float]:
        """Highest resident memory seen and the limit it ran under, in bytes (empty if unknown)."""
        ...
