"""Validate Connection against the emulator: what it calls, what it records, what it says."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from integrations.salesforce.api.errors import SalesforceValidationError, error_from_code
from integrations.salesforce.api.headers import SoapHeaders
from integrations.salesforce.models import (
    ConnectionStatus,
    SalesforceConnection,
    SalesforceSettings,
    SyncStatus,
)
from integrations.salesforce.oauth.tokens import salesforce_client
from integrations.salesforce.validation import (
    ACTION_LIMIT,
    ACTION_RECONNECT,
    ACTION_WAIT,
    connection_validate,
)
from tests.integrations.salesforce.oauth_support import (
    card_url,
    connect_through_emulator,
)
from tests.integrations.salesforce.sync_support import PERSON, enable, send

pytestmark = pytest.mark.django_db


@pytest.fixture
def connected(owner_client: Client, business: Any, org: dict[str, Any]) -> SalesforceConnection:
    return connect_through_emulator(owner_client, business)


def validate_url(source: Any) -> str:
    return f"/sources/{source.slug}/integrations/salesforce/validate/"


def test_a_working_connection_validates_with_one_api_call(
    connected: SalesforceConnection, control: Any, org: dict[str, Any]
) -> None:
    calls_before = len(control.calls(org["org_id"]))

    result = connection_validate(connection=connected)

    username = org["users"][0]["username"]
    assert result.ok
    assert result.message == f"Connected as {username}, who can create Leads."
    new_calls = control.calls(org["org_id"])[calls_before:]
    # The identity URL is on the login host and costs nothing; describe is the one API call.
    assert [(c["method"], c["path"]) for c in new_calls] == [
        ("GET", "/services/data/v59.0/sobjects/Lead/describe")
    ]
    stored = SalesforceConnection.objects.get(pk=connected.pk)
    assert stored.last_validation_ok is True
    assert stored.last_validated_at == result.checked_at
    assert stored.last_validation_message == result.message


def test_validation_checks_the_record_type_the_source_creates(
    connected: SalesforceConnection, control: Any, org: dict[str, Any], business: Any
) -> None:
    SalesforceSettings.objects.create(source=business, record_type="Contact")

    result = connection_validate(connection=connected)

    assert result.message.endswith("who can create Contacts.")
    assert control.calls(org["org_id"])[-1]["path"].endswith("/sobjects/Contact/describe")


def test_validation_refreshes_an_expired_token(
    connected: SalesforceConnection, control: Any, org: dict[str, Any]
) -> None:
    control.expire_access_tokens(org["org_id"])

    result = connection_validate(connection=connected)

    assert result.ok
    assert connected.token_refreshed_at is not None
    assert SalesforceConnection.objects.get(pk=connected.pk).access_token == (
        connected.access_token
    )


def test_a_revoked_connection_fails_validation_and_says_to_reconnect(
    connected: SalesforceConnection,
    control: Any,
    org: dict[str, Any],
    owner_client: Client,
    business: Any,
) -> None:
    control.revoke_refresh_tokens(org["org_id"])

    response = owner_client.post(validate_url(business), follow=True)

    page = response.content.decode()
    reason = (
        "Salesforce no longer accepts this connection "
        "(invalid_grant: expired access/refresh token)."
    )
    assert f"Validation failed: {reason} {ACTION_RECONNECT}" in page
    stored = SalesforceConnection.objects.get(pk=connected.pk)
    assert stored.status == ConnectionStatus.NEEDS_RECONNECT
    assert stored.last_validation_ok is False
    assert stored.last_validation_message == f"{reason} {ACTION_RECONNECT}"
    # The card keeps saying so after the message is gone.
    card = owner_client.get(card_url(business)).content.decode()
    assert "Validation failed" in card
    assert "Waiting for reconnect" in card


def test_a_connection_that_needs_reconnect_is_not_sent_to_salesforce_again(
    connected: SalesforceConnection, control: Any, org: dict[str, Any]
) -> None:
    SalesforceConnection.objects.filter(pk=connected.pk).update(
        status=ConnectionStatus.NEEDS_RECONNECT, status_reason="Revoked in Salesforce."
    )
    connected.refresh_from_db()
    calls_before = len(control.calls(org["org_id"]))

    result = connection_validate(connection=connected)

    assert not result.ok
    assert result.message == f"Revoked in Salesforce. {ACTION_RECONNECT}"
    assert len(control.calls(org["org_id"])) == calls_before


def test_an_exhausted_api_limit_is_reported_with_what_to_do(
    connected: SalesforceConnection, control: Any, org: dict[str, Any]
) -> None:
    usage = control.api_usage(org["org_id"])
    control.set_api_usage(org["org_id"], usage["max"])

    result = connection_validate(connection=connected)

    assert not result.ok
    assert result.message == (
        "Salesforce refused the call: REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded. "
        + ACTION_LIMIT
    )
    assert SalesforceConnection.objects.get(pk=connected.pk).status == ConnectionStatus.CONNECTED


def test_salesforce_being_unavailable_is_reported_as_temporary(
    connected: SalesforceConnection, control: Any, org: dict[str, Any]
) -> None:
    control.add_fault(org["org_id"], "server_unavailable", count=1)

    result = connection_validate(connection=connected)

    assert not result.ok
    assert result.message == (
        f"Salesforce did not answer: SERVER_UNAVAILABLE: Server Unavailable. {ACTION_WAIT}"
    )


def test_validate_on_a_source_without_connection_says_to_connect(
    owner_client: Client, business: Any
) -> None:
    response = owner_client.post(validate_url(business), follow=True)

    assert "Salesforce is not connected yet: click Connect first." in response.content.decode()


def test_a_successful_validation_is_shown_on_the_card(
    connected: SalesforceConnection, owner_client: Client, business: Any, org: dict[str, Any]
) -> None:
    response = owner_client.post(validate_url(business), follow=True)

    username = org["users"][0]["username"]
    assert (
        f"Validation succeeded: Connected as {username}, who can create Leads."
        in response.content.decode()
    )


def test_validate_needs_post(owner_client: Client, business: Any) -> None:
    assert owner_client.get(validate_url(business)).status_code == 405


# --------------------------------------------------------------------------- object permissions

# What the emulator answers, as real orgs do, for a create without the object's Create permission.
NO_CREATE_CODE = "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"
NO_CREATE_MESSAGE = "entity type cannot be inserted: Lead"


def deny_create(control: Any, org: dict[str, Any], *sobjects: str) -> None:
    """An admin takes the Create permission on `sobjects` away from the connected user."""
    control.set_user_permissions(org["org_id"], org["users"][0]["id"], cannot_create=list(sobjects))


def test_a_user_who_cannot_create_leads_fails_validation_and_is_told_to_ask_an_admin(
    connected: SalesforceConnection,
    control: Any,
    org: dict[str, Any],
    owner_client: Client,
    business: Any,
) -> None:
    deny_create(control, org, "Lead")

    response = owner_client.post(validate_url(business), follow=True)

    username = org["users"][0]["username"]
    expected = (
        f"The connected Salesforce user {username} cannot create Leads. "
        f"Ask a Salesforce admin to give {username} the “Create” permission on Leads "
        "(in their profile or a permission set), or reconnect as a user who has it."
    )
    assert f"Validation failed: {expected}" in response.content.decode()
    stored = SalesforceConnection.objects.get(pk=connected.pk)
    assert stored.last_validation_ok is False
    assert stored.last_validation_message == expected
    # A missing permission is not a broken connection: no reconnect is asked for.
    assert stored.status == ConnectionStatus.CONNECTED
    assert "Waiting for reconnect" not in owner_client.get(card_url(business)).content.decode()


def test_the_same_user_passes_when_the_source_creates_contacts(
    connected: SalesforceConnection, control: Any, org: dict[str, Any], business: Any
) -> None:
    deny_create(control, org, "Lead")
    SalesforceSettings.objects.create(source=business, record_type="Contact")

    result = connection_validate(connection=connected)

    username = org["users"][0]["username"]
    assert result.ok
    assert result.message == f"Connected as {username}, who can create Contacts."
    assert SalesforceConnection.objects.get(pk=connected.pk).last_validation_ok is True


def test_a_contact_source_fails_when_contacts_are_the_object_denied(
    connected: SalesforceConnection, control: Any, org: dict[str, Any], business: Any
) -> None:
    deny_create(control, org, "Contact")
    SalesforceSettings.objects.create(source=business, record_type="Contact")

    result = connection_validate(connection=connected)

    assert not result.ok
    assert result.reason.endswith("cannot create Contacts.")
    assert "“Create” permission on Contacts" in result.action


def test_a_create_without_the_permission_is_a_validation_error_not_an_auth_error(
    connected: SalesforceConnection, control: Any, org: dict[str, Any]
) -> None:
    """The sync must fail the inquiry with Salesforce's code, not ask for a reconnect."""
    deny_create(control, org, "Lead")

    with pytest.raises(SalesforceValidationError) as refused:
        salesforce_client(connected).create(
            "Lead", {"LastName": "Lee", "Company": "Lee Bakery"}, headers=SoapHeaders()
        )

    assert (refused.value.error_code, refused.value.message) == (NO_CREATE_CODE, NO_CREATE_MESSAGE)
    assert type(error_from_code(NO_CREATE_CODE, NO_CREATE_MESSAGE, status=400)) is (
        SalesforceValidationError
    )
    assert control.records(org["org_id"], "Lead") == []


def test_the_sync_of_an_inquiry_fails_with_salesforces_code_and_keeps_the_connection(
    connected: SalesforceConnection, control: Any, org: dict[str, Any], business: Any
) -> None:
    deny_create(control, org, "Lead")
    enable(business)

    sync = send(business, **PERSON)

    assert sync.status == SyncStatus.FAILED
    assert (sync.error_code, sync.error_message) == (NO_CREATE_CODE, NO_CREATE_MESSAGE)
    attempt = sync.attempts.get()
    assert (attempt.outcome, attempt.error_code) == (SyncStatus.FAILED, NO_CREATE_CODE)
    assert sync.due_at is None  # not retried: the same data would fail the same way
    assert control.records(org["org_id"], "Lead") == []
    assert SalesforceConnection.objects.get(pk=connected.pk).status == ConnectionStatus.CONNECTED
