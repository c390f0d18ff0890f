"""The one set of Salesforce-emulator fixtures for the service's tests (integration, browser,
worker and benchmark-style tests alike): a session-wide emulator over real HTTP(S), emptied for
each test, the service's settings pointing at it, its control API, and an org whose connected
app is ours. `tests/conftest.py` registers these fixtures for every test package.

The emulator's own tests (tests/salesforce_emulator/) test it as a standalone product, without
the service's settings; they share the same session server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings

from salesforce_emulator import EmulatorControl, EmulatorServer

# The callback URL of Django's test client; `make run` and the browser tests add their own.
TESTSERVER_CALLBACK = "http://testserver/integrations/salesforce/callback/"


@pytest.fixture(scope="session")
def sf_emulator_server() -> Iterator[EmulatorServer]:
    """The running emulator for the whole test session (three hosts, its own CA)."""
    with EmulatorServer() as server:
        yield server


def point_settings_at(settings: Any, server: EmulatorServer) -> None:
    """Point the service at `server`, as `make run` does: its login hosts, its CA."""
    settings.SALESFORCE_LOGIN_URL = server.login_url
    settings.SALESFORCE_SANDBOX_LOGIN_URL = server.sandbox_login_url
    settings.SALESFORCE_CA_BUNDLE = str(server.ca_path)
    settings.SALESFORCE_EXTRA_LOGIN_HOSTS = [
        urlsplit(server.login_url).netloc,
        urlsplit(server.sandbox_login_url).netloc,
    ]


@pytest.fixture
def emulator(sf_emulator_server: EmulatorServer, settings: Any) -> EmulatorServer:
    """The session's emulator, emptied for this test, with the service's settings on it."""
    sf_emulator_server.state.reset()
    point_settings_at(settings, sf_emulator_server)
    return sf_emulator_server


@pytest.fixture
def sf_settings(emulator: EmulatorServer, settings: Any) -> Any:
    """Django's settings once they point at the emulator (for tests that change more)."""
    return settings


@pytest.fixture
def control(emulator: EmulatorServer) -> EmulatorControl:
    """The emulator's control API (orgs, records, rules, faults, call log)."""
    return EmulatorControl(emulator.login_url)


def create_org(
    control: EmulatorControl,
    *,
    kind: str = "production",
    callback_urls: list[str] | None = None,
    **org_settings: Any,
) -> dict[str, Any]:
    """An emulator org whose connected app is the one our settings name."""
    return control.create_org(
        "Acme Plumbing" if kind == "production" else "Acme Plumbing UAT",
        kind=kind,
        client_id=django_settings.SALESFORCE_CLIENT_ID,
        client_secret=django_settings.SALESFORCE_CLIENT_SECRET,
        callback_urls=callback_urls or [TESTSERVER_CALLBACK],
        **org_settings,
    )


@pytest.fixture
def org(control: EmulatorControl) -> dict[str, Any]:
    """A production org whose connected app is ours; logins are approved without consent."""
    return create_org(control, auto_approve=True)
