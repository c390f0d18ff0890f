"""Drain groups: the sources that write to one Salesforce org as one Salesforce user are drained
together and share their calls, each with its own card's settings; other users and other orgs
are drained apart. Against the emulator over HTTPS, with Redis; the last test runs a real
Celery worker.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections import Counter
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from autorespond.celery import app
from autorespond.models import Source
from integrations.salesforce.models import (
    ConnectionStatus,
    InquirySync,
    SalesforceConnection,
    SyncStatus,
)
from integrations.salesforce.sync.drain_groups import drain_group
from integrations.salesforce.sync.runner import sync_drain_run
from integrations.salesforce.sync.scheduling import drain_running, enqueue_drain
from integrations.salesforce.task_queue import SYNC_DRAIN
from tests.factories import SourceFactory
from tests.integrations.salesforce.sync.test_engine import queued_messages
from tests.integrations.salesforce.sync.test_worker_sync import (
    all_done,
    wait_for,
    worker_ready,  # noqa: F401  (fixture)
)
from tests.integrations.salesforce.sync_support import (  # noqa: F401  (fixtures)
    connect_source,
    connection,
    contacts,
    enable,
    leads,
    sync_of,
    upsert,
)


def data_calls(control: Any, org: dict[str, Any]) -> list[dict[str, Any]]:
    """The org's data API calls (REST and SOAP), from the emulator's own log."""
    return [c for c in control.calls(org["org_id"]) if c.get("api") in ("rest", "soap")]


def person(n: int) -> dict[str, str]:
    return {
        "first_name": f"P{n}",
        "last_name": "Lee",
        "email": f"p{n}@example.com",
        "phone": f"(415) 555-{n:04d}",
    }


@pytest.fixture
def east(emulator, org, business, connection):  # type: ignore[no-untyped-def]
    """A location of `business` with its own card (Contacts, its own header options) and its
    own connection to the business's org, made by the same admin."""
    enable(business, record_type="Lead")
    east = SourceFactory(slug="east", name="East", parent=business)
    enable(east, record_type="Contact", inherit_from_parent=False)
    connect_source(emulator, org, east)
    return east


def both_sent(business: Source, east: Source, count: int = 5) -> None:
    for n in range(count):
        upsert(business, f"b-{n}", **person(n))
        upsert(east, f"e-{n}", **person(100 + n))


# --------------------------------------------------------------------------- in one process


@pytest.mark.django_db
def test_two_cards_connected_to_one_org_as_one_user_drain_together_in_shared_calls(
    redis_url, business, east, control, org
):  # type: ignore[no-untyped-def]
    both_sent(business, east)
    before = len(data_calls(control, org))

    assert sync_drain_run(source_id=east.pk) == 10
    # One look-up and one write for both cards (a drain per card: two of each).
    assert len(data_calls(control, org)) - before == 2
    assert sorted(r["Email"] for r in leads(control, org)) == [
        f"p{n}@example.com" for n in range(5)
    ]
    assert sorted(r["Email"] for r in contacts(control, org)) == [
        f"p{n}@example.com" for n in range(100, 105)
    ]
    for row in InquirySync.objects.select_related("inquiry"):
        expected = "Lead" if row.inquiry.source_id == business.pk else "Contact"
        assert (row.status, row.sobject) == (SyncStatus.CREATED, expected)
        assert row.attempts.get().detail["batch"] == {"size": 10, "api_calls": 2}


@pytest.mark.django_db
def test_cards_of_one_group_keep_their_own_header_options(redis_url, business, east, control, org):  # type: ignore[no-untyped-def]
    """The location's header needs SOAP, the business's does not: one look-up for both, then
    the Leads through REST and the Contacts through SOAP, each under its own card's headers."""
    enable(east, record_type="Contact", header_options="EmailHeader,triggerUserEmail,true")
    both_sent(business, east, 3)
    before = len(data_calls(control, org))

    assert sync_drain_run(source_id=business.pk) == 6
    calls = data_calls(control, org)[before:]
    assert sorted(c["api"] for c in calls) == ["rest", "rest", "soap"]
    for row in InquirySync.objects.select_related("inquiry"):
        api = "rest" if row.inquiry.source_id == business.pk else "soap"
        assert (row.status, row.attempts.get().detail["api"]) == (SyncStatus.CREATED, api)
    assert len(leads(control, org)) == 3 and len(contacts(control, org)) == 3


@pytest.mark.django_db
def test_a_groups_many_new_companies_make_their_accounts_first_and_share_one_write_call(
    redis_url, business, east, control, org
):  # type: ignore[no-untyped-def]
    """Leads of one card and more new Contacts with new companies than fit in the one write
    call two subrequests each: the Accounts are made first in one call, then every create in
    one Composite call (what did not fit cost an Accounts call and a Contacts call more)."""
    for n in range(3):
        upsert(business, f"b-{n}", **person(n))
    for n in range(16):
        upsert(east, f"e-{n}", **person(100 + n), company=f"Shop {n}")
    before = len(data_calls(control, org))

    assert sync_drain_run(source_id=business.pk) == 19
    calls = data_calls(control, org)[before:]
    assert len(calls) == 3, [c["path"] for c in calls]  # look-up, Accounts, the creates
    accounts = {a["Id"]: a["Name"] for a in control.records(org["org_id"], "Account")}
    assert sorted(accounts.values()) == sorted(f"Shop {n}" for n in range(16))
    joined = {c["Email"]: accounts[c["AccountId"]] for c in contacts(control, org)}
    assert joined == {f"p{100 + n}@example.com": f"Shop {n}" for n in range(16)}
    assert len(leads(control, org)) == 3
    assert set(InquirySync.objects.values_list("status", flat=True)) == {SyncStatus.CREATED}


@pytest.mark.django_db
def test_cards_of_one_org_connected_as_different_users_drain_apart(
    redis_url, emulator, business, east, control, org
):  # type: ignore[no-untyped-def]
    """A third card, connected to the same org by another user, is not in the group: its
    records are owned by its own user, the group's by the admin."""
    rep = control.add_user(org["org_id"], "rep@joes.example.com")
    west = SourceFactory(slug="west", name="West", parent=business)
    enable(west, record_type="Lead", inherit_from_parent=False)
    connect_source(emulator, org, west, username=rep["username"])
    both_sent(business, east, 2)
    lone = upsert(west, "w-1", **person(200))

    assert drain_group(source=west).key != drain_group(source=business).key
    assert sync_drain_run(source_id=business.pk) == 4
    assert sync_of(lone).status == SyncStatus.PENDING
    assert sync_drain_run(source_id=west.pk) == 1
    owners = {r["Email"]: r["OwnerId"] for r in [*leads(control, org), *contacts(control, org)]}
    admin = org["users"][0]["id"]
    assert owners.pop("p200@example.com") == rep["id"]
    assert set(owners.values()) == {admin}


@pytest.mark.django_db
def test_a_groups_drain_clears_the_queued_marks_of_all_its_sources(
    redis_url, business, east, control, org
):  # type: ignore[no-untyped-def]
    """Intake marks the source of each inquiry; a drain of the group must clear every mark, or a
    later inquiry of the location would wait for a message that was already consumed."""
    both_sent(business, east, 1)
    assert enqueue_drain(business.pk) and enqueue_drain(east.pk)  # what intake sends
    assert sync_drain_run(source_id=business.pk) == 2

    later = upsert(east, "e-later", **person(300))
    waiting = queued_messages()
    enqueue_drain(east.pk)  # the later inquiry's request
    assert queued_messages() == waiting + 1, "the location's mark was left: no message sent"
    assert sync_drain_run(source_id=east.pk) == 1
    assert sync_of(later).status == SyncStatus.CREATED


@pytest.mark.django_db
def test_a_drain_of_one_card_waits_while_the_groups_drain_runs(
    redis_url, business, east, control, org
):  # type: ignore[no-untyped-def]
    both_sent(business, east, 1)
    group = drain_group(source=business)
    assert drain_group(source=east) == group
    with drain_running(group.key, "a-drain-of-the-business") as (running, _renew):
        assert running == 1
        assert sync_drain_run(source_id=east.pk) == 0  # comes back in a moment
    assert set(InquirySync.objects.values_list("status", flat=True)) == {SyncStatus.PENDING}
    assert sync_drain_run(source_id=east.pk) == 2


def queued_drain_sources() -> list[int]:
    """The source named by each drain message waiting in this test run's Celery queue."""
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        key = channel.global_keyprefix + settings.CELERY_TASK_DEFAULT_QUEUE
        raw = channel.client.lrange(key, 0, -1)
    sources = []
    for message in map(json.loads, raw):
        if message["headers"]["task"] == SYNC_DRAIN:
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            sources.append(int(args[0]))
    return sources


@pytest.mark.django_db
def test_a_busy_groups_retry_names_the_cards_own_source_so_a_changed_group_still_drains_it(
    redis_url, business, east, control, org
):  # type: ignore[no-untyped-def]
    """A card's drain that finds its group running comes back in a moment, its queued mark left
    set. If the retry named the group's key (the business), and the business's connection were
    refused before it ran, the retry would drain the business alone: the location's inquiry,
    its mark still set, would wait for the sweeper."""
    upsert(east, "e-0", **person(0))
    group = drain_group(source=east)
    assert group.key == business.pk
    before = queued_drain_sources()
    with drain_running(group.key, "a-drain-of-the-business"):
        assert sync_drain_run(source_id=east.pk) == 0
    retries = list((Counter(queued_drain_sources()) - Counter(before)).elements())
    assert retries == [east.pk]

    SalesforceConnection.objects.filter(source=business).update(
        status=ConnectionStatus.NEEDS_RECONNECT
    )
    assert drain_group(source=east).key == east.pk  # the group changed meanwhile
    assert sync_drain_run(source_id=retries[0]) == 1
    assert InquirySync.objects.get().status == SyncStatus.CREATED


@pytest.mark.django_db
def test_a_refused_shared_connection_fails_only_its_own_sources_syncs(
    redis_url, settings, business, east, connection, control, org
):  # type: ignore[no-untyped-def]
    """The group writes through its first connection (the business's). When Salesforce refuses
    it, that connection waits for a reconnect, and the location's syncs come back at once
    through the location's own connection."""
    settings.SYNC_DRAIN_SECONDS = 0  # one batch per drain, to look in between
    both_sent(business, east, 2)
    SalesforceConnection.objects.filter(pk=connection.pk).update(
        access_token="revoked", refresh_token="revoked"
    )

    assert sync_drain_run(source_id=business.pk) == 4
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.NEEDS_RECONNECT
    assert SalesforceConnection.objects.get(source=east).status == ConnectionStatus.CONNECTED
    rows = InquirySync.objects.select_related("inquiry")
    theirs = [r for r in rows if r.inquiry.source_id == east.pk]
    ours = [r for r in rows if r.inquiry.source_id == business.pk]
    assert {r.status for r in ours} == {SyncStatus.WAITING_RECONNECT}
    assert {(r.status, r.error_code) for r in theirs} == {
        (SyncStatus.RETRYING, "SHARED_CONNECTION_REFUSED")
    }
    assert all(r.due_at <= timezone.now() + dt.timedelta(seconds=2) for r in theirs)

    InquirySync.objects.filter(pk__in=[r.pk for r in theirs]).update(due_at=timezone.now())
    assert sync_drain_run(source_id=east.pk) == 2
    assert {sync_of(r.inquiry).status for r in theirs} == {SyncStatus.CREATED}
    assert len(contacts(control, org)) == 2 and leads(control, org) == []


# --------------------------------------------------------------------------- a real worker


@pytest.mark.worker
@pytest.mark.timeout(120)
def test_messages_for_both_cards_at_once_run_one_drain_for_the_group(
    worker_ready, emulator, business, control, org
):  # type: ignore[no-untyped-def]
    """Intake sends one message per source; with workers free for both, only one drain of the
    group runs (the other comes back and finds nothing due), so the burst costs one look-up
    and one write."""
    control.add_fault(org["org_id"], "latency", latency_ms=300)
    enable(business, record_type="Lead")
    east = SourceFactory(slug="east", name="East", parent=business)
    enable(east, record_type="Contact", inherit_from_parent=False)
    connect_source(emulator, org, east)
    before = len(data_calls(control, org))
    both_sent(business, east, 15)  # committed: a drain message for each source
    worker = worker_ready(concurrency=4)

    wait_for(all_done(30), 60, "both cards' inquiries", worker)
    assert len(data_calls(control, org)) - before == 2
    assert len(leads(control, org)) == 15 and len(contacts(control, org)) == 15
