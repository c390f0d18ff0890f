"""Contacts and their company's Account, against the emulator: a Contact with a company joins the
Account of that name (found case-insensitively, oldest first) or a new one created with it in the
same Composite call; a person without a company stays a private contact; updates never move a
Contact to another Account; a refused Contact leaves no orphan Account; and the API-call cost
stays at two calls for a new person.

Concurrency through a real worker is in test_worker_sync.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from integrations.salesforce.models import SalesforcePerson, SyncStatus
from integrations.salesforce.sync.scheduling import sync_retry
from tests.integrations.salesforce.sync_support import (  # noqa: F401  (fixtures)
    PERSON,
    connection,
    contacts,
    enable,
    leads,
    run,
    send,
    sync_of,
)

pytestmark = pytest.mark.django_db

BOB = {
    "first_name": "Bob",
    "last_name": "Ray",
    "email": "bob@example.com",
    "phone": "(415) 555-3434",
}


def accounts(control: Any, org: dict[str, Any]) -> list[dict[str, Any]]:
    return control.records(org["org_id"], "Account")


def data_calls(control: Any, org: dict[str, Any]) -> list[dict[str, Any]]:
    """The org's REST and SOAP calls of the sync (OAuth requests, and the connection's one
    read of the org's schema, which `connect_source` makes first, left out)."""
    return [c for c in control.calls(org["org_id"]) if c["api"] in ("rest", "soap")][1:]


def test_a_contact_with_a_company_gets_a_new_account_in_two_api_calls(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    enable(business, record_type="Contact")
    sync = send(business, **PERSON)

    assert sync.status == SyncStatus.CREATED
    (account,) = accounts(control, org)
    (contact,) = contacts(control, org)
    assert account["Name"] == "Lee Bakery"
    assert (sync.sobject, sync.record_id) == ("Contact", contact["Id"])
    assert contact["AccountId"] == account["Id"]
    attempt = sync.attempts.get()
    assert attempt.api_calls == 2
    assert attempt.detail["account"] == {"id": account["Id"], "created": True}
    # The look-up (people and Account together) and the Account + Contact create: two
    # Composite calls, nothing else.
    paths = [c["path"].rstrip("/").rsplit("/", 1)[-1] for c in data_calls(control, org)]
    assert paths == ["composite", "composite"]
    assert leads(control, org) == []


def test_a_second_person_of_the_company_in_other_letter_case_joins_its_account(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    enable(business, record_type="Contact")
    first = send(business, **PERSON)
    second = send(business, "inq-2", **BOB, company="  LEE   bakery ")

    assert second.status == SyncStatus.CREATED
    (account,) = accounts(control, org)
    by_id = {c["Id"]: c for c in contacts(control, org)}
    assert len(by_id) == 2
    assert by_id[first.record_id]["AccountId"] == account["Id"]
    assert by_id[second.record_id]["AccountId"] == account["Id"]
    attempt = second.attempts.get()
    assert attempt.api_calls == 2  # the look-up found the Account; one create
    assert attempt.detail["account"] == {"id": account["Id"], "created": False}


def test_without_a_company_a_contact_has_no_account(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business, record_type="Contact")
    sync = send(business, **{**PERSON, "company": "   "})

    assert sync.status == SyncStatus.CREATED
    (contact,) = contacts(control, org)
    assert not contact.get("AccountId")
    assert accounts(control, org) == []
    assert "account" not in sync.attempts.get().detail
    assert sync.attempts.get().api_calls == 2


def test_an_existing_account_of_that_name_is_reused_the_oldest_first(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    def seed(name: str, year: int) -> str:
        created = f"{year}-01-01T00:00:00.000+0000"
        return control.insert_record(
            org["org_id"], "Account", {"Name": name, "CreatedDate": created}
        )

    newer = seed("Lee Bakery", 2023)
    oldest = seed("lee bakery", 2020)
    seed("Lee Bakery Inc", 2019)
    enable(business, record_type="Contact")
    sync = send(business, **PERSON)

    (contact,) = contacts(control, org)
    assert contact["AccountId"] == oldest != newer
    assert len(accounts(control, org)) == 3  # none created
    attempt = sync.attempts.get()
    assert attempt.api_calls == 2
    assert attempt.detail["account"] == {"id": oldest, "created": False}


def test_updates_never_change_a_contacts_account(business, connection, control, org):  # type: ignore[no-untyped-def]
    other = control.insert_record(org["org_id"], "Account", {"Name": "Other Co"})
    enable(business, record_type="Contact")
    sync = send(business, **PERSON)
    (account,) = [a for a in accounts(control, org) if a["Name"] == "Lee Bakery"]

    # The linked Contact is updated with a new company: its Account stays.
    sync = send(business, company="Other Co", city="Shelbyville")
    assert sync.status == SyncStatus.UPDATED
    contact = control.record(org["org_id"], "Contact", sync.record_id)
    assert (contact["AccountId"], contact["MailingCity"]) == (account["Id"], "Shelbyville")
    assert other != account["Id"]

    # A matched private Contact (another inquiry, same email) is updated and stays private.
    private = control.insert_record(
        org["org_id"], "Contact", {"LastName": "Ray", "Email": "bob@example.com"}
    )
    matched = send(business, "inq-2", **BOB, company="Lee Bakery")
    assert (matched.status, matched.record_id) == (SyncStatus.UPDATED, private)
    assert not control.record(org["org_id"], "Contact", private).get("AccountId")
    assert len(accounts(control, org)) == 2


def test_a_refused_contact_leaves_no_orphan_account_and_a_retry_creates_both(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    user_id = connection.user_id
    control.set_user_permissions(org["org_id"], user_id, cannot_create=["Contact"])
    enable(business, record_type="Contact")
    sync = send(business, **PERSON)

    assert sync.status == SyncStatus.FAILED
    assert sync.error_code == "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"
    # allOrNone: the Account created in the same call was rolled back, and its claim released.
    assert accounts(control, org) == []
    assert contacts(control, org) == []
    assert not SalesforcePerson.objects.filter(match_key__startswith="account:").exists()

    control.set_user_permissions(org["org_id"], user_id, cannot_create=[])
    sync_retry(sync=sync)
    run(sync.inquiry)
    sync = sync_of(sync.inquiry)
    assert sync.status == SyncStatus.CREATED
    (account,) = accounts(control, org)
    (contact,) = contacts(control, org)
    assert contact["AccountId"] == account["Id"]


def test_through_soap_the_account_and_the_contact_are_two_calls(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business, record_type="Contact", header_options="EmailHeader,triggerUserEmail,true")
    sync = send(business, **PERSON)

    assert sync.status == SyncStatus.CREATED
    (account,) = accounts(control, org)
    (contact,) = contacts(control, org)
    assert contact["AccountId"] == account["Id"]
    attempt = sync.attempts.get()
    assert (attempt.api_calls, attempt.detail["api"]) == (3, "soap")
    # The Account carries no SOAP header of the source (no assignment, no email): plain REST,
    # never auto-assigned; the Contact goes through SOAP with the source's EmailHeader.
    account_call, contact_call = data_calls(control, org)[1:]
    assert account_call["api"] == "rest" and "/sobjects/Account" in account_call["path"]
    assert account_call["headers"]["Sforce-Auto-Assign"] == "FALSE"
    assert contact_call["api"] == "soap"


def test_an_account_whose_create_answer_was_lost_is_found_not_created_again(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    enable(business, record_type="Contact", header_options="EmailHeader,triggerUserEmail,true")
    control.add_fault(
        org["org_id"], "drop_after_processing", count=1, path_contains="/sobjects/Account"
    )
    sync = send(business, **PERSON)
    assert sync.status == SyncStatus.RETRYING
    assert len(accounts(control, org)) == 1  # created, but we never heard so

    run(sync.inquiry)
    sync = sync_of(sync.inquiry)
    assert sync.status == SyncStatus.CREATED
    (account,) = accounts(control, org)
    (contact,) = contacts(control, org)
    assert contact["AccountId"] == account["Id"]
    assert sync.attempts.order_by("-pk").first().detail["account"]["id"] == account["Id"]


def test_leads_keep_their_company_and_make_no_account(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business)
    sync = send(business, **PERSON)
    (lead,) = leads(control, org)
    assert lead["Company"] == "Lee Bakery"
    assert accounts(control, org) == []
    assert sync.attempts.get().api_calls == 2


def test_a_refused_account_fails_the_sync_with_the_accounts_reason(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    control.set_user_permissions(org["org_id"], connection.user_id, cannot_create=["Account"])
    enable(business, record_type="Contact")
    sync = send(business, **PERSON)

    assert sync.status == SyncStatus.FAILED
    assert sync.error_code == "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"
    assert sync.error_message.startswith(
        "Salesforce refused the Account 'Lee Bakery' for this Contact: "
    )
    assert accounts(control, org) == [] and contacts(control, org) == []


@pytest.mark.parametrize(
    "header_options", ["", "EmailHeader,triggerUserEmail,true"], ids=["rest", "soap"]
)
def test_an_account_blocked_by_a_duplicate_rule_is_replaced_by_the_account_it_names(
    business, connection, control, org, header_options
):  # type: ignore[no-untyped-def]
    """The look-up finds Accounts by exact Name; the org's matching rule also knows "Lee
    Bakery, Inc." is "Lee Bakery" and blocks a second Account. The Contact joins the named one."""
    existing = control.insert_record(org["org_id"], "Account", {"Name": "Lee Bakery, Inc."})
    control.set_duplicate_rule(org["org_id"], "Account", match_fields=["Name"], allow_save=False)
    enable(business, record_type="Contact", header_options=header_options)
    sync = send(business, **PERSON)

    assert sync.status == SyncStatus.CREATED
    (account,) = accounts(control, org)
    (contact,) = contacts(control, org)
    assert account["Id"] == existing and contact["AccountId"] == existing
    attempt = sync.attempts.get()
    assert attempt.api_calls == 3  # the look-up, the refused Account (+ Contact), the Contact
    assert attempt.detail["account"] == {"id": existing, "created": False}

    # The company's claim now points at that Account: the next person of the company joins it
    # without asking Salesforce to create an Account again.
    second = send(business, "inq-2", **BOB, company="Lee Bakery")
    assert second.status == SyncStatus.CREATED
    assert [c["AccountId"] for c in contacts(control, org)] == [existing, existing]
    assert len(accounts(control, org)) == 1
    assert second.attempts.get().api_calls == 2
