"""The Salesforce card in a real browser: log in as an owner, turn Enable on, make a location
inherit from its parent, and see an option-string error with its tip. No JavaScript is needed:
these are the page's plain forms."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import Page, expect

from integrations.salesforce.card.services import salesforce_settings_update
from integrations.salesforce.models import SalesforceSettings
from tests.factories import MembershipFactory, SourceFactory, UserFactory
from tests.integrations.salesforce.card_support import connection_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"  # the factories' password


def log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Your sources")).to_be_visible()


def test_owner_enables_inherits_and_sees_the_option_string_tip(browser_page: Page, live_server):
    page = browser_page
    business = SourceFactory(slug="joes-plumbing", name="Joe's Plumbing")
    location = SourceFactory(slug="joes-plumbing-east", name="Joe's Plumbing East", parent=business)
    MembershipFactory(user=UserFactory(username="joe"), business=business)
    salesforce_settings_update(source=business, data={"record_type": "Contact"}, user=None)
    connection_create(business, org_id="00D000000000BUSAAA", display_name="Biz Admin")

    log_in(page, live_server.url, "joe")

    # The business's card: Enable is off by default; turn it on and save.
    page.get_by_role("link", name="Salesforce settings of Joe's Plumbing", exact=True).click()
    expect(page.get_by_role("heading", name="Salesforce", exact=True)).to_be_visible()
    expect(page.locator("#status-pill")).to_have_text("Connected but off")
    enable = page.get_by_label("Enable", exact=True)
    expect(enable).not_to_be_checked()
    enable.check()
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".messages")).to_contain_text("Salesforce settings saved.")
    expect(page.get_by_label("Enable", exact=True)).to_be_checked()
    expect(page.locator("#status-pill")).to_have_text("Sending")
    assert SalesforceSettings.objects.get(source=business).enabled is True

    # The location inherits from its parent and shows the parent's settings read-only.
    page.goto(f"{live_server.url}/sources/{location.slug}/integrations/salesforce/")
    page.get_by_label("Inherit from parent").check()
    page.get_by_role("button", name="Save settings").click()
    inherited = page.locator("#inherited")
    expect(inherited).to_contain_text("Inherited from Joe's Plumbing")
    expect(inherited.get_by_role("link", name="Joe's Plumbing")).to_have_attribute(
        "href", f"/sources/{business.slug}/integrations/salesforce/"
    )
    settings = page.locator("#settings")
    expect(settings).to_contain_text("Enable")
    expect(settings.locator("dt:has-text('Enable') + dd")).to_have_text("On")
    expect(settings.locator("dt:has-text('Record type') + dd")).to_have_text("Contacts")
    expect(page.locator("#connection")).to_contain_text("00D000000000BUSAAA")
    expect(page.locator("input[name=enabled]")).to_have_count(0)

    # Back to its own settings, and a bad option string: the error and its tip, at the field.
    page.get_by_label("Inherit from parent").uncheck()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#inherited")).to_have_count(0)
    page.locator("#advanced summary").click()
    page.get_by_label("Advanced: API headers").fill("EmailHeader,triggerUserEmail,yes")
    page.get_by_role("button", name="Save settings").click()
    field = page.locator("#field-header_options")
    expect(field).to_contain_text("Invalid boolean value 'yes' for EmailHeader.triggerUserEmail")
    expect(field).to_contain_text(
        "Tip: Boolean values must be exactly 'true' or 'false' (lowercase)"
    )
    expect(field).to_contain_text("Tip: Example: 'EmailHeader,triggerUserEmail,true'")
    expect(page.get_by_label("Advanced: API headers")).to_have_value(
        "EmailHeader,triggerUserEmail,yes"
    )
    if os.environ.get("CARD_SCREENSHOT"):
        page.screenshot(path=os.environ["CARD_SCREENSHOT"], full_page=True)
    assert SalesforceSettings.objects.get(source=location).header_options == ""
