"""The Salesforce card as an owner sees it, in Chromium: the header in every status, Retry on a
failed inquiry, the assignment-rule picker refusing an id the org does not have, the Advanced
section, every option-string error at once, and the read-only Preview.

Each test saves screenshots under var/screenshots/ (git-ignored), to look at by eye.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from autorespond.models import Source
from integrations.salesforce.card.services import salesforce_settings_update
from integrations.salesforce.models import (
    ConnectionStatus,
    InquirySync,
    SalesforceSettings,
    SyncStatus,
)
from tests.browser.screenshots import shot
from tests.factories import InquiryFactory, MembershipFactory, SourceFactory, UserFactory
from tests.integrations.salesforce.card_support import connection_create
from tests.integrations.salesforce.sync_support import PERSON, connect_source, enable, send

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"  # the factories' password
SINCE = dt.datetime(2026, 11, 30, 7, 15, tzinfo=dt.UTC)
UNKNOWN_RULE = "01Q000000000XYZAAA"


def log_in(page: Page, base_url: str, username: str = "joe") -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Your sources")).to_be_visible()


def card(page: Page, base_url: str, source: Source) -> None:
    page.goto(f"{base_url}/sources/{source.slug}/integrations/salesforce/")


def failed_sync(source: Source, code: str, message: str, **inquiry: Any) -> InquirySync:
    return InquirySync.objects.create(
        inquiry=InquiryFactory(source=source, **inquiry),
        status=SyncStatus.FAILED,
        error_code=code,
        error_message=message,
        attempt_count=1,
    )


@pytest.fixture
def joe() -> Any:
    return UserFactory(username="joe")


def business_of(joe: Any, slug: str, name: str, parent: Source | None = None) -> Source:
    source = SourceFactory(slug=slug, name=name, parent=parent)
    if parent is None:
        MembershipFactory(user=joe, business=source)
    return source


def test_the_header_tells_each_status_with_one_action(
    browser_page: Page, live_server: Any, joe: Any
) -> None:
    page = browser_page
    # One business per status (and a location that inherits), all Joe's.
    not_connected = business_of(joe, "a-not-connected", "Not Connected Plumbing")
    off = business_of(joe, "b-off", "Off Plumbing")
    connection_create(off)
    sending = business_of(joe, "c-sending", "Sending Plumbing")
    connection_create(sending)
    enable(sending)
    failing = business_of(joe, "d-failing", "Failing Plumbing")
    connection_create(failing)
    enable(failing)
    failed_sync(failing, "STRING_TOO_LONG", "Company: data value too large")
    failed_sync(failing, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Region__c]")
    InquirySync.objects.create(inquiry=InquiryFactory(source=failing), status=SyncStatus.RETRYING)
    reconnect = business_of(joe, "e-reconnect", "Reconnect Plumbing")
    connection_create(
        reconnect,
        status=ConnectionStatus.NEEDS_RECONNECT,
        status_reason="invalid_grant: expired access/refresh token",
        last_validated_at=SINCE,
        last_validation_ok=True,
    )
    enable(reconnect)
    unavailable = business_of(joe, "f-unavailable", "Unavailable Plumbing")
    connection_create(unavailable, unavailable_since=SINCE)
    enable(unavailable)
    budget = business_of(joe, "g-budget", "Budget Plumbing")
    connection_create(budget, budget_paused_since=SINCE)
    enable(budget)
    InquirySync.objects.create(
        inquiry=InquiryFactory(source=budget), status=SyncStatus.WAITING_BUDGET
    )
    east = business_of(joe, "c-sending-east", "Sending Plumbing East", parent=sending)
    salesforce_settings_update(source=east, data={"inherit_from_parent": True}, user=None)

    log_in(page, live_server.url)
    # The home page: every source with its pill and a link to its card.
    expect(page.locator("#source-d-failing .pill")).to_have_text("Some inquiries failed")
    expect(page.locator("#source-c-sending-east .pill")).to_have_text(
        "Inherited from Sending Plumbing"
    )
    shot(page, "home-status-pills")
    page.get_by_label("Salesforce settings of Failing Plumbing").click()
    expect(page.locator("#status-pill")).to_have_text("Some inquiries failed")

    expected = [
        (not_connected, "Not connected", "Connect Salesforce", "0 failed · 0 waiting"),
        (off, "Connected but off", "Turn on Enable", "0 failed · 0 waiting"),
        (sending, "Sending", "Test with a sample inquiry", "0 failed · 0 waiting"),
        (failing, "Some inquiries failed", "Review failed inquiries", "2 failed · 1 waiting"),
        (reconnect, "Waiting for reconnect", "Connect again", "0 failed · 0 waiting"),
        (unavailable, "Salesforce unavailable since", "See waiting inquiries", None),
        (budget, "Waiting for API budget", "See waiting inquiries", "0 failed · 1 waiting"),
        (east, "Inherited from Sending Plumbing", "Open Sending Plumbing's card", None),
    ]
    for source, label, action, counts in expected:
        card(page, live_server.url, source)
        expect(page.locator("#status-pill")).to_contain_text(label)
        expect(page.locator("#status-action")).to_have_text(action)
        if counts:
            expect(page.locator("#status .counts")).to_have_text(counts)
        shot(page, f"card-status-{source.slug}", selector="#status")

    # The failing card: the count links to exactly the failed inquiries, in plain words.
    card(page, live_server.url, failing)
    page.locator("#status").get_by_role("link", name="2 failed").click()
    expect(page.get_by_role("heading", name="Failed inquiries")).to_be_visible()
    expect(page.locator("table.inquiries tbody tr")).to_have_count(2)
    expect(page.locator("#inquiries")).to_contain_text(
        "A value of this inquiry is longer than Salesforce's field allows."
    )
    shot(page, "card-failed-inquiries")

    # The broken connection reads as such, with no "OK" beside it.
    card(page, live_server.url, reconnect)
    connection = page.locator("#connection")
    expect(connection).to_contain_text("Waiting for reconnect.")
    expect(connection).not_to_contain_text("OK")
    expect(connection.locator("details.sf-error")).not_to_have_attribute("open", "")
    shot(page, "card-reconnect", selector="#connection")


def test_the_owner_retries_a_failed_inquiry(browser_page: Page, live_server: Any, joe: Any) -> None:
    page = browser_page
    business = business_of(joe, "joes-plumbing", "Joe's Plumbing")
    connection_create(business)
    enable(business, header_options=f"AssignmentRuleHeader,assignmentRuleId,{UNKNOWN_RULE}")
    failed = failed_sync(
        business,
        "INVALID_CROSS_REFERENCE_KEY",
        "invalid cross reference id",
        first_name="Ann",
        last_name="Lee",
    )
    other = business_of(joe, "other-hvac", "Other HVAC")
    foreign = failed_sync(other, "STRING_TOO_LONG", "too long")

    log_in(page, live_server.url)
    card(page, live_server.url, business)
    row = page.locator(f"#inquiry-{failed.inquiry_id}")
    expect(row).to_contain_text(
        "Salesforce says the assignment rule chosen on this card does not exist."
    )
    # The raw code stays, one click away, for support.
    expect(row.locator("details.sf-error")).to_contain_text(
        "INVALID_CROSS_REFERENCE_KEY invalid cross reference id"
    )
    row.locator("details.sf-error summary").click()
    shot(page, "card-retry-before", selector="#inquiries")
    row.get_by_role("button", name="Retry").click()

    expect(page.locator(".messages")).to_contain_text(
        f"Inquiry {failed.inquiry.external_id} will be sent again."
    )
    failed.refresh_from_db()
    assert failed.status == SyncStatus.PENDING and failed.due_at is not None
    expect(page.locator(f"#inquiry-{failed.inquiry_id}")).to_contain_text("Waiting to be sent")
    # The earlier attempt's error no longer explains the row.
    expect(page.locator(f"#inquiry-{failed.inquiry_id}")).not_to_contain_text("does not exist")
    expect(page.locator(f"#inquiry-{failed.inquiry_id}").get_by_role("button")).to_have_count(0)
    shot(page, "card-retry-after")
    # The other business's inquiry is untouched.
    foreign.refresh_from_db()
    assert foreign.status == SyncStatus.FAILED


def test_the_rule_picker_offers_the_orgs_rules_and_refuses_an_unknown_id(
    browser_page: Page, live_server: Any, joe: Any, emulator: Any, control: Any, org: Any
) -> None:
    page = browser_page
    business = business_of(joe, "joes-plumbing", "Joe's Plumbing")
    connect_source(emulator, org, business)
    rep = control.add_user(org["org_id"], "rep@joesorg.example", email="rep@joesorg.example")
    entries = [{"assign_to": rep["id"], "criteria": {}}]
    east = control.set_assignment_rule(org["org_id"], "Lead", entries, name="East team")
    control.set_assignment_rule(org["org_id"], "Lead", entries, name="West team")

    log_in(page, live_server.url)
    card(page, live_server.url, business)
    picker = page.get_by_label("Assignment rule", exact=True)
    expect(picker.locator("option")).to_have_text(
        ["Choose a rule…", "East team", "West team (active)"]
    )
    page.get_by_label("Yes, with this rule:").check()
    picker.select_option(label="East team")
    shot(page, "card-rule-picker", selector="#automation")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".messages")).to_contain_text("Salesforce settings saved.")
    stored = SalesforceSettings.objects.get(source=business).header_options
    assert stored == f"AssignmentRuleHeader,assignmentRuleId,{east['id']}"

    # An id the org does not have (typed in Advanced) is refused, at the field.
    page.locator("#advanced summary").click()
    page.get_by_label("Advanced: API headers").fill(
        f"AssignmentRuleHeader,assignmentRuleId,{UNKNOWN_RULE}"
    )
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#form-errors")).to_contain_text("Nothing was saved.")
    expect(page.locator("#field-header_options")).to_contain_text(
        f"Your Salesforce org has no assignment rule with the ID {UNKNOWN_RULE}."
    )
    expect(page.locator("#advanced")).to_have_attribute("open", "")
    shot(page, "card-rule-refused")
    assert SalesforceSettings.objects.get(source=business).header_options == stored


def test_advanced_is_closed_and_every_option_string_error_shows_at_once(
    browser_page: Page, live_server: Any, joe: Any
) -> None:
    page = browser_page
    business = business_of(joe, "joes-plumbing", "Joe's Plumbing")
    log_in(page, live_server.url)
    card(page, live_server.url, business)

    # The main card speaks plainly; the header names wait under Advanced, closed.
    settings = page.locator("#settings")
    expect(settings).not_to_contain_text("sendJobDescription")
    expect(page.locator("#automation")).to_contain_text(
        "Send Salesforce's auto-response email to the customer"
    )
    expect(page.locator("#automation")).to_contain_text("Email the assigned owner")
    textarea = page.get_by_label("Advanced: API headers")
    expect(textarea).to_be_hidden()
    shot(page, "card-main")

    page.locator("#advanced summary").click()
    expect(textarea).to_be_visible()
    textarea.fill("EmailHeader,triggerAutoResponseEmail,yes;FooHeader,bar,true")
    page.get_by_role("button", name="Save settings").click()

    field = page.locator("#field-header_options")
    expect(field.locator("p.error")).to_have_text(
        [
            "Invalid boolean value 'yes' for EmailHeader.triggerAutoResponseEmail",
            "Unknown SOAP header: 'FooHeader'",
        ]
    )
    expect(field).to_contain_text(
        "Tip: Boolean values must be exactly 'true' or 'false' (lowercase)"
    )
    expect(field).to_contain_text("Tip: Example: 'EmailHeader,triggerAutoResponseEmail,true'")
    expect(field).to_contain_text(
        "Tip: Available headers: AllOrNoneHeader, AllowFieldTruncationHeader, "
        "AssignmentRuleHeader, DisableFeedTrackingHeader, DuplicateRuleHeader, EmailHeader, "
        "MruHeader"
    )
    expect(field).to_contain_text(
        "Tip: Header names are case-sensitive and must match Salesforce API exactly"
    )
    # The banner links to the field.
    link = page.locator("#form-errors").get_by_role("link", name="Advanced: API headers")
    expect(link).to_contain_text("Advanced: API headers")
    expect(page.locator("#form-errors")).to_contain_text("(2 problems)")
    link.click()
    assert page.url.endswith("#field-header_options")
    expect(field).to_be_in_viewport()
    shot(page, "card-option-string-errors")
    shot(page, "card-option-string-errors-field", selector="#automation")
    assert not SalesforceSettings.objects.filter(source=business).exists()


def test_preview_shows_what_would_happen_and_writes_nothing(
    browser_page: Page, live_server: Any, joe: Any, emulator: Any, control: Any, org: Any
) -> None:
    page = browser_page
    business = business_of(joe, "joes-plumbing", "Joe's Plumbing")
    connection = connect_source(emulator, org, business)
    enable(business, send_job_description=True, header_options="EmailHeader,triggerUserEmail,true")
    lead_id = control.insert_record(
        org["org_id"],
        "Lead",
        {
            "FirstName": "Ann",
            "LastName": "Lee",
            "Company": "Lee Bakery",
            "Email": "ann@example.com",
        },
    )
    recent = send(business, "inq-7", **{**PERSON, "email": "bo@example.com", "first_name": "Bo"})

    log_in(page, live_server.url)
    card(page, live_server.url, business)
    preview = page.locator("#preview")
    expect(preview.get_by_role("heading", name="Test with a sample inquiry")).to_be_visible()
    preview.get_by_label("First name").fill("Ann")
    preview.get_by_label("Last name").fill("Lee")
    preview.get_by_label("Email").fill("ANN@example.com")
    preview.get_by_label("Job description").fill("Leaking kitchen tap")
    preview.get_by_role("button", name="Test").click()

    result = page.locator("#preview-result")
    expect(result).to_contain_text(f"It would update Lead {lead_id} (same email address).")
    expect(result.get_by_role("link", name=lead_id)).to_have_attribute(
        "href", f"{connection.instance_url}/lightning/r/Lead/{lead_id}/view"
    )
    expect(result).to_contain_text("Salesforce's SOAP API")
    expect(result).to_contain_text("No owner email: no assignment rule runs on this write")
    expect(page.locator("#preview-fields")).to_contain_text("Leaking kitchen tap")
    shot(page, "card-preview", selector="#preview")
    lead = control.record(org["org_id"], "Lead", lead_id)
    assert lead["Email"] == "ann@example.com" and not lead.get("Description")

    # A recent inquiry: linked to its record, so no look-up at all.
    preview.get_by_label("Use").select_option(str(recent.inquiry_id))
    preview.get_by_role("button", name="Test").click()
    expect(result).to_contain_text(
        f"It would update Lead {recent.record_id} (this inquiry was sent to it before)."
    )
    expect(result).to_contain_text("0 read calls to Salesforce")
    assert control.emails(org["org_id"]) == []
    assert len(control.records(org["org_id"], "Lead")) == 2
