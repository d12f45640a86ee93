"""OpenCTI platform emulator: just enough GraphQL and live stream for the real pycti client.

See `emulator.OpenCTIEmulator` for the in-process API and `__main__` for the process mode.
"""

from .emulator import OpenCTIEmulator
from .ids import format_event_id, parse_event_id
from .stix import OPENCTI_EXTENSION
from .streaming import StreamConfig

__all__ = ["OPENCTI_EXTENSION", "OpenCTIEmulator", "StreamConfig", "format_event_id", "parse_event_id"]
