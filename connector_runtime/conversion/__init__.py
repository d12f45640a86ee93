"""STIX pattern → Sekoia.io IOC values.

Public API: `convert_indicator`, `convert_pattern`, the result types `Conversion`, `SekoiaValue`,
`Skipped`, and the reason constants in `reasons`. Pure functions, no I/O, nothing cached.
"""

from . import reasons
from .converter import convert_indicator, convert_pattern
from .model import Conversion, SekoiaValue, Skipped

__all__ = ["Conversion", "SekoiaValue", "Skipped", "convert_indicator", "convert_pattern", "reasons"]
