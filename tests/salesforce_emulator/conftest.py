"""Fixtures for tests that talk to the Salesforce emulator over real HTTP.

One emulator per test session (``sf_emulator_server``), reset before every test that asks for
``sf_emulator``. Nothing here imports Django, so these fixtures can move to tests/conftest.py
unchanged.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from simple_salesforce import Salesforce

from salesforce_emulator import EmulatorControl, EmulatorServer

API_VERSION = "59.0"


@pytest.fixture
def sf_emulator(sf_emulator_server: EmulatorServer) -> EmulatorServer:
    """The running emulator, emptied for this test."""
    sf_emulator_server.state.reset()
    return sf_emulator_server


@pytest.fixture
def emulator_control(sf_emulator: EmulatorServer) -> EmulatorControl:
    return EmulatorControl(sf_emulator.login_url)


@pytest.fixture
def emulator_org(emulator_control: EmulatorControl) -> dict[str, Any]:
    """A production org whose logins are approved without the consent page."""
    return emulator_control.create_org("Acme Plumbing", auto_approve=True)


def trusting_session(server: EmulatorServer) -> requests.Session:
    """A requests session that trusts the emulator CA.

    trust_env is off because requests lets REQUESTS_CA_BUNDLE from the environment override
    session.verify.
    """
    session = requests.Session()
    session.verify = str(server.ca_path)
    session.trust_env = False
    return session


def oauth_session(server: EmulatorServer, org: dict[str, Any], **kwargs: Any) -> OAuth2Session:
    return OAuth2Session(
        org["client_id"],
        org["client_secret"],
        scope=kwargs.pop("scope", "api refresh_token"),
        redirect_uri=kwargs.pop("redirect_uri", org["callback_urls"][0]),
        code_challenge_method="S256",
        token_endpoint_auth_method=kwargs.pop("auth_method", "client_secret_post"),
        **kwargs,
    )


def authorize(
    server: EmulatorServer,
    org: dict[str, Any],
    *,
    login_url: str | None = None,
    **kwargs: Any,
) -> tuple[OAuth2Session, str, str]:
    """Run the authorize step (auto-approved); returns (client, callback URL, verifier).
    `login_hint` (a username) logs in as that user rather than the org's admin."""
    login_hint = kwargs.pop("login_hint", "")
    hint = {"login_hint": login_hint} if login_hint else {}
    client = oauth_session(server, org, **kwargs)
    verifier = secrets.token_urlsafe(48)
    url, _state = client.create_authorization_url(
        f"{login_url or server.login_url}/services/oauth2/authorize",
        code_verifier=verifier,
        **hint,
    )
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return client, response.headers["Location"], verifier


def connect(
    server: EmulatorServer,
    org: dict[str, Any],
    *,
    login_url: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """The whole web server flow with Authlib; returns the token response."""
    client, callback, verifier = authorize(server, org, login_url=login_url, **kwargs)
    return dict(
        client.fetch_token(
            f"{login_url or server.login_url}/services/oauth2/token",
            authorization_response=callback,
            code_verifier=verifier,
        )
    )


def salesforce(server: EmulatorServer, token: dict[str, Any]) -> Salesforce:
    return Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        version=API_VERSION,
        session=trusting_session(server),
    )


@pytest.fixture
def emulator_token(sf_emulator: EmulatorServer, emulator_org: dict[str, Any]) -> dict[str, Any]:
    return connect(sf_emulator, emulator_org)


@pytest.fixture
def sf(sf_emulator: EmulatorServer, emulator_token: dict[str, Any]) -> Salesforce:
    """simple-salesforce connected to the emulator org as its admin user."""
    return salesforce(sf_emulator, emulator_token)
