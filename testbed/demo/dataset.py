"""The demo's data set and what a correct sync of it leaves in the Sekoia collection.

The expectation is computed with the runtime's own converter, so "every pushable value" means
exactly what the runtime is able to push (YARA indicators and unsupported comparisons excluded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector_runtime.conversion import convert_indicator

DATA_FILE = Path(__file__).resolve().parents[1] / "data" / "sekoia-apt31-indicators.jsonl"


@dataclass(frozen=True)
class DataSet:
    """Indicators of the file, and the Sekoia values (value -> Sekoia type) each one converts to."""

    path: Path
    indicators: list[dict[str, Any]]
    values: dict[str, dict[str, str]]  # indicator id -> {value: type}

    @property
    def expected(self) -> dict[str, str]:
        """Every value the collection must hold, with its Sekoia type."""
        return {value: kind for per in self.values.values() for value, kind in per.items()}

    @property
    def pushable_indicators(self) -> int:
        """Indicators that give at least one value."""
        return sum(1 for per in self.values.values() if per)

    def pick_for_deletion(self) -> list[dict[str, Any]]:
        """The first indicator of each Sekoia type, so the revocation covers every kind of value."""
        picked: dict[str, dict[str, Any]] = {}
        for indicator in self.indicators:
            per = self.values[indicator["id"]]
            if per:
                picked.setdefault(next(iter(per.values())), indicator)
        return list(picked.values())


def load_dataset(path: Path = DATA_FILE) -> DataSet:
    """Read the JSON-lines file and convert every indicator."""
    indicators = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    values = {ind["id"]: {v.value: v.type for v in convert_indicator(ind).values} for ind in indicators}
    return DataSet(path, indicators, values)
