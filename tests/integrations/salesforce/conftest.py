"""Fixtures for the Salesforce integration tests: the emulator over real HTTPS.

The emulator fixtures are the emulator's own (tests/salesforce_emulator/conftest.py), imported so
both test packages start and reset it the same way.
"""

from __future__ import annotations

from tests.salesforce_emulator.conftest import (  # noqa: F401  (fixtures)
    emulator_control,
    emulator_org,
    emulator_token,
    sf_emulator,
)
