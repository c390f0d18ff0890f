"""A connection turning invalid (and valid again), and the one email its owners get."""

from __future__ import annotations

import threading

import pytest
from django.core import mail
from django.db import connection as db

from autorespond.models import Source
from integrations.salesforce.connections import (
    connection_mark_needs_reconnect,
    connection_mark_valid,
)
from integrations.salesforce.models import ConnectionStatus, SalesforceConnection
from tests.factories import MembershipFactory, SourceFactory, UserFactory
from tests.integrations.salesforce.console_support import (
    ACCESS_TOKEN,
    REFRESH_TOKEN,
    connection_make,
)

REASON = (
    "Salesforce no longer accepts this connection (invalid_grant: expired access/refresh token)."
)


@pytest.fixture
def connection(business: Source, owner) -> SalesforceConnection:  # type: ignore[no-untyped-def]
    return connection_make(business, username="joe@acme.example")


@pytest.mark.django_db
def test_the_first_failure_marks_needs_reconnect_and_emails_the_owner_once(
    connection: SalesforceConnection, django_capture_on_commit_callbacks, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.SITE_URL = ""  # relative links; the absolute form is tested below
    with django_capture_on_commit_callbacks(execute=True):
        assert connection_mark_needs_reconnect(connection=connection, reason=REASON) is True
    stored = SalesforceConnection.objects.get(pk=connection.pk)
    assert (stored.status, stored.status_reason) == (ConnectionStatus.NEEDS_RECONNECT, REASON)
    assert (connection.status, connection.status_reason) == (stored.status, stored.status_reason)

    [email] = mail.outbox
    assert email.to == ["joe@example.com"]
    assert email.subject == "Action needed: reconnect Salesforce for Joe's Plumbing"
    assert REASON in email.body
    assert "/sources/joes-plumbing/integrations/salesforce/" in email.body
    assert "Click Connect." in email.body
    assert "joe@acme.example" in email.body  # which Salesforce user to log in as
    html = email.alternatives[0][0]
    assert 'href="/sources/joes-plumbing/integrations/salesforce/"' in html
    assert "Joe&#x27;s Plumbing" in html  # escaped in HTML, plain in the text part
    for part in (email.subject, email.body, html):
        assert ACCESS_TOKEN not in part and REFRESH_TOKEN not in part

    # Every later failure (another inquiry, another worker, a validation) sends nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        again = connection_mark_needs_reconnect(connection=connection, reason="INVALID_SESSION_ID")
    assert again is False
    assert len(mail.outbox) == 1
    stored.refresh_from_db()
    assert stored.status_reason == "INVALID_SESSION_ID"  # the newest reason is shown


@pytest.mark.django_db
def test_the_email_goes_to_every_owner_of_the_business_and_nobody_else(
    business: Source, location: Source, owner, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    MembershipFactory(user=UserFactory(username="jane"), business=business)
    MembershipFactory(user=UserFactory(username="noemail", email=""), business=business)
    MembershipFactory(user=UserFactory(username="gone", is_active=False), business=business)
    MembershipFactory(user=UserFactory(username="stranger"), business=SourceFactory())
    UserFactory(username="support", is_staff=True)
    # A location's own connection: its business's owners are the ones to tell.
    connection = connection_make(location)
    with django_capture_on_commit_callbacks(execute=True):
        connection_mark_needs_reconnect(connection=connection, reason=REASON)
    [email] = mail.outbox
    assert email.to == ["jane@example.com", "joe@example.com"]
    assert email.subject == "Action needed: reconnect Salesforce for Joe's Plumbing East"
    assert "Joe's Plumbing East (Joe's Plumbing)" in email.body
    assert "/sources/joes-plumbing-east/integrations/salesforce/" in email.body


@pytest.mark.django_db
def test_the_link_is_absolute_when_site_url_is_set(
    connection: SalesforceConnection, settings, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    settings.SITE_URL = "https://leads.example.com/"
    with django_capture_on_commit_callbacks(execute=True):
        connection_mark_needs_reconnect(connection=connection, reason=REASON)
    assert "https://leads.example.com/sources/joes-plumbing/integrations/salesforce/" in (
        mail.outbox[0].body
    )


@pytest.mark.django_db
def test_no_email_when_the_change_rolls_back(
    connection: SalesforceConnection, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    from django.db import transaction

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                connection_mark_needs_reconnect(connection=connection, reason=REASON)
                raise RuntimeError("the caller failed after marking")
        except RuntimeError:
            pass
    assert callbacks == []
    assert mail.outbox == []
    assert SalesforceConnection.objects.get(pk=connection.pk).status == ConnectionStatus.CONNECTED


@pytest.mark.django_db
def test_valid_again_sends_nothing_and_a_later_break_emails_again(
    connection: SalesforceConnection, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        connection_mark_needs_reconnect(connection=connection, reason=REASON)
    assert len(mail.outbox) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert connection_mark_valid(connection=connection) is True
        assert connection_mark_valid(connection=connection) is False
    stored = SalesforceConnection.objects.get(pk=connection.pk)
    assert (stored.status, stored.status_reason) == (ConnectionStatus.CONNECTED, "")
    assert (connection.status, connection.status_reason) == (ConnectionStatus.CONNECTED, "")
    assert len(mail.outbox) == 1
    # A later break is a new event, and the owners hear about it.
    with django_capture_on_commit_callbacks(execute=True):
        assert connection_mark_needs_reconnect(connection=connection, reason="again") is True
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_no_stale_email_when_the_owner_reconnected_before_it_went_out(
    connection: SalesforceConnection, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    """The email is rendered from the committed row when it is sent: if the connection is usable
    again by then, there is nothing to tell."""
    with django_capture_on_commit_callbacks(execute=True):
        connection_mark_needs_reconnect(connection=connection, reason=REASON)
        connection_mark_valid(connection=connection)
    assert mail.outbox == []


@pytest.mark.django_db
def test_a_deleted_connection_is_ignored(connection: SalesforceConnection) -> None:
    SalesforceConnection.objects.filter(pk=connection.pk).delete()
    assert connection_mark_needs_reconnect(connection=connection, reason=REASON) is False
    assert connection_mark_valid(connection=connection) is False
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_workers_noticing_at_the_same_moment_send_one_email(
    postgres, business: Source, owner
) -> None:  # type: ignore[no-untyped-def]
    """Eight threads, each with its own database connection, mark the same connection at once:
    the row lock lets exactly one see the transition, so exactly one email goes out."""
    connection = connection_make(business)
    start = threading.Barrier(8)
    results: list[bool] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            row = SalesforceConnection.objects.get(pk=connection.pk)
            start.wait(10)
            results.append(connection_mark_needs_reconnect(connection=row, reason=f"worker {n}"))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            db.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(results) == [False] * 7 + [True]
    assert len(mail.outbox) == 1
    assert SalesforceConnection.objects.get(pk=connection.pk).status == (
        ConnectionStatus.NEEDS_RECONNECT
    )
