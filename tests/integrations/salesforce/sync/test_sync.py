"""The sync service against the emulator: the gates, every option of the product page (seed 004)
on and off, and the record each one leaves in the org.

The service is called in-process (`sync_inquiry_run`); the emulator is the other side over real
HTTPS. Worker-level behaviour (Celery, Redis, killed workers) is in test_worker_sync.py.
"""

from __future__ import annotations

import pytest

from autorespond.models import Source
from integrations.salesforce.card.services import salesforce_settings_update
from integrations.salesforce.models import SalesforceSettings, SyncStatus
from integrations.salesforce.sync.scheduling import sync_resume_waiting
from tests.factories import SourceFactory
from tests.integrations.salesforce.sync_support import (  # noqa: F401  (fixtures)
    PERSON,
    connect_source,
    connection,
    contacts,
    enable,
    leads,
    run,
    send,
    sync_of,
    upsert,
)

pytestmark = pytest.mark.django_db


# --------------------------------------------------------------------------- the basic path


def test_new_inquiry_becomes_one_lead_in_two_api_calls(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business)
    sync = send(business, **PERSON)

    assert sync.status == SyncStatus.CREATED
    (lead,) = leads(control, org)
    assert (sync.sobject, sync.record_id, sync.org_id) == ("Lead", lead["Id"], org["org_id"])
    assert {k: lead[k] for k in ("FirstName", "LastName", "Company", "Email", "Phone")} == {
        "FirstName": "Ann",
        "LastName": "Lee",
        "Company": "Lee Bakery",
        "Email": "ann@example.com",
        "Phone": "(415) 555-1212",
    }
    assert (lead["Street"], lead["City"], lead["State"], lead["PostalCode"]) == (
        "1 Main St",
        "Springfield",
        "IL",
        "62701",
    )
    # Status is the org's default: we never send one.
    assert lead["Status"] == "Open - Not Contacted"
    attempt = sync.attempts.get()
    assert (attempt.outcome, attempt.api_calls) == (SyncStatus.CREATED, 2)
    assert attempt.finished_at is not None


def test_an_update_of_a_linked_record_costs_one_call_and_never_reassigns(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    enable(business)
    sync = send(business, **PERSON)
    sync = send(business, city="Shelbyville")

    assert sync.status == SyncStatus.UPDATED
    (lead,) = leads(control, org)
    assert lead["City"] == "Shelbyville"
    assert sync.attempts.first().api_calls == 1
    patch = [c for c in control.calls(org["org_id"]) if c["method"] == "PATCH"]
    assert len(patch) == 1
    assert patch[0]["headers"]["Sforce-Auto-Assign"] == "FALSE"


def test_a_second_run_of_a_synced_inquiry_does_nothing(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business)
    inquiry = upsert(business, **PERSON)
    run(inquiry)
    assert run(inquiry) is None  # not due any more: a task delivered twice is harmless
    assert len(leads(control, org)) == 1
    assert sync_of(inquiry).attempts.count() == 1


# --------------------------------------------------------------------------- gates


def test_enable_off_sends_nothing(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business, enabled=False)
    sync = send(business, **PERSON)
    assert sync.status == SyncStatus.DISABLED
    assert sync.due_at is None
    assert leads(control, org) == []
    assert sync.attempts.get().api_calls == 0


def test_no_settings_at_all_means_disabled(business, connection, control, org):  # type: ignore[no-untyped-def]
    sync = send(business, **PERSON)
    assert sync.status == SyncStatus.DISABLED
    assert leads(control, org) == []


def test_without_a_connection_the_inquiry_waits_and_is_sent_after_reconnect(
    business, emulator, control, org
):  # type: ignore[no-untyped-def]
    enable(business)
    sync = send(business, **PERSON)
    assert sync.status == SyncStatus.WAITING_RECONNECT
    assert leads(control, org) == []

    connection = connect_source(emulator, org, business)
    assert sync_resume_waiting(connection=connection) == 1
    sync.refresh_from_db()
    assert sync.status == SyncStatus.PENDING and sync.due_at is not None
    run(sync.inquiry)
    assert sync_of(sync.inquiry).status == SyncStatus.CREATED
    assert len(leads(control, org)) == 1


def test_contact_info_gate_on_waits_until_a_phone_or_email_arrives(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    enable(business, only_with_contact_info=True)
    sync = send(business, first_name="Ann", last_name="Lee")
    assert sync.status == SyncStatus.WAITING_CONTACT_INFO
    assert leads(control, org) == []

    sync = send(business, phone="415 555 1212")
    assert sync.status == SyncStatus.CREATED
    (lead,) = leads(control, org)
    assert lead["Phone"] == "(415) 555-1212"


def test_turning_the_contact_info_gate_off_sends_the_inquiries_that_waited(
    business, location, connection, control, org
):  # type: ignore[no-untyped-def]
    """An owner who turns the option off expects the waiting inquiries to go, including those
    of a location that inherits the setting."""
    enable(business, only_with_contact_info=True)
    SalesforceSettings.objects.create(source=location, inherit_from_parent=True)
    waiting = [send(business, first_name="Ann"), send(location, "inq-2", first_name="Bo")]
    assert {s.status for s in waiting} == {SyncStatus.WAITING_CONTACT_INFO}

    salesforce_settings_update(source=business, data={"only_with_contact_info": False}, user=None)
    for sync in waiting:
        sync.refresh_from_db()
        assert sync.status == SyncStatus.PENDING and sync.due_at is not None
        run(sync.inquiry)
    assert sorted(lead["FirstName"] for lead in leads(control, org)) == ["Ann", "Bo"]


def test_contact_info_gate_off_creates_at_first_contact_with_placeholders(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    enable(business, only_with_contact_info=False)
    sync = send(business, first_name="Ann")
    assert sync.status == SyncStatus.CREATED
    (lead,) = leads(control, org)
    assert (lead["FirstName"], lead["LastName"], lead["Company"]) == (
        "Ann",
        "[not provided]",
        "[not provided]",
    )
    assert lead["Email"] is None and lead["Phone"] is None


def test_a_location_that_inherits_uses_the_parents_settings_and_org(
    business, location, connection, control, org
):  # type: ignore[no-untyped-def]
    enable(business, include_source_name=True)
    SalesforceSettings.objects.create(source=location, inherit_from_parent=True)
    sync = send(location, **PERSON)
    assert sync.status == SyncStatus.CREATED
    (lead,) = leads(control, org)
    # The location's own name: the option is the parent's, the source is the location.
    assert lead["LeadSource"] == "Joe's Plumbing East"


def test_a_location_that_overrides_without_its_own_connection_waits(
    business, location, connection, control, org
):  # type: ignore[no-untyped-def]
    enable(business)
    enable(location, inherit_from_parent=False)
    sync = send(location, **PERSON)
    assert sync.status == SyncStatus.WAITING_RECONNECT
    assert leads(control, org) == []


# --------------------------------------------------------------------------- record type


def test_record_type_contacts_creates_a_contact_with_the_mailing_address(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    enable(business, record_type="Contact")
    sync = send(business, **PERSON)
    assert sync.status == SyncStatus.CREATED
    assert leads(control, org) == []
    (contact,) = contacts(control, org)
    assert sync.sobject == "Contact"
    assert (contact["FirstName"], contact["LastName"], contact["Email"]) == (
        "Ann",
        "Lee",
        "ann@example.com",
    )
    assert (contact["MailingStreet"], contact["MailingCity"], contact["MailingPostalCode"]) == (
        "1 Main St",
        "Springfield",
        "62701",
    )


def test_switching_record_type_never_moves_or_duplicates_a_linked_record(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    settings_row = enable(business, record_type="Lead")
    send(business, **PERSON)
    settings_row.record_type = "Contact"
    settings_row.save()

    sync = send(business, city="Shelbyville")
    assert sync.status == SyncStatus.UPDATED
    assert sync.sobject == "Lead"
    (lead,) = leads(control, org)
    assert lead["City"] == "Shelbyville"
    assert contacts(control, org) == []

    # A new person after the switch becomes a Contact.
    send(business, "inq-2", first_name="Bo", last_name="Chan", email="bo@example.com")
    (contact,) = contacts(control, org)
    assert contact["Email"] == "bo@example.com"
    assert len(leads(control, org)) == 1


# --------------------------------------------------------------------------- description / source


def test_include_job_description_on_writes_the_description(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business, send_job_description=True)
    send(business, **PERSON)
    (lead,) = leads(control, org)
    assert lead["Description"] == "Leaking kitchen tap"


def test_include_job_description_off_leaves_description_alone(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business, send_job_description=False)
    send(business, **PERSON)
    (lead,) = leads(control, org)
    assert lead["Description"] is None


def test_include_source_name_on_sets_lead_source(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business, include_source_name=True)
    send(business, **PERSON)
    (lead,) = leads(control, org)
    assert lead["LeadSource"] == "Joe's Plumbing"


def test_include_source_name_off_leaves_the_source_out(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business, include_source_name=False, send_job_description=True)
    send(business, **PERSON)
    (lead,) = leads(control, org)
    # The org's "Web" value, the default Lead source of a web inquiry (issue 13).
    assert lead["LeadSource"] == "Web"
    assert "Joe's Plumbing" not in (lead["Description"] or "")


def test_include_source_name_on_a_contact_goes_into_its_lead_source(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    """Contacts have LeadSource too (issue 13): the source's name goes there when the
    picklist accepts it (this org's is not restricted)."""
    enable(business, record_type="Contact", include_source_name=True)
    send(business, **PERSON)
    (contact,) = contacts(control, org)
    assert contact["LeadSource"] == "Joe's Plumbing"
    assert contact["Description"] is None


# --------------------------------------------------------------------------- matching


def test_create_only_new_leads_on_leaves_a_match_alone_and_keeps_its_id(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    existing = control.insert_record(
        org["org_id"], "Lead", {"LastName": "Lee", "Company": "Old Co", "Email": "ANN@example.com"}
    )
    enable(business, only_new_leads=True)
    sync = send(business, **PERSON)

    assert sync.status == SyncStatus.SKIPPED_EXISTING
    assert (sync.sobject, sync.record_id) == ("Lead", existing)
    (lead,) = leads(control, org)
    assert lead["Company"] == "Old Co" and lead["City"] is None
    attempt = sync.attempts.get()
    assert attempt.api_calls == 1
    assert attempt.detail["match"]["record_id"] == existing

    # A later change of the inquiry still leaves the existing record alone.
    sync = send(business, city="Shelbyville")
    assert sync.status == SyncStatus.SKIPPED_EXISTING
    assert control.record(org["org_id"], "Lead", existing)["City"] is None


def test_create_only_new_leads_off_updates_the_match_without_blanking(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    existing = control.insert_record(
        org["org_id"],
        "Lead",
        {"LastName": "Lee", "Company": "Old Co", "Email": "ann@example.com", "Title": "Chef"},
    )
    enable(business, only_new_leads=False)
    sync = send(business, first_name="Ann", email="ann@example.com", city="Springfield")

    assert sync.status == SyncStatus.UPDATED
    assert sync.record_id == existing
    (lead,) = leads(control, org)
    # New information written; what we do not have is left as Salesforce has it.
    assert (lead["FirstName"], lead["City"]) == ("Ann", "Springfield")
    assert (lead["LastName"], lead["Company"], lead["Title"]) == ("Lee", "Old Co", "Chef")


def test_a_contact_match_beats_a_lead_so_no_new_lead_is_made(business, connection, control, org):  # type: ignore[no-untyped-def]
    lead_id = control.insert_record(
        org["org_id"], "Lead", {"LastName": "Lee", "Company": "X", "Email": "ann@example.com"}
    )
    contact_id = control.insert_record(
        org["org_id"], "Contact", {"LastName": "Lee", "Email": "ann@example.com"}
    )
    enable(business, record_type="Lead")
    sync = send(business, **PERSON)

    assert (sync.status, sync.sobject, sync.record_id) == (
        SyncStatus.UPDATED,
        "Contact",
        contact_id,
    )
    assert control.record(org["org_id"], "Contact", contact_id)["MailingCity"] == "Springfield"
    assert control.record(org["org_id"], "Lead", lead_id)["City"] is None
    assert len(leads(control, org)) == 1


def test_a_converted_lead_is_never_updated_its_contact_is(
    business, connection, control, org, emulator
):  # type: ignore[no-untyped-def]
    lead_id = control.insert_record(
        org["org_id"], "Lead", {"LastName": "Lee", "Company": "X", "Email": "ann@example.com"}
    )
    contact_id = control.convert_lead(org["org_id"], lead_id)
    # The Contact's email has changed since: only the converted Lead still has the old one.
    emulator.state.org(org["org_id"]).records["Contact"][contact_id]["Email"] = "ann@work.example"
    enable(business)
    sync = send(business, **PERSON)

    assert (sync.sobject, sync.record_id) == ("Contact", contact_id)
    assert control.record(org["org_id"], "Contact", contact_id)["MailingCity"] == "Springfield"
    assert sync.attempts.get().detail["match"]["converted_lead_id"] == lead_id
    assert len(leads(control, org)) == 1


def test_a_linked_lead_converted_later_is_followed_to_its_contact(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    enable(business)
    sync = send(business, **PERSON)
    contact_id = control.convert_lead(org["org_id"], sync.record_id)

    sync = send(business, city="Shelbyville")
    assert (sync.status, sync.sobject, sync.record_id) == (
        SyncStatus.UPDATED,
        "Contact",
        contact_id,
    )
    assert control.record(org["org_id"], "Contact", contact_id)["MailingCity"] == "Shelbyville"


def test_a_phone_stored_in_another_format_is_matched(business, connection, control, org):  # type: ignore[no-untyped-def]
    existing = control.insert_record(
        org["org_id"], "Lead", {"LastName": "Lee", "Company": "X", "Phone": "+1 415.555.1212"}
    )
    enable(business)
    sync = send(business, first_name="Ann", phone="(415) 555-1212")
    assert (sync.status, sync.record_id) == (SyncStatus.UPDATED, existing)
    assert sync.attempts.get().detail["match"]["reason"] == "phone"
    assert len(leads(control, org)) == 1


def test_a_phone_with_the_same_digits_but_another_number_is_not_a_match(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    control.insert_record(
        org["org_id"], "Lead", {"LastName": "Lee", "Company": "X", "Phone": "+44 4155 551212"}
    )
    enable(business)
    sync = send(business, first_name="Ann", phone="(415) 555-1212")
    assert sync.status == SyncStatus.CREATED
    assert len(leads(control, org)) == 2


def test_the_phone_region_of_the_source_reads_local_numbers(business, connection, control, org):  # type: ignore[no-untyped-def]
    Source.objects.filter(pk=business.pk).update(phone_region="GB")
    existing = control.insert_record(
        org["org_id"], "Contact", {"LastName": "Lee", "Phone": "+44 20 7946 0958"}
    )
    enable(business)
    sync = send(business, first_name="Ann", phone="020 7946 0958")
    assert (sync.sobject, sync.record_id) == ("Contact", existing)


def test_a_deleted_linked_record_is_replaced(business, connection, control, org, emulator):  # type: ignore[no-untyped-def]
    enable(business)
    sync = send(business, **PERSON)
    emulator.state.org(org["org_id"]).delete("Lead", sync.record_id)

    sync = send(business, city="Shelbyville")
    assert sync.status == SyncStatus.RETRYING  # unlinked; matched again at once
    run(sync.inquiry)
    sync = sync_of(sync.inquiry)
    assert sync.status == SyncStatus.CREATED
    assert control.record(org["org_id"], "Lead", sync.record_id)["City"] == "Shelbyville"


# --------------------------------------------------------------------------- fields


def test_values_longer_than_the_field_are_cut_and_the_cut_recorded(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    enable(business)
    sync = send(business, **{**PERSON, "first_name": "A" * 45, "city": "C" * 60})
    assert sync.status == SyncStatus.CREATED
    (lead,) = leads(control, org)
    assert lead["FirstName"] == "A" * 40
    assert lead["City"] == "C" * 40
    assert sync.attempts.get().detail["truncated"] == [
        {"field": "FirstName", "length": 45, "max_length": 40, "action": "cut"},
        {"field": "City", "length": 60, "max_length": 40, "action": "cut"},
    ]
    assert sync.detail["truncated"][0]["field"] == "FirstName"


def test_a_second_inquiry_of_the_same_person_updates_the_same_record(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    enable(business)
    first = send(business, "inq-1", **PERSON)
    second = send(business, "inq-2", first_name="Ann", email="ANN@example.com", city="Ogdenville")
    assert second.status == SyncStatus.UPDATED
    assert second.record_id == first.record_id
    (lead,) = leads(control, org)
    assert lead["City"] == "Ogdenville"


def test_another_source_of_the_same_org_matches_the_same_person(business, connection, control, org):  # type: ignore[no-untyped-def]
    sibling = SourceFactory(slug="joes-plumbing-west", name="West", parent=business)
    enable(business)
    SalesforceSettings.objects.create(source=sibling, inherit_from_parent=True)
    first = send(business, **PERSON)
    second = send(sibling, "w-1", first_name="Ann", phone="415-555-1212")
    assert second.record_id == first.record_id
    assert len(leads(control, org)) == 1
