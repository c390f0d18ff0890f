"""Fixtures and helpers of the OAuth tests: a running emulator, settings that point at it, an org
whose connected app is ours, and the three legs of a sign-in (our Connect view, the emulator's
authorize/consent page, our callback) driven over real HTTP.

The emulator fixtures (`emulator`, `control`, `org`, `sf_settings`) are the one set in
tests/emulator_support.py, registered for every test by tests/conftest.py.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import requests
from django.http import HttpResponse
from django.test import Client

from autorespond.models import Source
from integrations.salesforce.models import SalesforceConnection
from salesforce_emulator import EmulatorServer
from tests.integrations.salesforce.card_support import card_url


def connect_url(source: Source) -> str:
    return f"/sources/{source.slug}/integrations/salesforce/connect/"


def start_connect(client: Client, source: Source, **data: str) -> str:
    """POST Connect on the card; returns the login host's authorize URL we were sent to."""
    response = client.post(connect_url(source), {"environment": "production", **data})
    assert response.status_code == 302, response.content.decode()[:2000]
    return response["Location"]


def approve(authorize_url: str, *, deny: bool = False, username: str | None = None) -> str:
    """The user at Salesforce: auto-approved, or Allow/Deny on the consent page. Returns the
    callback URL the login host redirects the browser to."""
    response = requests.get(authorize_url, allow_redirects=False, timeout=10)
    if response.status_code == 200:  # the consent page
        consent_id = re.search(r"name='consent_id' value='([^']+)'", response.text)
        assert consent_id, response.text
        chosen = username or re.search(r"<option value='([^']+)'", response.text).group(1)  # type: ignore[union-attr]
        parts = urlsplit(authorize_url)
        response = requests.post(
            f"{parts.scheme}://{parts.netloc}/services/oauth2/authorize",
            data={
                "consent_id": consent_id.group(1),
                "username": chosen,
                "action": "deny" if deny else "allow",
            },
            allow_redirects=False,
            timeout=10,
        )
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def finish(client: Client, callback_url: str) -> HttpResponse:
    """Follow the login host's redirect back to our callback with the test client."""
    parts = urlsplit(callback_url)
    return client.get(f"{parts.path}?{parts.query}")


def callback_params(callback_url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(callback_url).query).items()}


def connect_through_emulator(client: Client, source: Source, **data: str) -> SalesforceConnection:
    """The whole sign-in; returns the stored connection."""
    response = finish(client, approve(start_connect(client, source, **data)))
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == card_url(source)
    return SalesforceConnection.objects.get(source=source)


def issued_tokens(emulator: EmulatorServer) -> list[str]:
    """Every access and refresh token the emulator has issued in this test."""
    with emulator.state.lock:
        return [*emulator.state.access_tokens, *emulator.state.refresh_tokens]


def access_tokens_of(emulator: EmulatorServer, org_id: str) -> list[str]:
    with emulator.state.lock:
        return [
            token
            for token, access in emulator.state.access_tokens.items()
            if access.org_id == org_id
        ]
