"""Connect in a real browser: the owner clicks Connect on the card, approves on the (emulated)
Salesforce consent page, and lands back on the card showing the connection."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from integrations.salesforce.models import ConnectionStatus, SalesforceConnection
from tests.emulator_support import create_org
from tests.factories import MembershipFactory, SourceFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"  # the factories' password


def test_owner_connects_through_the_consent_page(
    browser_page: Page, live_server: Any, control: Any, sf_settings: Any
) -> None:
    page = browser_page
    business = SourceFactory(slug="joes-plumbing", name="Joe's Plumbing")
    MembershipFactory(user=UserFactory(username="joe"), business=business)
    # The emulator's connected app accepts this live server's callback URL, as a real
    # connected app lists the service's.
    org = create_org(
        control, callback_urls=[f"{live_server.url}/integrations/salesforce/callback/"]
    )
    admin = org["users"][0]

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("joe")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server.url}/sources/{business.slug}/integrations/salesforce/")
    expect(page.locator("#connection")).to_contain_text("Not connected")
    page.get_by_label("Production").check()
    page.get_by_role("button", name="Connect", exact=True).click()

    # Salesforce's consent page, on the login host.
    expect(page.get_by_role("heading", name="Allow Access?")).to_be_visible()
    assert page.url.startswith(f"{sf_settings.SALESFORCE_LOGIN_URL}/services/oauth2/authorize")
    expect(page.locator("body")).to_contain_text("is asking to access your Salesforce data")
    page.get_by_role("button", name="Allow").click()

    # Back on the card.
    page.wait_for_url(f"{live_server.url}/sources/{business.slug}/integrations/salesforce/")
    expect(page.locator(".messages")).to_contain_text(
        f"Salesforce is connected to Joe's Plumbing as Ada Admin ({admin['username']})."
    )
    connection_block = page.locator("#connection")
    expect(connection_block).to_contain_text("Connected.")
    expect(connection_block).to_contain_text(org["org_id"])
    expect(connection_block).to_contain_text("OK")
    stored = SalesforceConnection.objects.get(source=business)
    assert stored.status == ConnectionStatus.CONNECTED
    assert stored.username == admin["username"]
    assert stored.access_token not in page.content()
