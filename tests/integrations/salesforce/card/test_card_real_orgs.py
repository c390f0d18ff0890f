"""The card's part of issue 13: the owner picks Lead source and Lead status among the org's own
values (read from describe when the connection was made or validated), and each inquiry row says
what was left out of its record and why."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.salesforce.models import InquirySync, SalesforceSettings, SyncStatus
from tests.factories import InquiryFactory
from tests.integrations.salesforce.card_support import card_url, form_data, inputs
from tests.integrations.salesforce.sync_support import connect_source
from tests.pages import block, page

pytestmark = pytest.mark.django_db


def _options(response: Any, name: str) -> list[tuple[str, str]]:
    return [
        (option.get("value"), option.text_content().strip())
        for option in page(response).xpath(f'//select[@name="{name}"]/option')
    ]


def test_the_card_offers_the_orgs_own_lead_source_and_status_values(
    owner_client, business, emulator, control, org
):  # type: ignore[no-untyped-def]
    control.set_org_settings(
        org["org_id"],
        picklist_values={
            "Lead.LeadSource": ["Web", "Referral"],
            "Lead.Status": ["New", "Contacted"],
        },
        default_lead_status="New",
    )
    connect_source(emulator, org, business)

    response = owner_client.get(card_url(business))

    assert _options(response, "lead_source") == [
        ("", "Your org's default (Web)"),
        ("Web", "Web"),
        ("Referral", "Referral"),
    ]
    assert _options(response, "lead_status") == [
        ("", "Your org's default status (New)"),
        ("New", "New"),
        ("Contacted", "Contacted"),
    ]

    saved = owner_client.post(
        card_url(business), form_data(lead_source="Referral", lead_status="Contacted")
    )
    assert saved.status_code == 302
    settings = SalesforceSettings.objects.get(source=business)
    assert (settings.lead_source, settings.lead_status) == ("Referral", "Contacted")
    again = owner_client.get(card_url(business))
    assert (inputs(again)["lead_source"], inputs(again)["lead_status"]) == ("Referral", "Contacted")

    refused = owner_client.post(card_url(business), form_data(lead_source="Billboard"))
    assert refused.status_code == 400
    assert "Billboard" in block(refused, "field-lead_source")
    assert SalesforceSettings.objects.get(source=business).lead_source == "Referral"


def test_before_the_schema_is_read_only_the_default_is_offered(owner_client, business):  # type: ignore[no-untyped-def]
    response = owner_client.get(card_url(business))
    assert _options(response, "lead_source") == [("", "Your org's default")]
    assert "once the connection is validated" in block(response, "field-lead_source")


def test_a_row_shows_what_was_left_out_and_why_and_a_blocked_duplicate_says_why(
    owner_client, business
):  # type: ignore[no-untyped-def]
    left_out = [
        {
            "field": "Email",
            "code": "INVALID_EMAIL_ADDRESS",
            "reason": "Salesforce refused the email address as invalid for your org, so the "
            "record was saved without it.",
        }
    ]
    created = InquirySync.objects.create(
        inquiry=InquiryFactory(source=business),
        status=SyncStatus.CREATED,
        sobject="Lead",
        record_id="00Q5e00000AAAAAEAA",
        detail={"left_out": left_out},
    )
    blocked = InquirySync.objects.create(
        inquiry=InquiryFactory(source=business),
        status=SyncStatus.BLOCKED_DUPLICATE,
        error_code="DUPLICATES_DETECTED",
        error_message="Salesforce's duplicate rule Lead_Rule blocks this new record because it "
        "looks like Lead 00Q5e00000BBBBBEAA.",
    )

    response = owner_client.get(card_url(business))

    row = block(response, f"inquiry-{created.inquiry_id}")
    assert "Left out of the record: Email INVALID_EMAIL_ADDRESS Salesforce refused" in row
    blocked_row = block(response, f"inquiry-{blocked.inquiry_id}")
    assert "Blocked by your Salesforce duplicate rule" in blocked_row
    assert "Lead_Rule" in blocked_row and "00Q5e00000BBBBBEAA" in blocked_row
    retry = page(response).get_element_by_id(f"inquiry-{blocked.inquiry_id}")
    assert retry.xpath('.//form//button[normalize-space()="Retry"]')
