"""A Salesforce emulator for tests, benchmarks and demos (no Django import anywhere).

Start it in-process with ``EmulatorServer`` or as ``python -m salesforce_emulator``; drive it over
real HTTP with simple-salesforce, Authlib and SOAP envelopes; set it up and inspect it from other
processes with ``EmulatorControl``.
"""

from .client import EmulatorControl, EmulatorControlError
from .core import (
    DropConnection,
    DuplicatesDetected,
    EmulatorState,
    Org,
    SalesforceError,
    WriteOptions,
)
from .server import EmulatorServer

__all__ = [
    "DropConnection",
    "DuplicatesDetected",
    "EmulatorControl",
    "EmulatorControlError",
    "EmulatorServer",
    "EmulatorState",
    "Org",
    "SalesforceError",
    "WriteOptions",
]
