""" "Test with a sample inquiry": what the sync would do, against the emulator over HTTPS, with
read calls only and nothing written (no record, no email, no row of ours)."""

from __future__ import annotations

from typing import Any

import pytest

from autorespond.models import Inquiry
from integrations.salesforce.models import InquirySync, SalesforcePerson, SyncStatus
from tests.factories import SourceFactory
from tests.integrations.salesforce.card_support import card_url
from tests.integrations.salesforce.sync_support import (  # noqa: F401 - `connection` is a fixture
    PERSON,
    connection,
    enable,
    send,
)
from tests.pages import block, page, text_of

pytestmark = pytest.mark.django_db

SAMPLE = {
    "first_name": "Ann",
    "last_name": "Lee",
    "company": "Lee Bakery",
    "email": "ann@example.com",
    "phone": "(415) 555-1212",
    "job_description": "Leaking kitchen tap",
}


def preview_url(source) -> str:  # type: ignore[no-untyped-def]
    return f"{card_url(source)}preview/"


def look_ups(control, org) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The org's Composite calls: a preview's one possible call is the sync's look-up."""
    return [c for c in control.calls(org["org_id"]) if "/composite" in (c.get("path") or "")]


def writes(control, org) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Every data-API call that could write: REST POST/PATCH/DELETE outside Composite, any SOAP."""
    return [
        c
        for c in control.calls(org["org_id"])
        if c.get("api") == "soap"
        or (
            c.get("api") == "rest"
            and c.get("method") in ("POST", "PATCH", "PUT", "DELETE")
            and "/composite" not in (c.get("path") or "")
        )
    ]


def fields_of(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    rows = page(response).xpath('//table[@id="preview-fields"]/tbody/tr')
    return {
        r.xpath("./td[1]")[0].text_content(): r.xpath("./td[2]")[0].text_content() for r in rows
    }


def test_a_new_person_would_be_created_with_these_fields(
    owner_client, business, connection, control, org
):
    enable(business, send_job_description=True)
    before = len(look_ups(control, org))
    response = owner_client.post(preview_url(business), SAMPLE)
    assert response.status_code == 200
    result = block(response, "preview-result")
    assert (
        "Create It would create a new Lead: no Lead or Contact has this email or phone." in result
    )
    assert fields_of(response) == {
        "FirstName": "Ann",
        "LastName": "Lee",
        "Company": "Lee Bakery",
        "Email": "ann@example.com",
        "Phone": "(415) 555-1212",
        "Description": "Leaking kitchen tap",
    }
    assert "Sent through Salesforce's REST API" in result
    assert "Salesforce emails None" in result
    assert "Missing or left out" not in result
    assert "Look-up 1 read call to Salesforce" in result
    # One read call (the Composite look-up), nothing created anywhere.
    assert len(look_ups(control, org)) == before + 1
    assert writes(control, org) == []
    assert control.records(org["org_id"], "Lead") == []
    assert control.emails(org["org_id"]) == []
    assert not Inquiry.objects.exists() and not InquirySync.objects.exists()
    assert not SalesforcePerson.objects.exists()


def test_an_existing_lead_is_matched_and_linked(owner_client, business, connection, control, org):
    enable(business)
    lead_id = control.insert_record(
        org["org_id"],
        "Lead",
        {"LastName": "Lee", "Company": "Lee Bakery", "Email": "ANN@example.com"},
    )
    response = owner_client.post(preview_url(business), SAMPLE)
    result = block(response, "preview-result")
    assert f"Update It would update Lead {lead_id} (same email address)." in result
    link = page(response).xpath('//*[@id="preview-result"]//a/@href')
    assert link == [f"{connection.instance_url}/lightning/r/Lead/{lead_id}/view"]
    assert "An update sends only the values this inquiry has" in result
    assert control.record(org["org_id"], "Lead", lead_id)["FirstName"] in (None, "")


def test_create_only_for_new_leads_would_skip_the_match(
    owner_client, business, connection, control, org
):
    enable(business, only_new_leads=True)
    lead_id = control.insert_record(
        org["org_id"], "Lead", {"LastName": "Lee", "Company": "X", "Phone": "415-555-1212"}
    )
    response = owner_client.post(preview_url(business), {**SAMPLE, "email": ""})
    result = block(response, "preview-result")
    assert (
        f"Skip It would be skipped: Lead {lead_id} already exists (same phone number) and Create "
        "only for new leads is on." in result
    )
    assert not page(response).xpath('//table[@id="preview-fields"]')


def test_salesforce_emails_and_soap_are_said(owner_client, business, connection, control, org):
    enable(
        business,
        header_options="EmailHeader,triggerAutoResponseEmail,true;EmailHeader,triggerUserEmail,"
        "true;AssignmentRuleHeader,useDefaultRule,true",
    )
    result = block(owner_client.post(preview_url(business), SAMPLE), "preview-result")
    assert "Sent through Salesforce's SOAP API" in result
    assert "Salesforce's auto-response email to the customer, if one of your org's" in result
    assert "An email to the owner the assignment rule picks" in result
    assert control.emails(org["org_id"]) == []


def test_what_is_missing_or_left_out_is_listed(owner_client, business, connection, control, org):
    enable(business)  # Include job description off
    response = owner_client.post(
        preview_url(business), {"first_name": "Ann", "job_description": "Leaking tap"}
    )
    left_out = block(response, "preview-left-out")
    assert "No email or phone number: Salesforce cannot match this person later" in left_out
    assert "LastName is required by Salesforce and missing: sent as [not provided]." in left_out
    assert "Company is required by Salesforce and missing: sent as [not provided]." in left_out
    assert "The job description is not sent: Include job description is off." in left_out
    # Nothing to look up: no call at all.
    assert "Look-up 0 read calls to Salesforce" in block(response, "preview-result")


def test_a_contact_would_join_the_companys_account(
    owner_client, business, connection, control, org
):
    enable(business, record_type="Contact")
    account_id = control.insert_record(org["org_id"], "Account", {"Name": "Lee Bakery"})
    result = block(owner_client.post(preview_url(business), SAMPLE), "preview-result")
    assert "It would create a new Contact" in result
    assert f"The Contact joins the Account {account_id} of “Lee Bakery”" in result
    assert control.records(org["org_id"], "Contact") == []


def test_a_recent_inquiry_linked_to_its_record_needs_no_look_up(
    owner_client, business, connection, control, org
):
    enable(business)
    sync = send(business, **PERSON)
    assert sync.status == SyncStatus.CREATED
    before = len(look_ups(control, org))
    response = owner_client.post(preview_url(business), {"inquiry": str(sync.inquiry_id)})
    result = block(response, "preview-result")
    assert f"It would update Lead {sync.record_id} (this inquiry was sent to it before)." in result
    assert "Look-up 0 read calls" in result
    assert len(look_ups(control, org)) == before
    sync.refresh_from_db()
    assert sync.status == SyncStatus.CREATED and sync.due_at is None


def test_enable_off_is_said_and_the_preview_still_shown(
    owner_client, business, connection, control, org
):
    enable(business, enabled=False)
    result = block(owner_client.post(preview_url(business), SAMPLE), "preview-result")
    assert result.startswith("Enable is off, so nothing is sent today.")
    assert "It would create a new Lead" in result


def test_waiting_for_contact_info_is_the_answer_without_contact_info(
    owner_client, business, connection
):
    enable(business, only_with_contact_info=True)
    result = block(
        owner_client.post(preview_url(business), {"first_name": "Ann", "last_name": "Lee"}),
        "preview-result",
    )
    assert "It would wait: Create customer only when contact info is captured is on" in result


def test_not_connected_says_so(owner_client, business):
    result = block(owner_client.post(preview_url(business), SAMPLE), "preview-result")
    assert "Salesforce is not connected: connect it to test what would happen." in result


def test_salesforce_refusing_the_look_up_is_the_answer(
    owner_client, business, connection, control, org
):
    enable(business)
    control.add_fault(org["org_id"], "server_unavailable", count=5)
    response = owner_client.post(preview_url(business), SAMPLE)
    assert response.status_code == 200
    assert "Salesforce could not be asked: Salesforce was busy or briefly unreachable." in block(
        response, "preview-result"
    )


def test_a_bad_sample_gets_field_errors_and_no_call(
    owner_client, business, connection, control, org
):
    response = owner_client.post(preview_url(business), {"email": "not-an-email"})
    assert response.status_code == 400
    assert "Enter a valid email address." in block(response, "preview")
    response = owner_client.post(preview_url(business), {})
    assert response.status_code == 400
    assert "Type a sample inquiry" in block(response, "preview")
    assert look_ups(control, org) == []


def test_an_inquiry_of_another_source_cannot_be_previewed(
    owner_client, business, location, connection
):
    other = send(location, "loc-1", **PERSON).inquiry
    response = owner_client.post(preview_url(business), {"inquiry": str(other.pk)})
    assert response.status_code == 400


def test_preview_needs_login_post_and_a_visible_source(client, owner_client, business):
    assert client.post(preview_url(business), SAMPLE).status_code == 302
    assert owner_client.get(preview_url(business)).status_code == 405
    other = SourceFactory(slug="acme-hvac", name="Acme HVAC")
    assert owner_client.post(preview_url(other), SAMPLE).status_code == 404


def test_every_bad_field_of_a_sample_shows_its_own_error(
    owner_client, business, connection, control, org
):
    response = owner_client.post(
        preview_url(business),
        {
            "first_name": "A\u0000n",
            "last_name": "L" * 5000,
            "phone": "5" * 100,
            "email": "not-an-email",
        },
    )
    assert response.status_code == 400
    preview = page(response).get_element_by_id("preview")
    # Each invalid field is marked and followed by its own message, not only the email's.
    for name in ("first_name", "last_name", "phone", "email"):
        (field,) = preview.xpath(f'.//*[@name="{name}"]')
        assert field.get("aria-invalid") == "true", name
        messages = field.xpath('following-sibling::p[@class="error"]')
        assert messages and text_of(messages[0]), name
    assert look_ups(control, org) == []
