"""Validate one and Validate all from the support console, against the emulator over real HTTP.

Connections are made the way owners make them: Connect on the card, the emulator's login host
auto-approves, our callback stores the tokens it issued. A revoked grant is revoked in the
emulator, so the refusal comes from Salesforce's side of the wire.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.test import Client

from autorespond.models import Source
from integrations.salesforce.models import (
    ConnectionStatus,
    SalesforceConnection,
    StaffAction,
    StaffActionKind,
    ValidationRun,
    ValidationRunResult,
)
from integrations.salesforce.support.validation_runs import (
    validation_run_check,
    validation_run_fan_out,
    validation_run_start,
)
from tests.emulator_support import create_org
from tests.factories import MembershipFactory, SourceFactory, UserFactory
from tests.integrations.salesforce.console_support import (
    emulator_worker_env,
)
from tests.integrations.salesforce.oauth_support import (
    connect_through_emulator,
)
from tests.pages import block, messages_of, page

CONSOLE = "/support/salesforce/"
SUBJECT = "Action needed: reconnect Salesforce for Acme Roofing"


def connect_new_org(client: Client, control: Any, source: Source) -> SalesforceConnection:
    """A new emulator org (auto-approving its admin) and a real OAuth grant for `source`."""
    create_org(control, auto_approve=True)
    return connect_through_emulator(client, source)


@pytest.fixture
def three_connections(
    owner_client: Client, staff_client: Client, control: Any, business: Source, sf_settings: Any
) -> dict[str, SalesforceConnection]:
    """Joe's business, one of Joe's locations with its own org, and another business (Acme
    Roofing, owned by Rita), each connected through the emulator."""
    east = SourceFactory(slug="joes-plumbing-east", name="Joe's Plumbing East", parent=business)
    roofing = SourceFactory(slug="acme-roofing", name="Acme Roofing")
    MembershipFactory(user=UserFactory(username="rita"), business=roofing)
    connections = {
        "joes": connect_new_org(owner_client, control, business),
        "east": connect_new_org(owner_client, control, east),
        "roofing": connect_new_org(staff_client, control, roofing),
    }
    mail.outbox.clear()  # connecting sends nothing, but start from a known state
    return connections


def revoke(control: Any, connection: SalesforceConnection) -> None:
    """The org's admin revokes our app's access in Salesforce."""
    assert control.revoke_refresh_tokens(connection.org_id) >= 1


# --- Validate one ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_validate_one_checks_salesforce_and_logs_it(
    staff, staff_client: Client, three_connections: dict, control: Any
) -> None:  # type: ignore[no-untyped-def]
    connection = three_connections["joes"]
    calls_before = len(control.calls(connection.org_id))
    response = staff_client.post(
        f"{CONSOLE}connections/{connection.pk}/validate/", {"next": CONSOLE}, follow=True
    )
    assert response.redirect_chain[-1][0] == CONSOLE
    message = messages_of(response)[-1]
    assert message.startswith("Validated Joe's Plumbing: Connected as ")
    assert message.endswith("who can create Leads.")
    # Salesforce was asked (the describe call is logged in the emulator).
    assert len(control.calls(connection.org_id)) == calls_before + 1
    connection.refresh_from_db()
    assert connection.last_validation_ok is True
    assert connection.status == ConnectionStatus.CONNECTED
    action = StaffAction.objects.get()
    assert (action.actor, action.action, action.connection_id) == (
        staff,
        StaffActionKind.VALIDATED,
        connection.pk,
    )
    assert action.target == f"{connection.username} @ {connection.org_id} for Joe's Plumbing"
    assert action.detail["ok"] is True
    assert "Connected as" in block(response, f"connection-{connection.pk}")
    assert mail.outbox == []


@pytest.mark.django_db
def test_validate_a_revoked_connection_marks_it_and_emails_the_owners_once(
    staff_client: Client,
    owner_client: Client,
    three_connections: dict,
    control: Any,
    django_capture_on_commit_callbacks,
) -> None:  # type: ignore[no-untyped-def]
    connection = three_connections["roofing"]
    revoke(control, connection)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"{CONSOLE}connections/{connection.pk}/validate/", follow=True)
    message = messages_of(response)[-1]
    assert message.startswith("Validation of Acme Roofing failed: ")
    assert "invalid_grant" in message
    assert "Reconnect Salesforce on this card" in message
    connection.refresh_from_db()
    assert connection.status == ConnectionStatus.NEEDS_RECONNECT
    assert "invalid_grant" in connection.status_reason
    assert connection.last_validation_ok is False
    assert "Needs reconnect" in block(response, "connection-status")
    # The owner sees it on the card too.
    rita = Client()
    rita.force_login(UserFactory(username="rita"))
    card = rita.get("/sources/acme-roofing/integrations/salesforce/").content.decode()
    assert "Waiting for reconnect" in card and "invalid_grant" in card

    # One email, to Rita, the owner of Acme Roofing, saying what to do.
    [email] = mail.outbox
    assert email.to == ["rita@example.com"]
    assert email.subject == SUBJECT
    assert "invalid_grant" in email.body
    assert "/sources/acme-roofing/integrations/salesforce/" in email.body
    assert "Click Connect." in email.body

    # Validating again (and the daily run, and every failed inquiry) sends nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(f"{CONSOLE}connections/{connection.pk}/validate/")
        run = validation_run_start(actor=None)
        for connection_id in run.connection_ids:
            validation_run_check(run_id=run.pk, connection_id=connection_id)
    assert len(mail.outbox) == 1
    assert [a.detail["ok"] for a in StaffAction.objects.filter(action="validated")] == [
        False,
        False,
    ]
    # The other connections are untouched.
    for key in ("joes", "east"):
        assert SalesforceConnection.objects.get(pk=three_connections[key].pk).is_usable


# --- Validate all ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_validate_all_counts_every_connection_once(
    staff,
    staff_client: Client,
    three_connections: dict,
    control: Any,
    django_capture_on_commit_callbacks,
) -> None:  # type: ignore[no-untyped-def]
    """The run's tasks called in this process (the worker test below runs them for real)."""
    revoke(control, three_connections["roofing"])
    with django_capture_on_commit_callbacks(execute=False) as enqueued:
        response = staff_client.post(f"{CONSOLE}validate-all/", follow=True)
    assert len(enqueued) == 1  # the fan-out task, sent after commit
    assert "Validating all 3 connections in the background; progress below." in messages_of(
        response
    )
    run = ValidationRun.objects.get()
    assert (run.started_by, run.total, run.done, run.is_finished) == (staff, 3, 0, False)
    assert "0 of 3" in block(response, "run-progress")
    status_url = f"{CONSOLE}validate-all/{run.pk}/"
    assert json.loads(staff_client.get(status_url).content)["text"] == "0 of 3"

    ids = run.connection_ids
    with django_capture_on_commit_callbacks(execute=True):
        validation_run_check(run_id=run.pk, connection_id=ids[0])
        progress = json.loads(staff_client.get(status_url).content)
        assert (progress["text"], progress["finished"]) == ("1 of 3", False)
        for connection_id in ids[1:]:
            validation_run_check(run_id=run.pk, connection_id=connection_id)
        # A redelivered task counts nothing twice.
        assert validation_run_check(run_id=run.pk, connection_id=ids[0]) is None

    progress = json.loads(staff_client.get(status_url).content)
    assert progress == {
        "id": run.pk,
        "done": 3,
        "total": 3,
        "failed": 1,
        "finished": True,
        "text": "3 of 3",
        "status_url": status_url,
    }
    assert ValidationRunResult.objects.filter(run=run).count() == 3
    page_text = block(staff_client.get(CONSOLE), "run-progress")
    assert "3 of 3 checked, 1 failed — finished" in page_text
    assert "1 connection failed in this run" in page_text
    assert "Acme Roofing" in page_text
    assert len(mail.outbox) == 1 and mail.outbox[0].subject == SUBJECT
    action = StaffAction.objects.get(action=StaffActionKind.VALIDATED_ALL)
    assert (action.actor, action.detail) == (staff, {"run_id": run.pk, "total": 3})
    # Nothing is left to fan out for a finished run.
    assert validation_run_fan_out(run_id=run.pk) == 0


@pytest.mark.django_db
def test_a_second_click_while_a_run_is_under_way_starts_no_second_run(
    staff_client: Client, three_connections: dict, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=False):
        staff_client.post(f"{CONSOLE}validate-all/")
        response = staff_client.post(f"{CONSOLE}validate-all/", follow=True)
    assert "Validate all is already running (0 of 3); its progress is below." in messages_of(
        response
    )
    assert ValidationRun.objects.count() == 1
    assert StaffAction.objects.filter(action=StaffActionKind.VALIDATED_ALL).count() == 1


@pytest.mark.django_db
def test_a_connection_disconnected_before_its_turn_is_skipped_not_failed(
    three_connections: dict, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=False):
        run = validation_run_start(actor=None)
    gone = three_connections["east"]
    SalesforceConnection.objects.filter(pk=gone.pk).delete()
    for connection_id in run.connection_ids:
        validation_run_check(run_id=run.pk, connection_id=connection_id)
    run.refresh_from_db()
    assert (run.done, run.failed, run.is_finished) == (3, 0, True)
    skipped = ValidationRunResult.objects.get(run=run, connection_id=gone.pk)
    assert skipped.ok is None
    assert skipped.message == "Disconnected before its turn came; nothing to validate."


@pytest.mark.django_db
def test_validate_all_with_no_connections_is_finished_at_once(staff_client: Client) -> None:
    response = staff_client.post(f"{CONSOLE}validate-all/", follow=True)
    assert "0 of 0 checked, 0 failed — finished" in block(response, "run-progress")


@pytest.mark.worker
def test_validate_all_and_the_daily_schedule_run_in_a_real_worker(
    start_worker: Any,
    staff_client: Client,
    three_connections: dict,
    control: Any,
    emulator: Any,
) -> None:
    """Validate all through Redis and a Celery worker process, then the beat entry's task."""
    revoke(control, three_connections["roofing"])
    worker = start_worker(emulator_worker_env(emulator))
    staff_client.post(f"{CONSOLE}validate-all/")
    run = ValidationRun.objects.get()
    status_url = f"{CONSOLE}validate-all/{run.pk}/"
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        progress = json.loads(staff_client.get(status_url).content)
        seen.append(progress["text"])
        if progress["finished"]:
            break
        time.sleep(0.2)
    assert progress["finished"], (seen, worker.log_text())
    assert (progress["text"], progress["failed"]) == ("3 of 3", 1)
    roofing = SalesforceConnection.objects.get(pk=three_connections["roofing"].pk)
    assert roofing.status == ConnectionStatus.NEEDS_RECONNECT
    assert roofing.last_validation_ok is False
    for key in ("joes", "east"):
        stored = SalesforceConnection.objects.get(pk=three_connections[key].pk)
        assert stored.is_usable and stored.last_validation_ok is True

    # The daily beat entry points at the task that starts a run without a user.
    entry = django_settings.CELERY_BEAT_SCHEDULE["salesforce-validate-all-connections"]
    from autorespond.celery import app

    app.send_task(entry["task"], queue=django_settings.CELERY_TASK_DEFAULT_QUEUE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        daily = ValidationRun.objects.exclude(pk=run.pk).first()
        if daily is not None and daily.is_finished:
            break
        time.sleep(0.2)
    assert daily is not None and daily.is_finished, worker.log_text()
    assert (daily.started_by, daily.done, daily.failed) == (None, 3, 1)
    assert StaffAction.objects.filter(action=StaffActionKind.VALIDATED_ALL).count() == 1

    # The owner was emailed once, by the worker, for the first run only.
    log = worker.log_path.read_text(errors="replace")
    assert log.count(f"Subject: {SUBJECT}") == 1, worker.log_text()
    assert "To: rita@example.com" in log
    for connection in three_connections.values():  # no token ever reaches a log
        assert connection.refresh_token not in log and connection.access_token not in log


# --- Disconnect --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_disconnect_from_the_console_revokes_at_salesforce_and_is_logged(
    staff, staff_client: Client, three_connections: dict, emulator: Any
) -> None:  # type: ignore[no-untyped-def]
    connection = three_connections["east"]
    refresh_token = connection.refresh_token
    confirm = staff_client.get(f"{CONSOLE}connections/{connection.pk}/disconnect/")
    assert "Disconnect Salesforce from Joe's Plumbing East?" in page(confirm).text_content()
    response = staff_client.post(f"{CONSOLE}connections/{connection.pk}/disconnect/", follow=True)
    assert response.redirect_chain[-1][0] == CONSOLE
    assert any("its access was revoked in Salesforce" in m for m in messages_of(response))
    assert not SalesforceConnection.objects.filter(pk=connection.pk).exists()
    with emulator.state.lock:
        assert emulator.state.refresh_tokens[refresh_token].revoked
    action = StaffAction.objects.get()
    assert (action.actor, action.action, action.connection_id) == (
        staff,
        StaffActionKind.DISCONNECTED,
        connection.pk,
    )
    assert action.target == f"{connection.username} @ {connection.org_id} for " + (
        "Joe's Plumbing East (Joe's Plumbing)"
    )
    assert action.detail["revoked"] is True
    audit = staff_client.get(f"{CONSOLE}audit/")
    assert "Disconnected a connection" in page(audit).text_content()
    assert refresh_token not in audit.content.decode()
