"""Real orgs (issue 13): the org's schema decides what we send, and one bad field never loses
the lead. Each case runs against the emulator over real HTTPS in an org WITH the feature (the
org switch on) and in one WITHOUT it, and looks at the record the org keeps:

2. an email Salesforce refuses → the Lead without the email (the API's 400 is in
   tests/autorespond/test_api_realorgs.py);
3. State and Country picklists → the state lands as a code or label, an unknown state is dropped
   with a note;
4. a restricted LeadSource picklist → the Lead is created;
5. a FirstName of 25 emoji (50 UTF-16 units) → the Lead is created with the name cut;
7. Lead source and Status → as the owner chose.

Cases 1 and 6 (identity, duplicate rules) are in test_sync_identity.py.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import close_old_connections

from autorespond.models import Inquiry
from integrations.salesforce.models import SalesforceOrgSchema, SyncStatus
from integrations.salesforce.oauth.tokens import salesforce_client
from integrations.salesforce.sync.org_schema import org_schema_for
from integrations.salesforce.sync.runner import sync_inquiry_run
from tests.integrations.salesforce.sync_support import (
    PERSON,
    connect_source,
    contacts,
    enable,
    leads,
    send,
    sync_of,
    upsert,
)

pytestmark = pytest.mark.django_db

EMOJI_NAME = "😀" * 25  # 25 code points, 50 UTF-16 code units; FirstName holds 40


def _org_with(control: Any, org: dict[str, Any], **settings: Any) -> None:
    if settings:
        control.set_org_settings(org["org_id"], **settings)


@pytest.fixture
def connect(emulator, control, org, business):  # type: ignore[no-untyped-def]
    """Connect `business` once the test has set up its org (the schema is read at connect)."""

    def _connect(**settings: Any) -> Any:
        _org_with(control, org, **settings)
        return connect_source(emulator, org, business)

    return _connect


def _left_out(sync: Any) -> dict[str, str]:
    return {item["field"]: item["code"] for item in sync.detail.get("left_out", [])}


# --------------------------------------------------------------------------- case 2: email


@pytest.mark.parametrize("eai", [False, True])
def test_an_email_the_org_refuses_leaves_a_lead_without_the_email(
    business, connect, control, org, eai
):  # type: ignore[no-untyped-def]
    """A non-ASCII domain passes our API (orgs with Email Address Internationalization accept
    it); an org without EAI refuses it, and the Lead is written again without the email."""
    connect(email_address_internationalization=eai)
    enable(business)

    sync = send(business, **{**PERSON, "email": "bea@bücher.de"})

    assert sync.status == SyncStatus.CREATED
    (lead,) = leads(control, org)
    assert lead["Phone"] == "(415) 555-1212"
    if eai:
        assert lead["Email"] == "bea@bücher.de"
        assert "Email" not in _left_out(sync)
    else:
        assert lead["Email"] is None
        assert _left_out(sync) == {"Email": "INVALID_EMAIL_ADDRESS"}
        (note,) = sync.detail["left_out"]
        assert "bücher" not in note["reason"]  # never the value


def test_an_email_our_rules_refuse_is_left_out_before_any_call(business, connect, control, org):  # type: ignore[no-untyped-def]
    """An inquiry stored before the API checked emails (or written by another path): the
    mapping leaves the address out without spending a refused call."""
    connect()
    enable(business)
    inquiry = upsert(business, **PERSON)
    Inquiry.objects.filter(pk=inquiry.pk).update(email="bea@localhost")

    sync = send(business, first_name="Bea")

    assert sync.status == SyncStatus.CREATED
    (lead,) = leads(control, org)
    assert (lead["FirstName"], lead["Email"]) == ("Bea", None)
    assert _left_out(sync) == {"Email": "INVALID_EMAIL_ADDRESS"}
    assert sync.attempts.get().api_calls == 2  # look-up and create: no refused write


# --------------------------------------------------------------------------- case 3: addresses


def test_with_state_and_country_picklists_the_codes_land(business, connect, control, org):  # type: ignore[no-untyped-def]
    connect(state_country_picklists=True)
    enable(business)

    sync = send(business, **{**PERSON, "state": "Illinois"})  # the label; the code works too

    assert sync.status == SyncStatus.CREATED
    (lead,) = leads(control, org)
    assert (lead["StateCode"], lead["CountryCode"]) == ("IL", "US")
    assert (lead["State"], lead["Country"]) == ("Illinois", "United States")
    assert _left_out(sync) == {}


def test_the_inquirys_country_wins_over_the_sources_region(business, connect, control, org):  # type: ignore[no-untyped-def]
    connect(state_country_picklists=True)
    enable(business)

    sync = send(business, **{**PERSON, "state": "ON", "country": "Canada"})

    (lead,) = leads(control, org)
    assert sync.status == SyncStatus.CREATED
    assert (lead["StateCode"], lead["CountryCode"], lead["State"]) == ("ON", "CA", "Ontario")


def test_an_unknown_state_is_dropped_with_a_note_and_the_lead_is_created(
    business, connect, control, org
):  # type: ignore[no-untyped-def]
    connect(state_country_picklists=True)
    enable(business)

    sync = send(business, **{**PERSON, "state": "Springfield County"})

    assert sync.status == SyncStatus.CREATED
    (lead,) = leads(control, org)
    assert (lead["StateCode"], lead["State"], lead["CountryCode"]) == (None, None, "US")
    assert lead["City"] == "Springfield"
    assert _left_out(sync) == {"State": "FIELD_INTEGRITY_EXCEPTION"}


def test_a_contacts_mailing_address_gets_the_codes_too(business, connect, control, org):  # type: ignore[no-untyped-def]
    connect(state_country_picklists=True)
    enable(business, record_type="Contact")

    sync = send(business, **PERSON)

    assert sync.status == SyncStatus.CREATED
    (contact,) = contacts(control, org)
    assert (contact["MailingStateCode"], contact["MailingCountryCode"]) == ("IL", "US")


def test_without_the_picklists_the_state_is_sent_as_typed(business, connect, control, org):  # type: ignore[no-untyped-def]
    connect()
    enable(business)

    sync = send(business, **{**PERSON, "state": "Springfield County", "country": "usa"})

    (lead,) = leads(control, org)
    assert sync.status == SyncStatus.CREATED
    assert (lead["State"], lead["Country"]) == ("Springfield County", "United States")
    assert "StateCode" not in lead


def test_a_state_refused_by_the_org_is_written_again_without_it(business, connect, control, org):  # type: ignore[no-untyped-def]
    """Our schema says no picklists, but the admin turned them on since: the text State "IL" is
    refused (FIELD_INTEGRITY_EXCEPTION), the Lead is written again without the state, and the
    schema is read again by the next sync."""
    connection = connect()
    enable(business)
    control.set_org_settings(org["org_id"], state_country_picklists=True)

    sync = send(business, **PERSON)

    assert sync.status == SyncStatus.CREATED
    (lead,) = leads(control, org)
    assert lead["State"] is None and lead["City"] == "Springfield"
    assert _left_out(sync) == {"State": "FIELD_INTEGRITY_EXCEPTION"}
    assert SalesforceOrgSchema.objects.get(connection=connection).stale
    # The next sync reads the schema (one call) and sends the code.
    assert org_schema_for(client=salesforce_client(connection)).state_country_picklists


# --------------------------------------------------------------------------- case 4: restricted


@pytest.mark.parametrize("restricted", [False, True])
def test_a_source_name_a_restricted_lead_source_refuses_goes_to_the_description(
    business, connect, control, org, restricted
):  # type: ignore[no-untyped-def]
    settings: dict[str, Any] = {"picklist_values": {"Lead.LeadSource": ["Web", "Phone"]}}
    if restricted:
        settings["restricted_picklists"] = ["Lead.LeadSource"]
    connect(**settings)
    enable(business, include_source_name=True)

    sync = send(business, **PERSON)

    assert sync.status == SyncStatus.CREATED
    (lead,) = leads(control, org)
    if restricted:
        assert lead["LeadSource"] == "Web"
        assert lead["Description"] == "Source: Joe's Plumbing"
    else:
        assert lead["LeadSource"] == "Joe's Plumbing"
        assert lead["Description"] is None


def test_a_picklist_restricted_since_the_schema_was_read_degrades_per_field(
    business, connect, control, org
):  # type: ignore[no-untyped-def]
    """Over SOAP too: the org refuses the LeadSource value, the Lead is written again without
    it, and the note says why (never the value)."""
    connect()
    control.set_org_settings(
        org["org_id"],
        picklist_values={"Lead.LeadSource": ["Phone"]},
        restricted_picklists=["Lead.LeadSource"],
    )
    enable(business, header_options="EmailHeader,triggerAutoResponseEmail,true")

    sync = send(business, **PERSON)

    assert sync.status == SyncStatus.CREATED
    (lead,) = leads(control, org)
    assert lead["LeadSource"] is None
    assert _left_out(sync) == {"LeadSource": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"}
    assert sync.attempts.get().detail["api"] == "soap"


# --------------------------------------------------------------------------- case 5: lengths


@pytest.mark.parametrize("utf16", [True, False])
def test_a_first_name_of_25_emoji_is_cut_and_the_lead_created(
    business, connect, control, org, utf16
):  # type: ignore[no-untyped-def]
    """We cut at 40 UTF-16 units (20 emoji), safe under either reading of the limit."""
    connect(count_utf16_code_units=utf16)
    enable(business)

    sync = send(business, **{**PERSON, "first_name": EMOJI_NAME})

    assert sync.status == SyncStatus.CREATED
    (lead,) = leads(control, org)
    assert lead["FirstName"] == "😀" * 20
    assert sync.detail["truncated"] == [
        {"field": "FirstName", "length": 50, "max_length": 40, "action": "cut"}
    ]


# --------------------------------------------------------------------------- case 7: source, status


def test_lead_source_and_status_are_as_chosen(business, connect, control, org):  # type: ignore[no-untyped-def]
    connect(
        picklist_values={
            "Lead.LeadSource": ["Website", "Phone"],
            "Lead.Status": ["New", "Contacted", "Qualified"],
        },
        restricted_picklists=["Lead.LeadSource", "Lead.Status"],
        default_lead_status="New",
    )
    enable(business, lead_source="Phone", lead_status="Contacted")

    sync = send(business, **PERSON)

    assert sync.status == SyncStatus.CREATED
    (lead,) = leads(control, org)
    assert (lead["LeadSource"], lead["Status"]) == ("Phone", "Contacted")


def test_blank_choices_take_the_orgs_web_source_and_default_status(business, connect, control, org):  # type: ignore[no-untyped-def]
    connect(default_lead_status="Working - Contacted")
    enable(business)

    send(business, **PERSON)

    (lead,) = leads(control, org)
    assert (lead["LeadSource"], lead["Status"]) == ("Web", "Working - Contacted")


def test_an_org_without_web_gets_no_lead_source_and_a_contact_gets_the_chosen_one(
    business, connect, control, org
):  # type: ignore[no-untyped-def]
    connect(picklist_values={"Lead.LeadSource": ["Referral", "Trade Show"]})
    enable(business)
    send(business, **PERSON)
    (lead,) = leads(control, org)
    assert lead["LeadSource"] is None

    enable(business, record_type="Contact", lead_source="Referral")
    send(business, "inq-2", **{**PERSON, "email": "bo@example.com", "phone": ""})
    (contact,) = contacts(control, org)
    assert contact["LeadSource"] == "Referral"


# --------------------------------------------------------------------------- concurrency


@pytest.mark.django_db(transaction=True)
def test_simultaneous_inquiries_each_degrade_on_their_own(business, connect, control, org):  # type: ignore[no-untyped-def]
    """Four people at once, each with an email the org refuses (no EAI): each gets exactly one
    Lead without the email, and each note is its own."""
    connect()
    enable(business)
    inquiries = [
        upsert(business, f"inq-{n}", last_name=f"P{n}", email=f"p{n}@bücher.de", phone="")
        for n in range(4)
    ]
    barrier = threading.Barrier(len(inquiries))

    def work(inquiry_id: int) -> None:
        try:
            barrier.wait()
            sync_inquiry_run(inquiry_id=inquiry_id)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=work, args=(i.pk,)) for i in inquiries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(lead["LastName"] for lead in leads(control, org)) == ["P0", "P1", "P2", "P3"]
    assert all(lead["Email"] is None for lead in leads(control, org))
    for inquiry in inquiries:
        sync = sync_of(inquiry)
        assert sync.status == SyncStatus.CREATED
        assert _left_out(sync) == {"Email": "INVALID_EMAIL_ADDRESS"}


@pytest.mark.parametrize("header_options", ["", "EmailHeader,triggerUserEmail,true"])
def test_a_contact_and_its_new_account_degrade_together(
    business, connect, control, org, header_options
):  # type: ignore[no-untyped-def]
    """REST: one allOrNone Composite (Account + Contact) refused for the email is sent again
    without it; SOAP: the Account is made once and the Contact written again alone. Either way
    one Account, one Contact, and the note."""
    connect()
    enable(business, record_type="Contact", header_options=header_options)

    sync = send(business, **{**PERSON, "email": "bea@bücher.de"})

    assert sync.status == SyncStatus.CREATED
    (contact,) = contacts(control, org)
    (account,) = control.records(org["org_id"], "Account")
    assert (contact["Email"], contact["AccountId"]) == (None, account["Id"])
    assert _left_out(sync) == {"Email": "INVALID_EMAIL_ADDRESS"}
