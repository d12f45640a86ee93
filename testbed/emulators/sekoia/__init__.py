"""Sekoia.io IOC collections API emulator for tests and demos (see server.SekoiaEmulator)."""

from .auth import MANAGE, VIEW
from .options import EmulatorOptions, FaultSettings
from .remote import RemoteEmulator
from .server import SekoiaEmulator

__all__ = ["MANAGE", "VIEW", "EmulatorOptions", "FaultSettings", "RemoteEmulator", "SekoiaEmulator"]
