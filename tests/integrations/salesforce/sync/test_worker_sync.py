"""The sync through a real Celery worker and Redis, against the emulator over HTTPS.

What only processes can show: ten concurrent inquiries of one person make one record; five
concurrent new people of one new company make one Account; a task
delivered twice makes one record; a worker killed in the middle of a create still leaves exactly
one record once the sweeper hands the sync to a new worker; Salesforce failing for a while
delays every inquiry but loses none; a change during a sync gets another pass.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings

from autorespond.celery import app
from integrations.salesforce.models import InquirySync, SyncStatus
from integrations.salesforce.sync.scheduling import syncs_sweep
from integrations.salesforce.tasks import sync_inquiry
from tests.integrations.salesforce.sync_support import (  # noqa: F401  (fixtures)
    PERSON,
    connection,
    enable,
    upsert,
)

pytestmark = [pytest.mark.worker, pytest.mark.timeout(240)]

DONE = (SyncStatus.CREATED, SyncStatus.UPDATED, SyncStatus.SKIPPED_EXISTING, SyncStatus.FAILED)


def wait_for(condition: Callable[[], Any], timeout: float, what: str, worker: Any = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    log = f"\nworker log:\n{worker.log_text()}" if worker is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{log}")


def all_done(count: int) -> Callable[[], bool]:
    def check() -> bool:
        rows = list(InquirySync.objects.values_list("status", "due_at"))
        return len(rows) == count and all(s in DONE and d is None for s, d in rows)

    return check


def purge_queue() -> None:
    """Drop messages an earlier, interrupted run may have left in this run's queue."""
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)


def worker_env(emulator: Any, **extra: str) -> dict[str, str]:
    return {
        "SALESFORCE_CA_BUNDLE": str(emulator.ca_path),
        "SALESFORCE_LOGIN_URL": emulator.login_url,
        "SALESFORCE_SANDBOX_LOGIN_URL": emulator.sandbox_login_url,
        **extra,
    }


@pytest.fixture
def worker_ready(start_worker, emulator, business, connection):  # type: ignore[no-untyped-def]
    """Enable the business's card and return a function that starts a worker on the emulator."""
    purge_queue()
    enable(business)

    def start(concurrency: int = 4, **extra: str):  # type: ignore[no-untyped-def]
        return start_worker(worker_env(emulator, **extra), concurrency=concurrency)

    return start


def test_an_inquiry_posted_to_the_api_becomes_a_lead(
    worker_ready, business, control, org, client, api_key
):  # type: ignore[no-untyped-def]
    """The whole path: ingestion API → commit → Redis → worker → Salesforce → status via API."""
    enable(business, send_job_description=True)
    worker = worker_ready(concurrency=2)
    body = {"id": "api-1", "source": business.slug, **PERSON}
    auth = {"HTTP_AUTHORIZATION": f"Bearer {api_key}"}
    posted = client.post(
        "/api/v1/inquiries", data=json.dumps(body), content_type="application/json", **auth
    )
    assert posted.status_code == 201

    def synced() -> dict[str, Any] | None:
        got = client.get(f"/api/v1/inquiries/{business.slug}/api-1", **auth).json()
        return got if got["sync"]["status"] == "created" else None

    status = wait_for(synced, 60, "the API to report the inquiry created", worker)["sync"]
    (lead,) = control.records(org["org_id"], "Lead")
    assert status["salesforce_object"] == "Lead"
    assert status["salesforce_id"] == lead["Id"]
    assert (lead["LastName"], lead["Company"], lead["Email"], lead["Description"]) == (
        "Lee",
        "Lee Bakery",
        "ann@example.com",
        "Leaking kitchen tap",
    )


def test_ten_concurrent_inquiries_from_one_person_make_one_record(
    worker_ready, business, control, org
):  # type: ignore[no-untyped-def]
    # Every call takes a little while, so the ten syncs really overlap.
    control.add_fault(org["org_id"], "latency", latency_ms=50)
    worker = worker_ready(concurrency=4)
    for n in range(10):
        upsert(business, f"inq-{n}", **PERSON)

    wait_for(all_done(10), 90, "ten syncs", worker)
    (lead,) = control.records(org["org_id"], "Lead")
    rows = list(InquirySync.objects.values_list("status", "record_id"))
    assert {record_id for _, record_id in rows} == {lead["Id"]}
    assert sorted(status for status, _ in rows) == ["created"] + ["updated"] * 9


def test_five_concurrent_new_people_of_one_new_company_make_one_account(
    worker_ready, business, control, org
):  # type: ignore[no-untyped-def]
    control.add_fault(org["org_id"], "latency", latency_ms=50)
    worker = worker_ready(concurrency=5)
    enable(business, record_type="Contact")
    companies = ["Lee Bakery", "LEE BAKERY", "lee bakery", "Lee  Bakery", " Lee Bakery "]
    for n, company in enumerate(companies):
        upsert(
            business,
            f"inq-{n}",
            first_name=f"Person{n}",
            last_name="Lee",
            email=f"person{n}@example.com",
            phone=f"(415) 555-010{n}",
            company=company,
        )

    wait_for(all_done(5), 90, "five syncs", worker)
    (account,) = control.records(org["org_id"], "Account")
    found = control.records(org["org_id"], "Contact")
    assert len(found) == 5
    assert {c["AccountId"] for c in found} == {account["Id"]}
    assert sorted(InquirySync.objects.values_list("status", flat=True)) == ["created"] * 5


def test_a_task_delivered_twice_makes_one_record(worker_ready, business, control, org):  # type: ignore[no-untyped-def]
    control.add_fault(org["org_id"], "latency", latency_ms=200)
    inquiry = upsert(business, **PERSON)  # enqueued once on commit
    sync_inquiry.delay(inquiry.pk)  # and delivered again, twice
    sync_inquiry.delay(inquiry.pk)
    worker = worker_ready(concurrency=3)

    wait_for(all_done(1), 60, "the sync", worker)
    time.sleep(1.0)  # let the duplicate deliveries finish too
    assert len(control.records(org["org_id"], "Lead")) == 1
    sync = InquirySync.objects.get(inquiry=inquiry)
    assert sync.status == SyncStatus.CREATED
    assert sync.attempts.count() == 1


def test_a_worker_killed_mid_create_still_syncs_the_inquiry_once(
    worker_ready, business, control, org
):  # type: ignore[no-untyped-def]
    # The create is slow: Salesforce takes 3 s, then writes the record, whoever is still
    # listening. Short task limits keep the dead worker's lease and locks short.
    control.add_fault(
        org["org_id"],
        "latency",
        count=1,
        latency_ms=3000,
        method="POST",
        path_contains="sobjects/Lead",
    )
    limits = {"CELERY_TASK_TIME_LIMIT": "8", "CELERY_TASK_SOFT_TIME_LIMIT": "7"}
    first = worker_ready(concurrency=1, **limits)
    inquiry = upsert(business, **PERSON)

    # The create is on its way once the sync has marked it pending.
    wait_for(
        lambda: InquirySync.objects.get(inquiry=inquiry).detail.get("pending_create"),
        30,
        "the create to be sent",
        first,
    )
    first.kill()
    sync = InquirySync.objects.get(inquiry=inquiry)
    assert sync.status == SyncStatus.PENDING and sync.lease_expires_at is not None
    wait_for(lambda: control.records(org["org_id"], "Lead"), 10, "Salesforce to write the Lead")

    second = worker_ready(concurrency=1, **limits)

    # Nothing redelivers the dead worker's message for a long while (the visibility timeout);
    # the sweeper hands the sync to the new worker once the lease has run out.
    def swept() -> bool:
        return syncs_sweep() > 0

    wait_for(swept, 30, "the lease to expire and the sweeper to re-enqueue")
    wait_for(all_done(1), 60, "the second worker", second)
    (lead,) = control.records(org["org_id"], "Lead")
    sync = InquirySync.objects.get(inquiry=inquiry)
    assert (sync.status, sync.record_id) == (SyncStatus.CREATED, lead["Id"])


def test_every_inquiry_syncs_after_salesforce_recovers(worker_ready, business, control, org):  # type: ignore[no-untyped-def]
    control.add_fault(org["org_id"], "server_unavailable")  # every call, until cleared
    worker = worker_ready(concurrency=2)
    for n in range(5):
        upsert(business, f"inq-{n}", first_name=f"P{n}", last_name="Lee",
               email=f"p{n}@example.com")  # fmt: skip

    wait_for(
        lambda: InquirySync.objects.filter(status=SyncStatus.RETRYING).count() == 5,
        30,
        "every sync to fail once",
        worker,
    )
    time.sleep(3)  # Salesforce stays down a while longer
    control.clear_faults(org["org_id"])

    wait_for(all_done(5), 90, "every sync after the recovery", worker)
    assert len(control.records(org["org_id"], "Lead")) == 5
    for sync in InquirySync.objects.all():
        assert sync.status == SyncStatus.CREATED
        outcomes = [a.outcome for a in sync.attempts.order_by("id")]
        assert outcomes[0] == "retrying" and outcomes[-1] == "created"


def test_a_change_during_a_sync_gets_another_pass(worker_ready, business, control, org):  # type: ignore[no-untyped-def]
    control.add_fault(org["org_id"], "latency", count=1, latency_ms=1500, path_contains="composite")
    worker = worker_ready(concurrency=2)
    inquiry = upsert(business, **PERSON)
    wait_for(
        lambda: InquirySync.objects.get(inquiry=inquiry).lease_expires_at,
        30,
        "the sync to start",
        worker,
    )
    upsert(business, city="Shelbyville")  # arrives while the first pass is in Salesforce

    def passes_done() -> bool:
        sync = InquirySync.objects.get(inquiry=inquiry)
        return sync.due_at is None and sync.synced_version == sync.requested_version == 2

    wait_for(passes_done, 60, "the second pass", worker)
    (lead,) = control.records(org["org_id"], "Lead")
    assert lead["City"] == "Shelbyville"
    sync = InquirySync.objects.get(inquiry=inquiry)
    assert [a.outcome for a in sync.attempts.order_by("id")] == ["created", "updated"]
