"""Disconnect: confirmation, revocation at Salesforce, and what the sources then show."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from integrations.salesforce.models import SalesforceConnection, SalesforceSettings
from integrations.salesforce.oauth.flow import REVOKE_IN_SALESFORCE_HELP
from tests.integrations.salesforce.oauth_support import (
    card_url,
    connect_through_emulator,
)

pytestmark = pytest.mark.django_db


def disconnect_url(source: Any) -> str:
    return f"/sources/{source.slug}/integrations/salesforce/disconnect/"


@pytest.fixture
def connected(owner_client: Client, business: Any, org: dict[str, Any]) -> SalesforceConnection:
    return connect_through_emulator(owner_client, business)


@pytest.fixture
def inheriting_location(location: Any) -> Any:
    SalesforceSettings.objects.create(source=location, inherit_from_parent=True)
    return location


def test_disconnect_asks_for_confirmation_first(
    connected: SalesforceConnection,
    owner_client: Client,
    business: Any,
    inheriting_location: Any,
) -> None:
    response = owner_client.get(disconnect_url(business))

    page = response.content.decode().replace("&#x27;", "'")
    assert response.status_code == 200
    assert "Disconnect Salesforce from Joe's Plumbing?" in page
    assert "deletes the connection's tokens here" in page
    assert "will show as not connected: Joe's Plumbing East." in page
    assert REVOKE_IN_SALESFORCE_HELP in page
    assert SalesforceConnection.objects.filter(pk=connected.pk).exists()


def test_disconnect_revokes_the_grant_at_salesforce_and_deletes_the_tokens(
    connected: SalesforceConnection,
    owner_client: Client,
    business: Any,
    inheriting_location: Any,
    emulator: Any,
) -> None:
    access, refresh = connected.access_token, connected.refresh_token

    response = owner_client.post(disconnect_url(business), follow=True)

    assert response.redirect_chain == [(card_url(business), 302)]
    assert (
        "Salesforce is disconnected from Joe&#x27;s Plumbing, and its access was revoked in "
        "Salesforce." in response.content.decode()
    )
    assert emulator.state.refresh_tokens[refresh].revoked
    assert emulator.state.access_tokens[access].revoked  # revoked with its refresh token
    assert not SalesforceConnection.objects.exists()
    # The location that inherited the connection has none now.
    location_card = owner_client.get(card_url(inheriting_location)).content.decode()
    assert "Not connected" in location_card


def test_a_failed_revocation_is_reported_and_the_connection_still_removed(
    connected: SalesforceConnection, owner_client: Client, business: Any, settings: Any
) -> None:
    # The login host does not answer (a closed port on this machine).
    settings.SALESFORCE_EXTRA_LOGIN_HOSTS = ["127.0.0.1:9"]
    SalesforceConnection.objects.filter(pk=connected.pk).update(login_url="http://127.0.0.1:9")

    response = owner_client.post(disconnect_url(business), follow=True)

    page = response.content.decode().replace("&#x27;", "'")
    assert (
        "Salesforce is disconnected from Joe's Plumbing, but revoking its access in Salesforce "
        "failed: Could not reach 127.0.0.1:9 (ConnectionError). The tokens are deleted here. "
        in page
    )
    assert REVOKE_IN_SALESFORCE_HELP in page
    assert not SalesforceConnection.objects.exists()


def test_a_grant_salesforce_already_dropped_counts_as_revoked(
    connected: SalesforceConnection,
    owner_client: Client,
    business: Any,
    control: Any,
    org: dict[str, Any],
) -> None:
    control.revoke_refresh_tokens(org["org_id"])  # revoked in Salesforce's own settings

    response = owner_client.post(disconnect_url(business), follow=True)

    assert "its access was revoked in Salesforce." in response.content.decode()
    assert not SalesforceConnection.objects.exists()


def test_a_source_that_inherits_has_nothing_of_its_own_to_disconnect(
    connected: SalesforceConnection, owner_client: Client, inheriting_location: Any
) -> None:
    response = owner_client.post(disconnect_url(inheriting_location), follow=True)

    assert response.redirect_chain == [(card_url(inheriting_location), 302)]
    assert "inherits its Salesforce connection from Joe&#x27;s Plumbing" in (
        response.content.decode()
    )
    assert SalesforceConnection.objects.filter(pk=connected.pk).exists()


def test_disconnect_without_a_connection_says_so(owner_client: Client, business: Any) -> None:
    response = owner_client.get(disconnect_url(business), follow=True)

    assert "Salesforce is not connected to Joe&#x27;s Plumbing." in response.content.decode()
