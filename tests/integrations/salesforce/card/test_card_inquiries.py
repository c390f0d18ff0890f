"""Recent inquiries on the card: every sync outcome, the linked record, and Retry on failures."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from integrations.salesforce.card.services import salesforce_settings_update
from integrations.salesforce.models import InquirySync, SyncStatus
from tests.factories import InquiryFactory, SourceFactory
from tests.integrations.salesforce.card_support import (
    INSTANCE_URL,
    card_url,
    connection_create,
)
from tests.pages import block, has_block, page

pytestmark = pytest.mark.django_db

ORG = "00D5e000000ABCDEAA"


def sync_for(source, status: str, **fields) -> InquirySync:  # type: ignore[no-untyped-def]
    inquiry = InquiryFactory(source=source, **fields.pop("inquiry", {}))
    return InquirySync.objects.create(inquiry=inquiry, status=status, **fields)


def retry_url(source, sync: InquirySync) -> str:  # type: ignore[no-untyped-def]
    return f"{card_url(source)}inquiries/{sync.inquiry_id}/retry/"


def row_text(response, sync: InquirySync) -> str:  # type: ignore[no-untyped-def]
    return block(response, f"inquiry-{sync.inquiry_id}")


def has_retry_button(response, sync: InquirySync) -> bool:  # type: ignore[no-untyped-def]
    row = page(response).get_element_by_id(f"inquiry-{sync.inquiry_id}")
    return bool(row.xpath('.//form//button[normalize-space()="Retry"]'))


def test_every_sync_outcome_is_shown_with_its_record(owner_client, business):
    connection_create(business, org_id=ORG)
    created = sync_for(
        business,
        SyncStatus.CREATED,
        org_id=ORG,
        sobject="Lead",
        record_id="00Q5e00000AAAAAEAA",
        attempt_count=1,
        last_attempt_at=timezone.now(),
    )
    updated = sync_for(
        business, SyncStatus.UPDATED, org_id=ORG, sobject="Lead", record_id="00Q5e00000BBBBBEAA"
    )
    skipped = sync_for(
        business,
        SyncStatus.SKIPPED_EXISTING,
        org_id=ORG,
        sobject="Contact",
        record_id="0035e00000CCCCCAAA",
    )
    waiting_contact = sync_for(business, SyncStatus.WAITING_CONTACT_INFO)
    disabled = sync_for(business, SyncStatus.DISABLED)
    reconnect = sync_for(business, SyncStatus.WAITING_RECONNECT)
    failed = sync_for(
        business,
        SyncStatus.FAILED,
        error_code="REQUIRED_FIELD_MISSING",
        error_message="Required fields are missing: [Company]",
        error_fields=["Company"],
        attempt_count=1,
    )
    unqueued = InquiryFactory(source=business, first_name="Nia", last_name="Queue")

    response = owner_client.get(card_url(business))
    assert response.status_code == 200
    assert "Created" in row_text(response, created)
    assert "Lead 00Q5e00000AAAAAEAA" in row_text(response, created)
    assert "1 attempt" in row_text(response, created)
    link = page(response).xpath('//a[code="00Q5e00000AAAAAEAA"]/@href')
    assert link == [f"{INSTANCE_URL}/lightning/r/Lead/00Q5e00000AAAAAEAA/view"]
    assert "Updated" in row_text(response, updated)
    assert "Skipped: already in Salesforce" in row_text(response, skipped)
    assert "Contact 0035e00000CCCCCAAA" in row_text(response, skipped)
    assert "Waiting for contact info" in row_text(response, waiting_contact)
    assert "Not sent: integration disabled" in row_text(response, disabled)
    assert "Waiting for reconnect" in row_text(response, reconnect)
    failure = row_text(response, failed)
    assert "Failed" in failure
    assert (
        "REQUIRED_FIELD_MISSING Required fields are missing: [Company] (fields: Company)" in failure
    )
    assert "Nia Queue" in block(response, f"inquiry-{unqueued.pk}")
    assert "Not queued yet" in block(response, f"inquiry-{unqueued.pk}")

    # Retry only where something failed.
    assert has_retry_button(response, failed)
    for sync in (created, updated, skipped, waiting_contact, disabled, reconnect):
        assert not has_retry_button(response, sync)


def test_a_record_of_another_org_is_not_linked(owner_client, business):
    connection_create(business, org_id=ORG)
    sync = sync_for(
        business,
        SyncStatus.CREATED,
        org_id="00D000000000OLDAAA",
        sobject="Lead",
        record_id="00Q5e00000DDDDDEAA",
    )
    response = owner_client.get(card_url(business))
    assert "Lead 00Q5e00000DDDDDEAA" in row_text(response, sync)
    assert not page(response).xpath('//a[code="00Q5e00000DDDDDEAA"]')


def test_no_inquiries_yet(owner_client, business):
    assert "No inquiries yet." in block(owner_client.get(card_url(business)), "inquiries")


def test_a_location_lists_its_own_inquiries_even_while_inheriting(owner_client, business, location):
    salesforce_settings_update(source=location, data={"inherit_from_parent": True}, user=None)
    mine = sync_for(location, SyncStatus.DISABLED, inquiry={"first_name": "Loc"})
    theirs = sync_for(business, SyncStatus.DISABLED, inquiry={"first_name": "Biz"})
    response = owner_client.get(card_url(location))
    assert has_block(response, f"inquiry-{mine.inquiry_id}")
    assert not has_block(response, f"inquiry-{theirs.inquiry_id}")


# --- Hints that come from the sync outcomes --------------------------------------------------


def test_a_permission_failure_points_at_the_connected_users_permissions(owner_client, business):
    connection_create(business)
    failed = sync_for(
        business,
        SyncStatus.FAILED,
        error_code="INSUFFICIENT_ACCESS_OR_READONLY",
        error_message="insufficient access rights on object id",
    )
    text = row_text(owner_client.get(card_url(business)), failed)
    assert (
        "The Salesforce user you connected with is not allowed to create or edit this record."
        in text
    )
    # The raw code and message stay, for support.
    assert "Details for support INSUFFICIENT_ACCESS_OR_READONLY insufficient access rights" in text


def test_waiting_for_contact_info_points_at_that_setting(owner_client, business):
    salesforce_settings_update(source=business, data={"only_with_contact_info": True}, user=None)
    waiting = sync_for(business, SyncStatus.WAITING_CONTACT_INFO, inquiry={"email": ""})
    assert "Create customer only when contact info is captured is on" in row_text(
        owner_client.get(card_url(business)), waiting
    )


# --- Retry -----------------------------------------------------------------------------------


def test_retry_requeues_a_failed_sync(owner_client, business):
    failed = sync_for(
        business, SyncStatus.FAILED, error_code="UNABLE_TO_LOCK_ROW", requested_version=1
    )
    assert failed.due_at is None

    response = owner_client.post(retry_url(business, failed), follow=True)

    assert response.redirect_chain == [(f"{card_url(business)}#inquiry-{failed.inquiry_id}", 302)]
    failed.refresh_from_db()
    assert failed.status != SyncStatus.FAILED
    assert failed.due_at is not None and failed.due_at <= timezone.now()
    assert failed.requested_version == 2
    assert f"Inquiry {failed.inquiry.external_id} will be sent again." in response.content.decode()
    assert not has_retry_button(response, failed)


def test_retry_of_a_sync_that_did_not_fail_changes_nothing(owner_client, business):
    created = sync_for(business, SyncStatus.CREATED, record_id="00Q5e00000AAAAAEAA")
    response = owner_client.post(retry_url(business, created), follow=True)
    assert "Only a failed inquiry can be retried" in response.content.decode()
    created.refresh_from_db()
    assert created.status == SyncStatus.CREATED and created.due_at is None


def test_retry_is_404_outside_the_owners_business_or_under_another_source(
    owner_client, business, location
):
    other = SourceFactory(slug="acme-hvac", name="Acme HVAC")
    foreign = sync_for(other, SyncStatus.FAILED)
    assert owner_client.post(retry_url(other, foreign)).status_code == 404
    # The owner's own failed inquiry, but addressed under a different source of theirs.
    mine = sync_for(location, SyncStatus.FAILED)
    assert owner_client.post(retry_url(business, mine)).status_code == 404
    for sync in (foreign, mine):
        sync.refresh_from_db()
        assert sync.status == SyncStatus.FAILED and sync.due_at is None


def test_retry_needs_post_and_the_csrf_token(owner, business):
    failed = sync_for(business, SyncStatus.FAILED)
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.get(retry_url(business, failed)).status_code == 405
    assert client.post(retry_url(business, failed)).status_code == 403
    failed.refresh_from_db()
    assert failed.status == SyncStatus.FAILED


def test_staff_can_retry_any_sources_inquiry(staff_client):
    other = SourceFactory(slug="acme-hvac", name="Acme HVAC")
    failed = sync_for(other, SyncStatus.FAILED)
    assert staff_client.post(retry_url(other, failed)).status_code == 302
    failed.refresh_from_db()
    assert failed.due_at is not None
