"""The engine in one process against the emulator over HTTPS: our infrastructure failing is
retried, the per-org circuit breaker, drains of many inquiries, the API budget, the sweeper.

Worker-level behaviour (a real Celery worker, killed workers, fairness) is in
test_worker_engine.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.core import mail
from django.db import connection as db_connection
from django.utils import timezone

import integrations.salesforce.tasks  # noqa: F401  (registers the tasks the sweeper sends)
from autorespond.celery import app
from autorespond.models import Inquiry
from integrations.salesforce.models import (
    InquirySync,
    SalesforceConnection,
    SalesforcePerson,
    SyncStatus,
)
from integrations.salesforce.sync.places import DrainSlot
from integrations.salesforce.sync.runner import sync_drain_run, sync_inquiry_run
from integrations.salesforce.sync.scheduling import lease_due_syncs, syncs_sweep
from tests.factories import SourceFactory
from tests.integrations.salesforce.sync.redis_support import own_redis  # noqa: F401  (fixture)
from tests.integrations.salesforce.sync_support import (  # noqa: F401  (fixtures)
    PERSON,
    connection,
    enable,
    leads,
    run,
    send,
    sync_of,
    upsert,
)

pytestmark = pytest.mark.django_db


def rest_calls(control: Any, org: dict[str, Any]) -> int:
    """The org's data API calls, from the emulator's own log (less the connection's one read of
    the org's schema, which `connect_source` makes first)."""
    return len([c for c in control.calls(org["org_id"]) if c.get("api") in ("rest", "soap")][1:])


def person(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "first_name": f"P{n}",
        "last_name": "Lee",
        "email": f"p{n}@example.com",
        "phone": f"(415) 555-{n:04d}",
        **extra,
    }


# --------------------------------------------------------------------------- our infrastructure


def test_a_redis_error_inside_the_person_lock_is_retried_then_created(
    own_redis, settings, business, connection, control, org
):  # type: ignore[no-untyped-def]
    settings.REDIS_URL = own_redis.url
    enable(business)
    inquiry = upsert(business, **PERSON)
    own_redis.stop()  # Redis dies between the request and the sync

    result = run(inquiry)
    sync = sync_of(inquiry)
    assert result is not None
    assert sync.status == SyncStatus.RETRYING
    assert sync.error_code == "REDIS_UNAVAILABLE"
    assert "Redis" in sync.error_message
    assert timezone.now() < sync.due_at <= timezone.now() + dt.timedelta(seconds=31)
    assert leads(control, org) == []

    own_redis.start()
    run(inquiry)
    sync = sync_of(inquiry)
    (lead,) = leads(control, org)
    assert (sync.status, sync.record_id) == (SyncStatus.CREATED, lead["Id"])
    assert [a.outcome for a in sync.attempts.order_by("id")] == ["retrying", "created"]


def test_our_infrastructure_failing_never_fails_a_sync_for_good(
    own_redis, settings, business, connection, control, org
):  # type: ignore[no-untyped-def]
    """However often Redis is down, the sync keeps retrying (no `failed`, no give-up)."""
    settings.REDIS_URL = own_redis.url
    enable(business)
    inquiry = upsert(business, **PERSON)
    own_redis.stop()
    for _ in range(6):
        run(inquiry)
    sync = sync_of(inquiry)
    assert sync.status == SyncStatus.RETRYING and sync.due_at is not None
    assert sync.attempt_count == 6


def test_a_database_error_during_a_sync_is_retried_within_seconds(
    postgres, business, connection, control, org
):  # type: ignore[no-untyped-def]
    """Issue 11: a transient database error (here another session holds a lock our write
    waits for past its lock timeout) is retried in seconds and the status says so."""
    enable(business)
    inquiry = upsert(business, **PERSON)
    db = db_connection.settings_dict
    other = psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"],
        dbname=db["NAME"], autocommit=False,
    )  # fmt: skip
    try:
        # Readers pass, writers of the claims table wait.
        other.execute(f"LOCK TABLE {SalesforcePerson._meta.db_table} IN SHARE MODE")
        with db_connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '300ms'")
        run(inquiry)
    finally:
        other.rollback()
        other.close()
        with db_connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = 0")
    sync = sync_of(inquiry)
    assert (sync.status, sync.error_code) == (SyncStatus.RETRYING, "DATABASE_UNAVAILABLE")
    assert "database" in sync.error_message
    assert sync.due_at <= timezone.now() + dt.timedelta(seconds=3)
    assert leads(control, org) == []

    run(inquiry)
    assert sync_of(inquiry).status == SyncStatus.CREATED
    assert len(leads(control, org)) == 1


# --------------------------------------------------------------------------- circuit breaker


def test_an_outage_pauses_the_whole_org_and_one_probe_releases_every_sync(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    enable(business)
    control.add_fault(org["org_id"], "server_unavailable")  # until cleared
    inquiries = [upsert(business, f"inq-{n}", **person(n)) for n in range(5)]

    sync_inquiry_run(inquiry_id=inquiries[0].pk)
    first = sync_of(inquiries[0])
    assert (first.status, first.error_code) == (SyncStatus.RETRYING, "SERVER_UNAVAILABLE")
    connection.refresh_from_db()
    assert connection.unavailable_since is not None

    # The others do not call Salesforce at all: they wait for the org's probe.
    for inquiry in inquiries[1:]:
        sync_inquiry_run(inquiry_id=inquiry.pk)
        sync = sync_of(inquiry)
        assert (sync.status, sync.error_code) == (SyncStatus.RETRYING, "SALESFORCE_UNAVAILABLE")
        assert sync.error_message.startswith("Salesforce unavailable since ")
        assert sync.attempt_count == 0  # waiting is not a failure of the sync
        assert sync.due_at >= connection.breaker_probe_at
    assert rest_calls(control, org) == 1

    # The probe's time comes: one call, still down, the next probe further away.
    run(inquiries[1])
    connection.refresh_from_db()
    assert rest_calls(control, org) == 2
    assert connection.breaker_failed_probes == 1
    assert connection.breaker_probe_at >= timezone.now() + dt.timedelta(seconds=8)
    probed = sync_of(inquiries[1])
    assert (probed.error_code, probed.attempt_count) == ("SALESFORCE_UNAVAILABLE", 0)
    assert probed.attempts.order_by("-id").first().detail["cause"] == "SERVER_UNAVAILABLE"

    control.clear_faults(org["org_id"])
    run(inquiries[1])  # the probe gets through
    connection.refresh_from_db()
    assert connection.unavailable_since is None
    assert sync_of(inquiries[1]).status == SyncStatus.CREATED
    # Every waiting sync of the org is due now, not at its own backoff.
    for inquiry in inquiries[2:]:
        assert sync_of(inquiry).due_at <= timezone.now()
    for inquiry in inquiries:
        sync_inquiry_run(inquiry_id=inquiry.pk)
    assert {s.status for s in InquirySync.objects.all()} == {SyncStatus.CREATED}
    assert len(leads(control, org)) == 5


def test_the_breaker_is_per_org_and_shared_by_every_connection_of_the_org(
    business, connection, control, org, emulator
):  # type: ignore[no-untyped-def]
    other_org = control.create_org(
        "Other", client_id="x", client_secret="y", callback_urls=["http://x/"], auto_approve=True
    )
    other_source = SourceFactory(slug="other", name="Other")
    SalesforceConnection.objects.create(
        source=other_source,
        login_url=connection.login_url,
        instance_url=connection.instance_url,
        org_id=other_org["org_id"],
        user_id="005x",
        access_token="t",
    )
    second = SalesforceConnection.objects.create(
        source=SourceFactory(slug="second", name="Second"),
        login_url=connection.login_url,
        instance_url=connection.instance_url,
        org_id=connection.org_id,
        user_id="005y",
        access_token="t",
    )
    enable(business)
    control.add_fault(org["org_id"], "server_unavailable", count=1)
    send(business, **PERSON)
    second.refresh_from_db()
    assert second.unavailable_since is not None
    assert SalesforceConnection.objects.get(source=other_source).unavailable_since is None


# --------------------------------------------------------------------------- drains


def test_a_drain_syncs_many_inquiries_in_a_handful_of_calls(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business)
    for n in range(40):
        upsert(business, f"inq-{n}", **person(n))

    assert sync_drain_run(source_id=business.pk) == 40
    assert len(leads(control, org)) == 40
    assert set(InquirySync.objects.values_list("status", flat=True)) == {SyncStatus.CREATED}
    # Look-ups in Composite calls, the creates in one sObject Collections call.
    assert rest_calls(control, org) <= 4
    attempts = [s.attempts.get() for s in InquirySync.objects.all()]
    assert sum(a.api_calls for a in attempts) == rest_calls(control, org)
    assert attempts[0].detail["batch"]["size"] == 40


def test_a_drains_creates_updates_and_followers_go_in_one_write_call(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    """Issue 12: a batch's creates, its updates of known people and a new person's second
    inquiry are written in ONE Composite call (sObject Collections inside, allOrNone false):
    a look-up and a write for the whole batch."""
    enable(business)
    for n in range(5):
        upsert(business, f"known-{n}", **person(n))
    sync_drain_run(source_id=business.pk)
    before = rest_calls(control, org)
    for n in range(5):  # updates of the known people
        upsert(business, f"known-{n}", **person(n, city="Shelbyville"))
    for n in range(10, 15):  # new people, one of them twice
        upsert(business, f"new-{n}", **person(n))
    upsert(business, "new-10-again", **person(10, city="Ogdenville"))
    assert sync_drain_run(source_id=business.pk) == 11
    calls = [c for c in control.calls(org["org_id"]) if c.get("api") in ("rest", "soap")]
    assert rest_calls(control, org) - before == 2, [c["path"] for c in calls[-4:]]
    assert set(InquirySync.objects.values_list("status", flat=True)) == {
        SyncStatus.CREATED,
        SyncStatus.UPDATED,
    }
    by_email = {lead["Email"]: lead for lead in leads(control, org)}
    assert len(by_email) == 10
    assert by_email["p10@example.com"]["City"] == "Ogdenville"
    assert {by_email[f"p{n}@example.com"]["City"] for n in range(5)} == {"Shelbyville"}


def test_two_inquiries_of_one_person_in_one_drain_make_one_record_in_one_pass(
    business, connection, control, org, settings
):  # type: ignore[no-untyped-def]
    """The second inquiry of a new person follows the first: it updates the record the first
    creates, in the same pass and in the same call (the update references the create)."""
    settings.SYNC_DRAIN_SECONDS = 0  # one batch per drain task
    enable(business)
    upsert(business, "a", **PERSON)
    upsert(
        business,
        "b",
        **{**PERSON, "email": "ANN@example.com", "phone": "415.555.1212", "city": "Shelbyville"},
    )
    assert sync_drain_run(source_id=business.pk) == 2
    (lead,) = leads(control, org)
    rows = list(InquirySync.objects.values_list("status", "record_id"))
    assert sorted(rows) == [("created", lead["Id"]), ("updated", lead["Id"])]
    assert lead["City"] == "Shelbyville"  # the second inquiry's values, written after the first
    second = InquirySync.objects.get(inquiry__external_id="b")
    assert list(second.attempts.values_list("outcome", flat=True)) == ["updated"]
    assert second.detail["link"] == "matched"
    # A look-up, then one Composite call: the create and the update that references it.
    assert rest_calls(control, org) == 2


def known_lead(control: Any, org: dict[str, Any]) -> None:
    """The org already has PERSON as a Lead (made in Salesforce, not by us)."""
    control.insert_record(
        org["org_id"],
        "Lead",
        {"FirstName": "Ann", "LastName": "Lee", "Company": "Lee Bakery", "Email": PERSON["email"]},
    )


def test_two_inquiries_of_one_known_person_in_one_drain_update_the_record_one_after_the_other(
    business, connection, control, org, settings
):  # type: ignore[no-untyped-def]
    """Two inquiries of a person the org already has, in one batch: one Collections request
    must not name a record twice, so the second follows the first: its update goes after the
    first's, in the same write call (a look-up and one Composite call for both), and the record
    ends with the second's values."""
    settings.SYNC_DRAIN_SECONDS = 0  # one batch per drain task
    known_lead(control, org)
    enable(business)
    first = upsert(business, "a", **{**PERSON, "city": "Springfield"})
    second = upsert(business, "b", **{**PERSON, "city": "Shelbyville"})
    before = rest_calls(control, org)
    assert sync_drain_run(source_id=business.pk) == 2
    assert sync_of(first).status == sync_of(second).status == SyncStatus.UPDATED
    (lead,) = leads(control, org)
    assert lead["City"] == "Shelbyville"
    assert sync_of(first).record_id == sync_of(second).record_id == lead["Id"]
    assert rest_calls(control, org) - before == 2  # the look-up, then one Composite call


def test_more_updates_of_one_record_than_may_follow_wait_a_pass(
    business, connection, control, org, settings
):  # type: ignore[no-untyped-def]
    """Past the followers one call takes for a record, the next inquiry of the same known
    person waits a pass (PERSON_BUSY, saying why) and is then written after the others."""
    settings.SYNC_DRAIN_SECONDS = 0
    known_lead(control, org)
    enable(business)
    cities = ["Springfield", "Shelbyville", "Ogdenville", "North Haverbrook", "Capital City"]
    syncs = [upsert(business, f"i{n}", **{**PERSON, "city": city}) for n, city in enumerate(cities)]
    assert sync_drain_run(source_id=business.pk) == 5
    statuses = [sync_of(inquiry).status for inquiry in syncs]
    assert statuses == [SyncStatus.UPDATED] * 4 + [SyncStatus.RETRYING]
    waiting = sync_of(syncs[-1])
    assert (waiting.error_code, waiting.error_message) == (
        "PERSON_BUSY",
        "Another inquiry of this person is written to the same record first.",
    )
    assert leads(control, org)[0]["City"] == "North Haverbrook"
    InquirySync.objects.filter(inquiry=syncs[-1]).update(due_at=timezone.now())
    sync_drain_run(source_id=business.pk)
    assert sync_of(syncs[-1]).status == SyncStatus.UPDATED
    (lead,) = leads(control, org)
    assert lead["City"] == "Capital City"


def test_two_people_sharing_a_phone_in_one_drain_are_two_records(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    """Another email on the same line is another person (matching's rule 3): the second does
    not follow the first's record; it waits for the first, then gets its own."""
    enable(business)
    upsert(business, "a", **PERSON)
    upsert(business, "b", **{**PERSON, "first_name": "Bo", "email": "bo@example.com"})
    sync_drain_run(source_id=business.pk)
    found = sorted(lead["Email"] for lead in leads(control, org))
    assert found == ["ann@example.com", "bo@example.com"]
    assert set(InquirySync.objects.values_list("status", flat=True)) == {SyncStatus.CREATED}


def test_a_follower_whose_leaders_create_is_refused_waits_and_syncs_on_its_own(
    business, connection, control, org, settings
):  # type: ignore[no-untyped-def]
    """The first inquiry's record is refused (a blocking duplicate rule on name and company
    names someone else): the second one, which followed it, is not failed with it; it comes
    back a moment later and is written by itself."""
    settings.SYNC_DRAIN_SECONDS = 0  # one batch per drain task
    control.insert_record(
        org["org_id"],
        "Lead",
        {"FirstName": "Ann", "LastName": "Lee", "Company": "Lee Bakery", "Email": "x@old.example"},
    )
    control.set_duplicate_rule(
        org["org_id"], "Lead", match_fields=["NameAndCompany"], allow_save=False, name="Name_Co"
    )
    enable(business)
    first = upsert(business, "a", **PERSON)
    second = upsert(business, "b", **{**PERSON, "company": "Lee Cakes"})
    sync_drain_run(source_id=business.pk)
    assert sync_of(first).status == SyncStatus.BLOCKED_DUPLICATE
    assert sync_of(second).status == SyncStatus.RETRYING
    assert sync_of(second).error_code == "PERSON_BUSY"
    InquirySync.objects.filter(inquiry=second).update(due_at=timezone.now())
    sync_drain_run(source_id=business.pk)
    assert sync_of(second).status == SyncStatus.CREATED
    assert sorted(lead["Company"] for lead in leads(control, org)) == ["Lee Bakery", "Lee Cakes"]


def test_a_drain_goes_on_with_what_became_due_meanwhile(business, connection, control, org):  # type: ignore[no-untyped-def]
    """Up to three more inquiries of a new person follow its create, updating the record in
    that order in the same call; a fifth waits for the record (a retry half a second later),
    and the same drain task takes it in its next batch and updates that record."""
    enable(business)
    upsert(business, "a", **PERSON)
    upsert(business, "b", **{**PERSON, "email": "ANN@example.com", "phone": "415.555.1212"})
    for name in ("c", "d", "e"):
        upsert(business, name, **{**PERSON, "city": f"City {name}"})
    assert sync_drain_run(source_id=business.pk) == 6  # a to e, then e again
    (lead,) = leads(control, org)
    rows = list(InquirySync.objects.values_list("status", "record_id"))
    assert sorted(rows) == [("created", lead["Id"])] + [("updated", lead["Id"])] * 4
    assert lead["City"] == "City e"
    fifth = InquirySync.objects.get(inquiry__external_id="e")
    assert list(fifth.attempts.order_by("pk").values_list("outcome", flat=True)) == [
        "retrying",
        "updated",
    ]
    # The first pass: a look-up and one write; the second: a look-up and the update.
    assert rest_calls(control, org) == 4


def test_a_drains_new_contacts_make_their_accounts_in_one_call_and_each_company_once(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    enable(business, record_type="Contact")
    for n in range(6):  # three companies, two new people each
        upsert(business, f"inq-{n}", **person(n, company=f"Shop {n % 3}"))
    sync_drain_run(source_id=business.pk)
    InquirySync.objects.filter(status="retrying").update(due_at=timezone.now())
    sync_drain_run(source_id=business.pk)  # the second person of each company joins it
    accounts = control.records(org["org_id"], "Account")
    assert sorted(a["Name"] for a in accounts) == ["Shop 0", "Shop 1", "Shop 2"]
    found = control.records(org["org_id"], "Contact")
    assert len(found) == 6
    by_name = {a["Id"]: a["Name"] for a in accounts}
    assert (
        sorted(by_name[c["AccountId"]] for c in found)
        == ["Shop 0"] * 2 + ["Shop 1"] * 2 + ["Shop 2"] * 2
    )
    assert set(InquirySync.objects.values_list("status", flat=True)) == {SyncStatus.CREATED}
    # Look-up, Accounts, Contacts; then look-up and Contacts for the second people.
    assert rest_calls(control, org) <= 5


def test_a_drains_new_contacts_and_their_accounts_are_written_in_one_call(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    """New Contacts of new companies: each Account and its Contact (joining it by reference)
    go in the batch's one Composite call."""
    enable(business, record_type="Contact")
    for n in range(3):
        upsert(business, f"inq-{n}", **person(n, company=f"Shop {n}"))
    sync_drain_run(source_id=business.pk)
    accounts = {a["Id"]: a["Name"] for a in control.records(org["org_id"], "Account")}
    assert sorted(accounts.values()) == ["Shop 0", "Shop 1", "Shop 2"]
    contacts = control.records(org["org_id"], "Contact")
    assert sorted(accounts[c["AccountId"]] for c in contacts) == ["Shop 0", "Shop 1", "Shop 2"]
    assert set(InquirySync.objects.values_list("status", flat=True)) == {SyncStatus.CREATED}
    assert rest_calls(control, org) == 2  # the look-up and the one write


def test_one_record_refused_in_the_one_write_call_fails_alone(business, connection, control, org):  # type: ignore[no-untyped-def]
    """Issue 12: in a batch written in one Composite call (creates and updates), the record
    Salesforce refuses (a blocking duplicate rule on name and company names someone else)
    stops only its own inquiry; every other record of the call is written."""
    enable(business)
    for n in range(3):
        upsert(business, f"known-{n}", **person(n))
    sync_drain_run(source_id=business.pk)
    control.insert_record(
        org["org_id"],
        "Lead",
        {"FirstName": "Pat", "LastName": "Reed", "Company": "Acme", "Email": "pat@old.example"},
    )
    control.set_duplicate_rule(
        org["org_id"], "Lead", match_fields=["NameAndCompany"], allow_save=False, name="Name_Co"
    )
    for n in range(3):
        upsert(business, f"known-{n}", **person(n, city="Shelbyville"))
    for n in range(10, 13):
        upsert(business, f"new-{n}", **person(n, last_name=f"Lee{n}"))
    bad = upsert(
        business, "bad", first_name="Pat", last_name="Reed", company="Acme", email="pat@new.example"
    )
    sync_drain_run(source_id=business.pk)
    assert sync_of(bad).status == SyncStatus.BLOCKED_DUPLICATE
    others = InquirySync.objects.exclude(inquiry=bad)
    assert sorted(others.values_list("status", flat=True)) == ["created"] * 3 + ["updated"] * 3
    cities = {lead["Email"]: lead["City"] for lead in leads(control, org)}
    assert {cities[f"p{n}@example.com"] for n in range(3)} == {"Shelbyville"}
    assert {f"p{n}@example.com" for n in range(10, 13)} <= cities.keys()


def test_a_drain_whose_source_needs_soap_writes_the_batch_in_one_soap_call(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    enable(business, header_options="EmailHeader,triggerAutoResponseEmail,true")
    for n in range(5):
        upsert(business, f"inq-{n}", **person(n))
    sync_drain_run(source_id=business.pk)
    assert len(leads(control, org)) == 5
    # The connection's one read of the org's schema (connect_source) first, then the drain's.
    calls = [c for c in control.calls(org["org_id"]) if c.get("api") in ("rest", "soap")][1:]
    assert [c["api"] for c in calls] == ["rest", "soap"]  # one look-up, one SOAP create
    assert {a.detail["api"] for s in InquirySync.objects.all() for a in s.attempts.all()} == {
        "soap"
    }


def test_one_bad_field_in_a_drain_is_left_out_of_its_own_record_only(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    """Issue 13: an email Salesforce refuses no longer fails the record; it is left out of that
    record alone, with a note, and the batch's other records are untouched by it."""
    enable(business)
    for n in range(5):
        upsert(business, f"inq-{n}", **person(n))
    bad = upsert(business, "bad", **person(9, email="p9@localhost"))
    sync_drain_run(source_id=business.pk)
    assert sync_of(bad).status == SyncStatus.CREATED
    assert [i["field"] for i in sync_of(bad).detail["left_out"]] == ["Email"]
    others = InquirySync.objects.exclude(inquiry=bad)
    assert set(others.values_list("status", flat=True)) == {SyncStatus.CREATED}
    assert all(not s.detail.get("left_out") for s in others)
    assert len(leads(control, org)) == 6


def test_one_record_salesforce_refuses_in_a_drain_fails_alone(business, connection, control, org):  # type: ignore[no-untyped-def]
    """Issue 12: one record of a batch that Salesforce refuses (here a blocking duplicate rule
    on name and company names someone else) stops only its own inquiry; the batch's other
    records are written in the same calls."""
    namesake = {
        "FirstName": "Pat",
        "LastName": "Reed",
        "Company": "Acme",
        "Email": "pat@old.example",
    }
    other_id = control.insert_record(org["org_id"], "Lead", dict(namesake))
    control.set_duplicate_rule(
        org["org_id"], "Lead", match_fields=["NameAndCompany"], allow_save=False, name="Name_Co"
    )
    enable(business)
    for n in range(5):
        upsert(business, f"inq-{n}", **person(n))
    bad = upsert(
        business, "bad", first_name="Pat", last_name="Reed", company="Acme", email="pat@new.example"
    )
    sync_drain_run(source_id=business.pk)
    assert sync_of(bad).status == SyncStatus.BLOCKED_DUPLICATE
    others = InquirySync.objects.exclude(inquiry=bad)
    assert set(others.values_list("status", flat=True)) == {SyncStatus.CREATED}
    assert len(leads(control, org)) == 6  # the namesake and the batch's five
    assert {
        k: v
        for k, v in next(r for r in leads(control, org) if r["Id"] == other_id).items()
        if k in namesake
    } == namesake


def test_a_drain_takes_the_syncs_of_locations_that_inherit_and_none_of_other_orgs(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    enable(business)
    east = SourceFactory(slug="east", name="East", parent=business)
    enable(east, inherit_from_parent=True, enabled=False)
    own = SourceFactory(slug="own", name="Own", parent=business)  # its own (disabled) card
    upsert(business, "a", **person(1))
    upsert(east, "b", **person(2))
    other = upsert(own, "c", **person(3))
    assert sync_drain_run(source_id=east.pk) == 2
    assert len(leads(control, org)) == 2
    assert sync_of(other).status == SyncStatus.PENDING


def test_concurrent_leases_never_take_one_row_twice(postgres, business, connection):  # type: ignore[no-untyped-def]
    for n in range(10):
        upsert(business, f"inq-{n}", **person(n))
    first = lease_due_syncs(source_ids=[business.pk], limit=6, token="a")
    second = lease_due_syncs(source_ids=[business.pk], limit=6, token="b")
    assert len(first) == 6 and len(second) == 4
    assert not set(first) & set(second)
    assert lease_due_syncs(source_ids=[business.pk], limit=6, token="c") == []


# --------------------------------------------------------------------------- API budget


def test_the_budget_warns_once_pauses_and_resumes_by_itself(
    business, owner, connection, control, org, settings, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    settings.SALESFORCE_USAGE_WRITE_SECONDS = 0
    enable(business)
    limit = control.api_usage(org["org_id"])["max"]
    control.set_api_usage(org["org_id"], int(limit * 0.85))
    with django_capture_on_commit_callbacks(execute=True):
        send(business, "a", **person(1))
    assert len(mail.outbox) == 1
    assert "API requests" in mail.outbox[0].subject
    assert mail.outbox[0].to == [owner.email]
    with django_capture_on_commit_callbacks(execute=True):
        send(business, "b", **person(2))
    assert len(mail.outbox) == 1  # one email, not one per sync

    control.set_api_usage(org["org_id"], int(limit * 0.96))
    send(business, "c", **person(3))  # this call reports 96 %: the org pauses
    connection.refresh_from_db()
    assert connection.budget_paused_since is not None
    calls = rest_calls(control, org)
    inquiry = upsert(business, "d", **person(4))
    sync_inquiry_run(inquiry_id=inquiry.pk)
    waiting = sync_of(inquiry)
    assert waiting.status == SyncStatus.WAITING_BUDGET
    assert waiting.due_at > timezone.now() + dt.timedelta(seconds=60)
    assert rest_calls(control, org) == calls  # nothing sent while paused

    control.set_api_usage(org["org_id"], int(limit * 0.5))  # the rolling day moved on
    run(waiting.inquiry)  # the re-check reads /limits, resumes, and sends
    connection.refresh_from_db()
    assert connection.budget_paused_since is None
    assert sync_of(waiting.inquiry).status == SyncStatus.CREATED


# --------------------------------------------------------------------------- sweeper


def queued_messages() -> int:
    """Messages waiting in this test run's Celery queue."""
    with app.connection_for_write() as conn:
        return int(conn.default_channel._size(settings.CELERY_TASK_DEFAULT_QUEUE))


def test_drains_of_small_batches_take_turns_for_a_few_places_oldest_org_first(
    redis_url, business, connection, control, org, settings
):  # type: ignore[no-untyped-def]
    """Issue 12, bursts over many orgs: while every place for small batches is taken, an org's
    drain waits in line (its inquiries stay due and join its next batch); the drain that ends
    sends the drain of the org that waited longest, and a newcomer does not jump the line."""
    settings.SYNC_SMALL_DRAINS = 1
    enable(business)
    waiting = upsert(business, "a", **PERSON)
    running = DrainSlot(owner_id=10**9, token="another-orgs-drain")
    assert running.acquire()
    try:
        assert sync_drain_run(source_id=business.pk) == 0
        assert sync_of(waiting).status == SyncStatus.PENDING
        assert not leads(control, org)
        before = queued_messages()
        running.release()  # the other org's drain ends
        assert queued_messages() == before + 1  # ours, sent at once
        newcomer = DrainSlot(owner_id=10**9 + 1, token="a-newcomer")
        assert not newcomer.acquire()  # the free place is ours
        assert sync_drain_run(source_id=business.pk) == 1
        assert sync_of(waiting).status == SyncStatus.CREATED
        assert newcomer.acquire()  # and now the newcomer's
        newcomer.release()
    finally:
        running.release()


def test_a_backlog_drains_without_waiting_for_a_place(
    redis_url, business, connection, control, org, settings
):  # type: ignore[no-untyped-def]
    """A full batch due is a backlog: its drains are bounded per org (SYNC_DRAINS_PER_ORG),
    not by the places for small batches, so they never wait behind other orgs' small ones."""
    settings.SYNC_SMALL_DRAINS = 1
    settings.SYNC_BATCH_SIZE = 3
    enable(business)
    for n in range(4):
        upsert(business, f"inq-{n}", **person(n))
    running = DrainSlot(owner_id=10**9, token="another-orgs-drain")
    assert running.acquire()
    try:
        assert sync_drain_run(source_id=business.pk) == 4
    finally:
        running.release()
    assert set(InquirySync.objects.values_list("status", flat=True)) == {SyncStatus.CREATED}


def test_two_sweeps_of_ten_thousand_due_rows_enqueue_each_row_at_most_once(redis_url, db):  # type: ignore[no-untyped-def]
    sources = [SourceFactory(slug=f"s{n}", name=f"S{n}") for n in range(20)]
    inquiries = Inquiry.objects.bulk_create(
        Inquiry(source=sources[n % 20], external_id=f"i{n}", last_name="Lee") for n in range(10_000)
    )
    past = timezone.now() - dt.timedelta(minutes=10)
    InquirySync.objects.bulk_create(
        InquirySync(inquiry=inquiry, due_at=past, enqueued_at=past, requested_version=1)
        for inquiry in inquiries
    )
    before = queued_messages()

    assert syncs_sweep() == 10_000  # one message per source covers every row
    assert syncs_sweep() == 0  # sent a moment ago: not again
    assert queued_messages() - before == 20
    stale = timezone.now() - dt.timedelta(minutes=1)
    assert not InquirySync.objects.filter(enqueued_at__lt=stale).exists()


def test_the_sweeper_skips_leased_and_recently_enqueued_rows_and_takes_the_rest(
    redis_url, business
):  # type: ignore[no-untyped-def]
    now = timezone.now()
    rows = [upsert(business, f"i{n}", last_name="Lee") for n in range(3)]
    InquirySync.objects.update(due_at=now - dt.timedelta(minutes=5))
    # 0: its message was sent just now; 1: a live worker holds it; 2: its message is old.
    InquirySync.objects.filter(inquiry=rows[0]).update(enqueued_at=now)
    InquirySync.objects.filter(inquiry=rows[1]).update(
        enqueued_at=None, lease_expires_at=now + dt.timedelta(seconds=10)
    )
    InquirySync.objects.filter(inquiry=rows[2]).update(enqueued_at=now - dt.timedelta(minutes=5))
    assert syncs_sweep() == 1
    assert sync_of(rows[2]).enqueued_at >= now


def test_the_console_shows_an_orgs_outage_and_budget_pause(staff_client, connection):  # type: ignore[no-untyped-def]
    page = staff_client.get(f"/support/salesforce/connections/{connection.pk}/").content.decode()
    assert "Salesforce unavailable since" not in page
    assert "Waiting for API budget since" not in page
    SalesforceConnection.objects.filter(pk=connection.pk).update(
        unavailable_since=timezone.now(), budget_paused_since=timezone.now()
    )
    for url in ("/support/salesforce/", f"/support/salesforce/connections/{connection.pk}/"):
        page = staff_client.get(url).content.decode()
        assert "Salesforce unavailable since" in page
        assert "Waiting for API budget since" in page
