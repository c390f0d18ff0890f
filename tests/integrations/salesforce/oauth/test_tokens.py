"""Token refresh (expiry, rotation, invalid_grant, many workers at once) and key rotation."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection as db
from django.db import connections
from django.test import Client

from integrations.salesforce.api.errors import SalesforceReconnectRequired
from integrations.salesforce.models import ConnectionStatus, SalesforceConnection
from integrations.salesforce.oauth.tokens import refresh_access_token, salesforce_client
from tests.integrations.salesforce.oauth_support import (
    access_tokens_of,
    connect_through_emulator,
)


@pytest.fixture
def connected(db: None, owner_client: Client, business: Any, org: dict[str, Any]) -> Any:
    return connect_through_emulator(owner_client, business)


@pytest.mark.django_db
def test_an_expired_access_token_is_refreshed_and_the_call_retried_once(
    connected: SalesforceConnection, control: Any, org: dict[str, Any], emulator: Any
) -> None:
    old_access, old_refresh = connected.access_token, connected.refresh_token
    control.expire_access_tokens(org["org_id"])

    client = salesforce_client(connected)
    limits = client.limits()

    assert limits["DailyApiRequests"]["Max"] > 0
    assert client.api_calls == 2  # the refused call and its retry
    stored = SalesforceConnection.objects.get(pk=connected.pk)
    assert stored.access_token != old_access
    assert stored.access_token in access_tokens_of(emulator, org["org_id"])
    assert stored.refresh_token == old_refresh  # no rotation: Salesforce sends no new one
    assert stored.token_refreshed_at is not None
    assert stored.status == ConnectionStatus.CONNECTED
    refused = [c for c in control.calls(org["org_id"]) if c["status"] == 401]
    assert [c["error"] for c in refused] == ["INVALID_SESSION_ID"]


@pytest.mark.django_db
def test_a_rotated_refresh_token_is_kept(
    connected: SalesforceConnection, control: Any, org: dict[str, Any], emulator: Any
) -> None:
    control.set_org_settings(org["org_id"], refresh_token_rotation=True)
    old_refresh = connected.refresh_token

    refreshed = refresh_access_token(
        connection=connected, stale_access_token=connected.access_token
    )

    assert refreshed.refresh_token != old_refresh
    assert (
        SalesforceConnection.objects.get(pk=connected.pk).refresh_token == refreshed.refresh_token
    )
    assert emulator.state.refresh_tokens[old_refresh].revoked  # the old one no longer works
    assert not emulator.state.refresh_tokens[refreshed.refresh_token].revoked
    # And the next refresh works with the new one.
    again = refresh_access_token(connection=refreshed, stale_access_token=refreshed.access_token)
    assert again.access_token != refreshed.access_token


@pytest.mark.django_db
def test_a_token_another_worker_refreshed_is_used_without_calling_salesforce(
    connected: SalesforceConnection, org: dict[str, Any], emulator: Any
) -> None:
    issued_before = access_tokens_of(emulator, org["org_id"])

    result = refresh_access_token(connection=connected, stale_access_token="an older token")

    assert result.access_token == connected.access_token
    assert access_tokens_of(emulator, org["org_id"]) == issued_before


@pytest.mark.django_db
def test_invalid_grant_marks_the_connection_needs_reconnect(
    connected: SalesforceConnection, control: Any, org: dict[str, Any]
) -> None:
    control.revoke_refresh_tokens(org["org_id"])  # e.g. an admin revoked the app in Salesforce

    with pytest.raises(SalesforceReconnectRequired) as refused:
        refresh_access_token(connection=connected, stale_access_token=connected.access_token)

    reason = (
        "Salesforce no longer accepts this connection "
        "(invalid_grant: expired access/refresh token)."
    )
    assert refused.value.error_code == "invalid_grant"
    assert refused.value.message == reason
    stored = SalesforceConnection.objects.get(pk=connected.pk)
    assert stored.status == ConnectionStatus.NEEDS_RECONNECT
    assert stored.status_reason == reason
    # Later callers are refused at once, without another round trip.
    with pytest.raises(SalesforceReconnectRequired, match="NEEDS_RECONNECT"):
        refresh_access_token(connection=stored, stale_access_token=stored.access_token)


@pytest.mark.django_db
def test_a_revoked_grant_makes_api_calls_fail_with_reconnect_required(
    connected: SalesforceConnection, control: Any, org: dict[str, Any]
) -> None:
    control.revoke_refresh_tokens(org["org_id"])  # revokes its access tokens too

    with pytest.raises(SalesforceReconnectRequired):
        salesforce_client(connected).describe("Lead")

    assert SalesforceConnection.objects.get(pk=connected.pk).status == "needs_reconnect"


def test_concurrent_refreshes_call_salesforce_once(
    postgres: None,
    transactional_db: None,
    owner_client: Client,
    business: Any,
    org: dict[str, Any],
    control: Any,
    emulator: Any,
) -> None:
    connected = connect_through_emulator(owner_client, business)
    # With rotation, a second refresh with the same refresh token would fail (invalid_grant).
    control.set_org_settings(org["org_id"], refresh_token_rotation=True)
    control.expire_access_tokens(org["org_id"])
    stale = connected.access_token
    issued_before = set(access_tokens_of(emulator, org["org_id"]))
    workers = 8
    start = threading.Barrier(workers)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            own_copy = SalesforceConnection.objects.get(pk=connected.pk)
            start.wait(10)
            # Each worker hits INVALID_SESSION_ID at the same moment and refreshes through the
            # client, as a sync task would.
            salesforce_client(own_copy).limits()
            results.append(SalesforceConnection.objects.get(pk=connected.pk).access_token)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    new_tokens = set(access_tokens_of(emulator, org["org_id"])) - issued_before
    assert len(new_tokens) == 1, "exactly one refresh reached Salesforce"
    stored = SalesforceConnection.objects.get(pk=connected.pk)
    assert new_tokens == {stored.access_token} != {stale}
    assert set(results) == {stored.access_token}
    assert stored.status == ConnectionStatus.CONNECTED
    refresh = [t for t, r in emulator.state.refresh_tokens.items() if not r.revoked]
    assert refresh == [stored.refresh_token]
    # Salesforce's side of the story: its log shows one refresh among eight refused calls.
    calls = control.calls(org["org_id"])
    refreshes = [c for c in calls if c["api"] == "oauth" and c["grant_type"] == "refresh_token"]
    assert [(c["status"], c["error"]) for c in refreshes] == [(200, None)]
    assert [c["error"] for c in calls if c["status"] == 401] == ["INVALID_SESSION_ID"] * workers


@pytest.mark.django_db
def test_rotating_encryption_keys_re_encrypts_every_token(
    connected: SalesforceConnection, settings: Any
) -> None:
    key_a = settings.FIELD_ENCRYPTION_KEYS[0]
    key_b = Fernet.generate_key().decode()
    access, refresh = connected.access_token, connected.refresh_token

    settings.FIELD_ENCRYPTION_KEYS = [key_b, key_a]
    call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115
    settings.FIELD_ENCRYPTION_KEYS = [key_b]  # the old key is gone

    stored = SalesforceConnection.objects.get(pk=connected.pk)
    assert (stored.access_token, stored.refresh_token) == (access, refresh)
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT access_token FROM salesforce_salesforceconnection WHERE id = %s",
            [connected.pk],
        )
        (raw,) = cursor.fetchone()
    assert Fernet(key_b.encode()).decrypt(raw.encode()).decode() == access
