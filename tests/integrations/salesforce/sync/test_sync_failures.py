"""How the sync meets failures: retries with backoff for transient ones, a lost create that does
not become a duplicate, duplicate rules resolved, validation errors stored for a person to retry,
expired and revoked tokens."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from django.utils import timezone

from integrations.salesforce.models import (
    ConnectionStatus,
    InquirySync,
    SalesforceConnection,
    SalesforcePerson,
    SyncStatus,
)
from integrations.salesforce.sync.scheduling import (
    MAX_TRANSIENT_ATTEMPTS,
    RETRY_CAP_SECONDS,
    retry_cap_seconds,
    retry_delay,
    sync_retry,
)
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


# --------------------------------------------------------------------------- backoff


def test_retry_delays_grow_are_jittered_and_capped_below_the_visibility_timeout(settings):  # type: ignore[no-untyped-def]
    for attempt in range(1, 40):
        full = min(retry_cap_seconds(), 5 * 2 ** (attempt - 1))
        delay = retry_delay(attempt)
        assert full / 2 <= delay <= full
    assert retry_cap_seconds() == RETRY_CAP_SECONDS
    assert retry_cap_seconds() < settings.CELERY_VISIBILITY_TIMEOUT


# --------------------------------------------------------------------------- transient


def test_a_503_is_retried_later_and_then_creates_one_record(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business)
    control.add_fault(org["org_id"], "server_unavailable", count=1)
    sync = send(business, **PERSON)

    assert sync.status == SyncStatus.RETRYING
    assert (sync.error_code, sync.attempt_count) == ("SERVER_UNAVAILABLE", 1)
    assert timezone.now() < sync.due_at <= timezone.now() + dt.timedelta(seconds=6)
    assert leads(control, org) == []

    run(sync.inquiry)
    sync = sync_of(sync.inquiry)
    assert sync.status == SyncStatus.CREATED
    assert (sync.error_code, sync.attempt_count, sync.due_at) == ("", 0, None)
    assert len(leads(control, org)) == 1
    assert [a.outcome for a in sync.attempts.order_by("id")] == ["retrying", "created"]


def test_unable_to_lock_row_on_create_is_retried(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business)
    control.add_fault(
        org["org_id"], "unable_to_lock_row", count=1, method="POST", path_contains="sobjects/Lead"
    )
    sync = send(business, **PERSON)
    assert (sync.status, sync.error_code) == (SyncStatus.RETRYING, "UNABLE_TO_LOCK_ROW")
    run(sync.inquiry)
    assert sync_of(sync.inquiry).status == SyncStatus.CREATED
    assert len(leads(control, org)) == 1


def test_the_request_limit_waits_longer(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business)
    control.add_fault(org["org_id"], "request_limit_exceeded", count=1)
    sync = send(business, **PERSON)
    assert (sync.status, sync.error_code) == (SyncStatus.RETRYING, "REQUEST_LIMIT_EXCEEDED")
    assert sync.due_at >= timezone.now() + dt.timedelta(seconds=29)


def test_transient_failures_give_up_after_the_maximum(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business)
    inquiry = upsert(business, **PERSON)
    InquirySync.objects.filter(inquiry=inquiry).update(attempt_count=MAX_TRANSIENT_ATTEMPTS - 1)
    control.add_fault(org["org_id"], "server_unavailable", count=1)
    run(inquiry)
    sync = sync_of(inquiry)
    assert (sync.status, sync.error_code, sync.due_at) == (
        SyncStatus.FAILED,
        "SERVER_UNAVAILABLE",
        None,
    )
    # A person's Retry starts again.
    sync_retry(sync=sync)
    run(inquiry)
    assert sync_of(inquiry).status == SyncStatus.CREATED


# --------------------------------------------------------------------------- lost creates


def test_a_create_whose_answer_was_lost_is_matched_not_repeated(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business)
    control.add_fault(
        org["org_id"],
        "drop_after_processing",
        count=1,
        method="POST",
        path_contains="sobjects/Lead",
    )
    sync = send(business, **PERSON)
    assert (sync.status, sync.error_code) == (SyncStatus.RETRYING, "CONNECTION_ERROR")
    assert len(leads(control, org)) == 1  # Salesforce did create it
    assert sync.detail["pending_create"]["sobject"] == "Lead"

    run(sync.inquiry)
    sync = sync_of(sync.inquiry)
    (lead,) = leads(control, org)
    assert (sync.status, sync.record_id) == (SyncStatus.CREATED, lead["Id"])
    assert "pending_create" not in sync.detail


def test_a_lost_create_without_email_or_phone_is_found_by_name(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business)
    control.add_fault(
        org["org_id"],
        "drop_after_processing",
        count=1,
        method="POST",
        path_contains="sobjects/Lead",
    )
    sync = send(business, first_name="Ann", last_name="Lee", company="Lee Bakery")
    assert sync.status == SyncStatus.RETRYING
    run(sync.inquiry)
    sync = sync_of(sync.inquiry)
    (lead,) = leads(control, org)
    assert (sync.status, sync.record_id) == (SyncStatus.CREATED, lead["Id"])


def test_a_timeout_after_salesforce_wrote_the_record_makes_no_duplicate(
    business, connection, control, org, settings
):  # type: ignore[no-untyped-def]
    settings.SALESFORCE_HTTP_TIMEOUT = 0.5
    enable(business)
    control.add_fault(
        org["org_id"],
        "slow_response",
        count=1,
        latency_ms=1500,
        method="POST",
        path_contains="sobjects/Lead",
    )
    sync = send(business, **PERSON)
    assert (sync.status, sync.error_code) == (SyncStatus.RETRYING, "TIMEOUT")
    run(sync.inquiry)
    assert sync_of(sync.inquiry).status == SyncStatus.CREATED
    assert len(leads(control, org)) == 1


def test_a_fresh_claim_of_another_worker_makes_the_sync_wait_briefly(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    enable(business)
    claim = SalesforcePerson.objects.create(org_id=org["org_id"], match_key="email:ann@example.com")
    sync = send(business, **PERSON)
    assert (sync.status, sync.error_code) == (SyncStatus.RETRYING, "PERSON_BUSY")
    assert sync.due_at <= timezone.now() + dt.timedelta(seconds=4)
    assert leads(control, org) == []
    # No claim of ours is left behind for the phone key either.
    assert not SalesforcePerson.objects.filter(match_key="phone:+14155551212").exists()

    # The other worker died: its claim goes stale, and the sync takes it over.
    SalesforcePerson.objects.filter(pk=claim.pk).update(
        created_at=timezone.now() - dt.timedelta(hours=1)
    )
    run(sync.inquiry)
    sync = sync_of(sync.inquiry)
    assert sync.status == SyncStatus.CREATED
    claim.refresh_from_db()
    assert claim.record_id == sync.record_id


# --------------------------------------------------------------------------- duplicate rules


def _race_a_duplicate_in(control: Any, org: dict[str, Any]) -> threading.Thread:
    """Someone creates the same person in Salesforce while our look-up is on its way back."""
    control.add_fault(
        org["org_id"], "slow_response", count=1, latency_ms=600, path_contains="composite"
    )

    def insert() -> None:
        time.sleep(0.2)
        control.insert_record(
            org["org_id"],
            "Lead",
            {"LastName": "Lee", "Company": "Someone Else's Co", "Email": "ann@example.com"},
        )

    thread = threading.Thread(target=insert)
    thread.start()
    return thread


@pytest.mark.parametrize("only_new_leads", [False, True])
def test_a_duplicate_rule_blocking_the_create_is_resolved_with_the_record_it_names(
    business, connection, control, org, only_new_leads
):  # type: ignore[no-untyped-def]
    control.set_duplicate_rule(org["org_id"], "Lead", match_fields=["Email"])
    enable(business, only_new_leads=only_new_leads)
    thread = _race_a_duplicate_in(control, org)
    sync = send(business, **PERSON)
    thread.join()

    (lead,) = leads(control, org)
    assert sync.record_id == lead["Id"]
    assert sync.attempts.get().detail["match"]["reason"] == "duplicate_rule"
    if only_new_leads:
        assert sync.status == SyncStatus.SKIPPED_EXISTING
        assert lead["City"] is None
    else:
        assert sync.status == SyncStatus.UPDATED
        assert (lead["City"], lead["Company"]) == ("Springfield", "Lee Bakery")


# --------------------------------------------------------------------------- validation


def test_a_validation_error_is_stored_with_code_message_and_fields_and_can_be_retried(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    enable(business)
    # The connected user lost the permission to create Leads after connecting.
    control.set_user_permissions(org["org_id"], connection.user_id, cannot_create=["Lead"])
    sync = send(business, **PERSON)
    assert sync.status == SyncStatus.FAILED
    assert sync.error_code == "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"
    assert sync.error_message
    assert sync.due_at is None
    attempt = sync.attempts.get()
    assert (attempt.outcome, attempt.error_code) == (
        "failed",
        "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
    )
    assert not SalesforcePerson.objects.exclude(match_key__startswith="lock:").exists()

    # The Retry button runs it again (and, nothing having changed, it fails the same way).
    sync_retry(sync=sync)
    assert sync_of(sync.inquiry).due_at is not None
    run(sync.inquiry)
    assert sync_of(sync.inquiry).attempts.count() == 2

    # Once the admin gives the permission back, Retry sends it.
    control.set_user_permissions(org["org_id"], connection.user_id, cannot_create=[])
    sync_retry(sync=sync)
    run(sync.inquiry)
    sync = sync_of(sync.inquiry)
    assert sync.status == SyncStatus.CREATED
    assert (sync.error_code, sync.error_message, sync.error_fields) == ("", "", [])
    assert len(leads(control, org)) == 1


def test_unreadable_header_options_fail_with_the_parser_message(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business, header_options="EmalHeader,triggerUserEmail,true")
    sync = send(business, **PERSON)
    assert (sync.status, sync.error_code) == (SyncStatus.FAILED, "INVALID_HEADER_OPTIONS")
    assert sync.error_message == "Unknown SOAP header: 'EmalHeader'"
    assert leads(control, org) == []


# --------------------------------------------------------------------------- tokens


def test_an_expired_session_is_refreshed_once_and_the_sync_goes_on(
    business, connection, control, org
):  # type: ignore[no-untyped-def]
    enable(business)
    old_token = connection.access_token
    control.expire_access_tokens(org["org_id"])
    sync = send(business, **PERSON)
    assert sync.status == SyncStatus.CREATED
    assert len(leads(control, org)) == 1
    refreshed = SalesforceConnection.objects.get(pk=connection.pk)
    assert refreshed.access_token != old_token
    assert refreshed.status == ConnectionStatus.CONNECTED


def test_a_revoked_connection_waits_for_reconnect(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business)
    control.expire_access_tokens(org["org_id"])
    control.revoke_refresh_tokens(org["org_id"])
    sync = send(business, **PERSON)
    assert sync.status == SyncStatus.WAITING_RECONNECT
    assert sync.due_at is None
    assert leads(control, org) == []
    assert SalesforceConnection.objects.get(pk=connection.pk).status == (
        ConnectionStatus.NEEDS_RECONNECT
    )


def test_the_api_tells_a_retrying_sync_and_when_it_is_tried_again(
    business, connection, control, org, client, api_key
):  # type: ignore[no-untyped-def]
    enable(business)
    control.add_fault(org["org_id"], "server_unavailable", count=1)
    sync = send(business, **PERSON)
    url = f"/api/v1/inquiries/{business.slug}/{sync.inquiry.external_id}"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {api_key}"}

    status = client.get(url, **auth).json()["sync"]
    assert (status["status"], status["error_code"]) == ("retrying", "SERVER_UNAVAILABLE")
    assert status["failed_attempts"] == 1
    next_attempt_at = dt.datetime.fromisoformat(status["next_attempt_at"])
    assert abs(next_attempt_at - sync.due_at) < dt.timedelta(milliseconds=1)  # JSON keeps ms

    run(sync.inquiry)
    status = client.get(url, **auth).json()["sync"]
    assert (status["status"], status["failed_attempts"], status["next_attempt_at"]) == (
        "created",
        0,
        None,
    )
