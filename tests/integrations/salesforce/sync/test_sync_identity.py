"""Identity (issue 13, cases 1 and 6): an email is a person's identity, and the sync never
overwrites another person's record, whether the record was found by our look-up (a shared phone)
or named by the org's duplicate rule. Each case runs in an org with and without the rule.

The rules are written down in `integrations.salesforce.sync.matching`'s docstring; these tests hold
the sync to them against the emulator over real HTTPS.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import close_old_connections

from integrations.salesforce.models import SalesforcePerson, SyncStatus
from integrations.salesforce.sync.runner import sync_inquiry_run
from integrations.salesforce.sync.scheduling import sync_retry
from tests.integrations.salesforce.sync_support import (  # noqa: F401 (fixtures)
    connection,
    enable,
    leads,
    run,
    send,
    sync_of,
    upsert,
)

pytestmark = pytest.mark.django_db

TOM = {
    "FirstName": "Tom",
    "LastName": "Reed",
    "Company": "Reed Household",
    "Email": "tom.reed@example.com",
    "Phone": "(415) 555-0500",
}
ANN = {
    "first_name": "Ann",
    "last_name": "Reed",
    "email": "ann.reed@example.com",
    "phone": "415-555-0500",
}


def _tom(control: Any, org: dict[str, Any]) -> str:
    return control.insert_record(org["org_id"], "Lead", dict(TOM))


def _lead(control: Any, org: dict[str, Any], record_id: str) -> dict[str, Any]:
    return control.record(org["org_id"], "Lead", record_id)


def _untouched(lead: dict[str, Any]) -> bool:
    return all(lead[name] == value for name, value in TOM.items())


# --------------------------------------------------------------------------- case 1


def test_a_shared_phone_with_another_email_gets_its_own_lead(business, connection, control, org):  # type: ignore[no-untyped-def]
    tom_id = _tom(control, org)
    enable(business)

    sync = send(business, **ANN)

    assert sync.status == SyncStatus.CREATED
    assert sync.record_id != tom_id
    assert _untouched(_lead(control, org, tom_id))
    ann = _lead(control, org, sync.record_id)
    assert (ann["FirstName"], ann["Email"], ann["Phone"]) == (
        "Ann",
        "ann.reed@example.com",
        "(415) 555-0500",
    )
    assert len(leads(control, org)) == 2
    # Ann's next inquiry updates Ann's Lead, never Tom's.
    sync = send(business, "inq-2", **{**ANN, "city": "Oakland"})
    assert (sync.status, sync.record_id) == (SyncStatus.UPDATED, ann["Id"])
    assert _untouched(_lead(control, org, tom_id))


def test_a_phone_match_without_an_email_on_either_side_is_the_same_person(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    """The rule only separates people by email: a record with no email, or an inquiry with
    none, found by phone is the person (the line is all we know)."""
    tom_id = control.insert_record(org["org_id"], "Lead", {**TOM, "Email": None})
    enable(business)

    sync = send(business, first_name="Tom", last_name="Reed", phone="415.555.0500")

    assert (sync.status, sync.record_id) == (SyncStatus.UPDATED, tom_id)
    assert len(leads(control, org)) == 1


def test_an_email_match_is_the_person_even_when_the_phone_is_someone_elses(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    tom_id = _tom(control, org)
    enable(business)

    sync = send(business, first_name="Tom", email="TOM.REED@example.com", phone="415-555-0999")

    assert (sync.status, sync.record_id) == (SyncStatus.UPDATED, tom_id)


# --------------------------------------------------------------------------- duplicate rules


def test_an_allow_rule_that_flags_another_person_is_saved_with_the_allow_save_header(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    """A phone duplicate rule that allows saving names Tom's Lead for Ann: Ann's Lead is created
    with Sforce-Duplicate-Rule-Header allowSave=true, Tom's is untouched."""
    tom_id = _tom(control, org)
    control.set_duplicate_rule(
        org["org_id"], "Lead", match_fields=["Phone"], allow_save=True, name="Lead_Phone_Rule"
    )
    enable(business)

    sync = send(business, **ANN)

    assert sync.status == SyncStatus.CREATED
    assert sync.record_id != tom_id
    assert _untouched(_lead(control, org, tom_id))
    posts = [
        c
        for c in control.calls(org["org_id"])
        if c["method"] == "POST" and "sobjects/Lead" in c["path"]
    ]
    assert [
        ("allowSave=true" in (c["headers"].get("Sforce-Duplicate-Rule-Header") or ""))
        for c in posts
    ] == [False, True]
    attempt = sync.attempts.get()
    assert attempt.detail["duplicate"] == {
        "rule": "Lead_Phone_Rule",
        "records": [tom_id],
        "saved_anyway": True,
    }


@pytest.mark.parametrize("header_options", ["", "EmailHeader,triggerAutoResponseEmail,true"])
def test_a_blocking_rule_that_names_another_person_stops_with_the_reason(
    business, connection, control, org, header_options
):  # type: ignore[no-untyped-def]
    """REST and SOAP alike: a blocking rule that names Tom's Lead for Ann writes nothing to Tom
    and records *Blocked by your Salesforce duplicate rule*, naming the rule and the record; it
    is not retried by itself, and Retry sends it again once the rule is gone."""
    tom_id = _tom(control, org)
    control.set_duplicate_rule(
        org["org_id"], "Lead", match_fields=["Phone"], allow_save=False, name="Lead_Phone_Block"
    )
    enable(business, header_options=header_options)

    sync = send(business, **ANN)

    assert sync.status == SyncStatus.BLOCKED_DUPLICATE
    assert sync.get_status_display() == "Blocked by your Salesforce duplicate rule"
    assert sync.error_code == "DUPLICATES_DETECTED"
    assert "Lead_Phone_Block" in sync.error_message and tom_id in sync.error_message
    assert sync.due_at is None  # not retried by itself
    assert sync.detail["duplicate"] == {
        "rule": "Lead_Phone_Block",
        "records": [tom_id],
        "saved_anyway": False,
    }
    assert _untouched(_lead(control, org, tom_id))
    assert len(leads(control, org)) == 1
    assert not SalesforcePerson.objects.filter(record_id="").exists()  # claims released

    control.remove_duplicate_rule(org["org_id"], "Lead")
    sync_retry(sync=sync)
    run(sync.inquiry)
    sync = sync_of(sync.inquiry)
    assert sync.status == SyncStatus.CREATED
    assert _untouched(_lead(control, org, tom_id))


def test_a_rule_that_names_the_same_person_updates_that_record(business, connection, control, org):  # type: ignore[no-untyped-def]
    """Same email in other letters, found by the rule only (our look-up raced it): the record is
    the person's and is updated, as before."""
    enable(business)
    control.set_duplicate_rule(org["org_id"], "Lead", match_fields=["Email"], allow_save=False)
    inquiry = upsert(business, **ANN)
    # The record appears after our look-up and before our create.
    control.add_fault(
        org["org_id"], "slow_response", count=1, latency_ms=600, path_contains="composite"
    )

    def insert() -> None:
        import time

        time.sleep(0.2)
        control.insert_record(
            org["org_id"],
            "Lead",
            {"LastName": "Reed", "Company": "X", "Email": "Ann.Reed@example.com"},
        )

    thread = threading.Thread(target=insert)
    thread.start()
    run(inquiry)
    thread.join()
    sync = sync_of(inquiry)

    (lead,) = leads(control, org)
    assert (sync.status, sync.record_id) == (SyncStatus.UPDATED, lead["Id"])
    assert lead["FirstName"] == "Ann"


# --------------------------------------------------------------------------- concurrency


@pytest.mark.django_db(transaction=True)
def test_two_people_sharing_a_line_at_once_get_a_lead_each_and_tom_is_untouched(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    """Ann and her brother Ben write at the same moment from the household line that Tom's Lead
    has; an Allow rule on phone flags each create. Each gets exactly one Lead of their own."""
    tom_id = _tom(control, org)
    control.set_duplicate_rule(org["org_id"], "Lead", match_fields=["Phone"], allow_save=True)
    enable(business)
    ann = upsert(business, "inq-ann", **ANN)
    ben = upsert(business, "inq-ben", **{**ANN, "first_name": "Ben", "email": "ben@example.com"})
    barrier = threading.Barrier(2)

    def work(inquiry_id: int) -> None:
        try:
            barrier.wait()
            sync_inquiry_run(inquiry_id=inquiry_id)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=work, args=(i.pk,)) for i in (ann, ben)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for inquiry in (ann, ben):
        if sync_of(inquiry).status == SyncStatus.RETRYING:
            run(inquiry)  # a busy person lock: its retry

    assert {sync_of(i).status for i in (ann, ben)} == {SyncStatus.CREATED}
    by_email = {lead["Email"]: lead for lead in leads(control, org)}
    assert set(by_email) == {"tom.reed@example.com", "ann.reed@example.com", "ben@example.com"}
    assert _untouched(by_email["tom.reed@example.com"])
    assert by_email["tom.reed@example.com"]["Id"] == tom_id


# --------------------------------------------------------------------------- name and company


@pytest.mark.parametrize("rule", ["none", "allow", "block"])
def test_a_namesake_at_the_same_company_is_never_overwritten(
    business, connection, control, org, rule
):  # type: ignore[no-untyped-def]
    """Case 6: a rule matching on first name, last name and company names another Ann Reed of
    Reed Household, with her own email. Without a rule, and with an Allow rule, our Ann gets
    her own Lead; with a blocking rule the sync stops and says why. The namesake is untouched."""
    namesake = {
        "FirstName": "Ann",
        "LastName": "Reed",
        "Company": "Reed Household",
        "Email": "ann.senior@example.com",
        "Phone": "(415) 555-0999",
    }
    other_id = control.insert_record(org["org_id"], "Lead", dict(namesake))
    if rule != "none":
        control.set_duplicate_rule(
            org["org_id"],
            "Lead",
            match_fields=["NameAndCompany"],
            allow_save=rule == "allow",
            name="Lead_Name_Company",
        )
    enable(business)

    sync = send(business, **{**ANN, "company": "Reed Household", "phone": "415-555-0123"})

    other = _lead(control, org, other_id)
    assert all(other[name] == value for name, value in namesake.items())
    if rule == "block":
        assert sync.status == SyncStatus.BLOCKED_DUPLICATE
        assert "Lead_Name_Company" in sync.error_message and other_id in sync.error_message
        assert len(leads(control, org)) == 1
    else:
        assert sync.status == SyncStatus.CREATED
        assert sync.record_id != other_id
        assert _lead(control, org, sync.record_id)["Email"] == "ann.reed@example.com"
