"""The whole life of a connection with a real Celery worker, PostgreSQL, Redis and the emulator:
a revoked grant turns the connection to needs reconnect, inquiries that arrive meanwhile wait,
and reconnecting sends them; after a disconnect they wait too, and connecting again sends them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client

from autorespond.services import inquiry_upsert
from integrations.salesforce.models import (
    ConnectionStatus,
    InquirySync,
    SalesforceConnection,
    SalesforceSettings,
    SyncStatus,
)
from tests.integrations.salesforce.oauth_support import (
    card_url,
    connect_through_emulator,
)

pytestmark = pytest.mark.worker


def wait_for(check: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def statuses(*inquiries: Any) -> list[str]:
    return [InquirySync.objects.get(inquiry=inquiry).status for inquiry in inquiries]


def lead_emails(control: Any, org: dict[str, Any]) -> set[str]:
    return {lead["Email"] for lead in control.records(org["org_id"], "Lead")}


@pytest.fixture
def worker(start_worker: Any, emulator: Any, sf_settings: Any) -> Any:
    """A worker process whose settings point at the emulator, like the test's own."""
    return start_worker(
        {
            "SALESFORCE_LOGIN_URL": emulator.login_url,
            "SALESFORCE_SANDBOX_LOGIN_URL": emulator.sandbox_login_url,
            "SALESFORCE_CA_BUNDLE": str(emulator.ca_path),
            "SALESFORCE_EXTRA_LOGIN_HOSTS": ",".join(
                urlsplit(url).netloc for url in (emulator.login_url, emulator.sandbox_login_url)
            ),
        }
    )


@pytest.fixture
def enabled_tree(business: Any, location: Any) -> tuple[Any, Any]:
    """The business is enabled; its location inherits the business's settings and connection."""
    SalesforceSettings.objects.create(source=business, enabled=True)
    SalesforceSettings.objects.create(source=location, inherit_from_parent=True)
    return business, location


def test_revoked_grant_then_reconnect_sends_the_inquiries_that_waited(
    postgres: None,
    transactional_db: None,
    worker: Any,
    enabled_tree: tuple[Any, Any],
    owner_client: Client,
    org: dict[str, Any],
    control: Any,
) -> None:
    business, location = enabled_tree
    connect_through_emulator(owner_client, business)
    first = inquiry_upsert(
        source=business, external_id="before", data={"last_name": "Early", "email": "e@x.io"}
    ).inquiry
    wait_for(lambda: statuses(first) == [SyncStatus.CREATED], "the first inquiry to be sent")

    # An admin revokes the app in Salesforce: the next call fails and the refresh gets
    # invalid_grant.
    control.revoke_refresh_tokens(org["org_id"])
    waiting = [
        inquiry_upsert(
            source=source, external_id=f"while-{n}", data={"last_name": "Waits", "email": email}
        ).inquiry
        for n, (source, email) in enumerate([(business, "w1@x.io"), (location, "w2@x.io")])
    ]
    wait_for(
        lambda: statuses(*waiting) == [SyncStatus.WAITING_RECONNECT] * 2,
        "the inquiries to wait for a reconnect",
    )
    connection = SalesforceConnection.objects.get(source=business)
    assert connection.status == ConnectionStatus.NEEDS_RECONNECT
    assert "invalid_grant" in connection.status_reason
    assert lead_emails(control, org) == {"e@x.io"}
    assert "Waiting for reconnect" in owner_client.get(card_url(business)).content.decode()

    connect_through_emulator(owner_client, business)  # the owner reconnects

    wait_for(
        lambda: statuses(*waiting) == [SyncStatus.CREATED] * 2,
        "the waiting inquiries to be sent after the reconnect",
    )
    assert lead_emails(control, org) == {"e@x.io", "w1@x.io", "w2@x.io"}
    assert SalesforceConnection.objects.get(source=business).is_usable


def test_inquiries_during_a_disconnect_are_sent_once_connected_again(
    postgres: None,
    transactional_db: None,
    worker: Any,
    enabled_tree: tuple[Any, Any],
    owner_client: Client,
    org: dict[str, Any],
    control: Any,
    emulator: Any,
) -> None:
    business, location = enabled_tree
    old = connect_through_emulator(owner_client, business)
    owner_client.post(f"/sources/{business.slug}/integrations/salesforce/disconnect/")
    assert emulator.state.refresh_tokens[old.refresh_token].revoked
    assert "Not connected" in owner_client.get(card_url(location)).content.decode()

    inquiry = inquiry_upsert(
        source=location, external_id="gap", data={"last_name": "Gap", "email": "gap@x.io"}
    ).inquiry
    wait_for(lambda: statuses(inquiry) == [SyncStatus.WAITING_RECONNECT], "the inquiry to wait")

    connect_through_emulator(owner_client, business)

    wait_for(lambda: statuses(inquiry) == [SyncStatus.CREATED], "the inquiry to be sent")
    assert lead_emails(control, org) == {"gap@x.io"}
