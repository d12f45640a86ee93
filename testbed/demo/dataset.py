"""The demo's data set and what a correct sync of it leaves in the Sekoia collection.

The expectation is computed with the runtime's own converter, so "every pushable value" means
exactly what the runtime is able to push (YARA indicators and unsupported comparisons excluded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from connector_runtime.conversion import convert_indicator

DATA_FILE = Path(__file__).resolve().parents[1] / "data" / "sekoia-apt31-indicators.jsonl"
# OpenCTI's TLP:RED marking definition (its fixed STIX id, the STIX 2.1 TLP 1.0 one).
TLP_RED = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"


@dataclass(frozen=True)
class DataSet:
    """Indicators of the file, and the Sekoia values (value -> Sekoia type) each one converts to."""

    path: Path
    indicators: list[dict[str, Any]]
    values: dict[str, dict[str, str]]  # indicator id -> {value: type}
    # Indicators marked TLP:RED: the sharing guardrail keeps them out of the collection.
    refused: frozenset[str] = field(default_factory=frozenset)

    @property
    def expected(self) -> dict[str, str]:
        """Every value the collection must hold, with its Sekoia type."""
        return {
            value: kind
            for indicator_id, per in self.values.items()
            if indicator_id not in self.refused
            for value, kind in per.items()
        }

    @property
    def refused_values(self) -> dict[str, str]:
        """The values of the TLP:RED indicators (none of which any other indicator carries)."""
        return {value: kind for i in sorted(self.refused) for value, kind in self.values[i].items()}

    @property
    def pushable_indicators(self) -> int:
        """Indicators that give at least one value."""
        return sum(1 for per in self.values.values() if per)

    def mark_red(self, count: int, path: Path) -> DataSet:
        """A copy whose last ``count`` pushable indicators with values of their own carry OpenCTI's
        TLP:RED marking instead of their own, written as JSON lines to ``path``."""
        owners: dict[str, int] = {}
        for per in self.values.values():
            for value in per:
                owners[value] = owners.get(value, 0) + 1
        chosen = [
            ind["id"]
            for ind in reversed(self.indicators)
            if self.values[ind["id"]] and all(owners[v] == 1 for v in self.values[ind["id"]])
        ][:count]
        indicators = [
            {**ind, "object_marking_refs": [TLP_RED]} if ind["id"] in chosen else ind
            for ind in self.indicators
        ]
        path.write_text("".join(json.dumps(ind) + "\n" for ind in indicators))
        return replace(self, path=path, indicators=indicators, refused=frozenset(chosen))

    def pick_for_deletion(self) -> list[dict[str, Any]]:
        """The first indicator of each Sekoia type, so the revocation covers every kind of value."""
        picked: dict[str, dict[str, Any]] = {}
        for indicator in self.indicators:
            per = self.values[indicator["id"]]
            if per and indicator["id"] not in self.refused:
                picked.setdefault(next(iter(per.values())), indicator)
        return list(picked.values())


def load_dataset(path: Path = DATA_FILE) -> DataSet:
    """Read the JSON-lines file and convert every indicator."""
    indicators = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    values = {ind["id"]: {v.value: v.type for v in convert_indicator(ind).values} for ind in indicators}
    return DataSet(path, indicators, values)
