"""The support console without Salesforce: who may see it, the list and its filters, a
connection's sync history, Retry, the audit log and the admin. Validation against the emulator
is in test_console_validation.py."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db import connection as db
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from autorespond.models import Source
from integrations.salesforce.models import (
    ConnectionStatus,
    Environment,
    InquirySync,
    SalesforceConnection,
    StaffAction,
    StaffActionKind,
    SyncStatus,
    ValidationRun,
)
from integrations.salesforce.selectors import effective_salesforce_settings
from integrations.salesforce.support.console import SourceTree, console_connection_rows
from tests.factories import SourceFactory, UserFactory
from tests.integrations.salesforce.console_support import (
    ACCESS_TOKEN,
    REFRESH_TOKEN,
    cell,
    connection_make,
    inherit,
    listed_connection_ids,
    row_text,
    sync_make,
)
from tests.pages import block, messages_of, page

pytestmark = pytest.mark.django_db

CONSOLE = "/support/salesforce/"


def console_urls(connection: SalesforceConnection, sync: InquirySync, run: ValidationRun) -> list:
    """(method, url) of every console page and action."""
    c, s, r = connection.pk, sync.pk, run.pk
    return [
        ("get", CONSOLE),
        ("get", f"{CONSOLE}connections/{c}/"),
        ("post", f"{CONSOLE}connections/{c}/validate/"),
        ("post", f"{CONSOLE}connections/{c}/retry-failed/"),
        ("get", f"{CONSOLE}connections/{c}/disconnect/"),
        ("post", f"{CONSOLE}connections/{c}/disconnect/"),
        ("post", f"{CONSOLE}syncs/{s}/retry/"),
        ("post", f"{CONSOLE}validate-all/"),
        ("get", f"{CONSOLE}validate-all/{r}/"),
        ("get", f"{CONSOLE}audit/"),
    ]


@pytest.fixture
def connection(business: Source) -> SalesforceConnection:
    return connection_make(business, username="joe@acme.example", display_name="Joe Owner")


# --- Who may see the console -----------------------------------------------------------------


def test_url_names_are_those_the_team_agreed_on(connection: SalesforceConnection) -> None:
    assert reverse("salesforce:console") == CONSOLE
    assert reverse("salesforce:console_audit") == f"{CONSOLE}audit/"
    assert reverse("salesforce:console_validate_all") == f"{CONSOLE}validate-all/"
    assert reverse("salesforce:console_connection", args=[connection.pk]).startswith(CONSOLE)


def test_an_owner_gets_404_on_every_console_url(
    owner_client: Client, connection: SalesforceConnection, business: Source
) -> None:
    sync = sync_make(business)
    run = ValidationRun.objects.create(total=0)
    for method, url in console_urls(connection, sync, run):
        response = getattr(owner_client, method)(url)
        assert response.status_code == 404, (method, url, response.status_code)
    # Nothing happened on the owner's behalf.
    assert StaffAction.objects.count() == 0
    assert SalesforceConnection.objects.filter(pk=connection.pk).exists()
    sync.refresh_from_db()
    assert sync.status == SyncStatus.FAILED


def test_an_owner_with_admin_permissions_but_not_staff_still_gets_404(
    owner, connection: SalesforceConnection
) -> None:  # type: ignore[no-untyped-def]
    owner.user_permissions.add(*Permission.objects.filter(content_type__app_label="salesforce"))
    client = Client()
    client.force_login(owner)
    assert client.get(CONSOLE).status_code == 404


def test_anonymous_visitors_are_sent_to_the_login_page(
    client: Client, connection: SalesforceConnection, business: Source
) -> None:
    sync = sync_make(business)
    run = ValidationRun.objects.create(total=0)
    for method, url in console_urls(connection, sync, run):
        response = getattr(client, method)(url)
        assert response.status_code == 302, (method, url)
        assert response["Location"].startswith("/accounts/login/?next="), (method, url)
    assert StaffAction.objects.count() == 0


def test_staff_see_every_console_page(
    staff_client: Client, connection: SalesforceConnection, business: Source
) -> None:
    run = ValidationRun.objects.create(total=0)
    for url in [
        CONSOLE,
        f"{CONSOLE}connections/{connection.pk}/",
        f"{CONSOLE}connections/{connection.pk}/disconnect/",
        f"{CONSOLE}validate-all/{run.pk}/",
        f"{CONSOLE}audit/",
    ]:
        assert staff_client.get(url).status_code == 200, url


def test_actions_refuse_get(staff_client: Client, connection: SalesforceConnection) -> None:
    assert staff_client.get(f"{CONSOLE}connections/{connection.pk}/validate/").status_code == 405
    assert staff_client.get(f"{CONSOLE}validate-all/").status_code == 405
    assert StaffAction.objects.count() == 0


def test_staff_find_the_console_in_the_top_bar_and_owners_do_not(
    staff_client: Client, owner_client: Client
) -> None:
    staff_home = page(staff_client.get("/"))
    assert staff_home.xpath(f'//header//a[@href="{CONSOLE}" and text()="Support"]')
    assert not page(owner_client.get("/")).xpath(f'//a[@href="{CONSOLE}"]')


# --- The list ----------------------------------------------------------------------------------


def test_the_list_shows_what_support_needs_to_know(
    staff_client: Client, business: Source, location: Source
) -> None:
    sandbox = connection_make(
        location,
        environment=Environment.SANDBOX,
        org_id="00D5e000000SANDBOX",
        username="ann@acme.example.uat",
        display_name="Ann Admin",
        status=ConnectionStatus.NEEDS_RECONNECT,
        status_reason="Salesforce no longer accepts this connection (invalid_grant: expired).",
        api_usage_used=1234,
        api_usage_max=15000,
        last_validation_ok=False,
        last_validation_message="Reconnect Salesforce on this card.",
        last_validated_at="2026-01-05T10:00:00Z",
    )
    sync_make(location, error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION", error_message="Zip!")
    response = staff_client.get(CONSOLE)
    text = row_text(response, sandbox)
    for expected in [
        "Joe's Plumbing East",
        "Joe's Plumbing",  # the business
        "00D5e000000SANDBOX",
        "Ann Admin",
        "ann@acme.example.uat",
        "Sandbox",
        "Needs reconnect",
        "invalid_grant: expired",
        "Jan 5, 10:00",
        "Failed",
        "Reconnect Salesforce on this card.",
        "FIELD_CUSTOM_VALIDATION_EXCEPTION Zip!",
        "1234 / 15000",
    ]:
        assert expected in text, expected
    assert ACCESS_TOKEN not in response.content.decode()
    assert REFRESH_TOKEN not in response.content.decode()


def test_counts_include_the_syncs_of_sources_that_inherit_the_connection(
    staff_client: Client, business: Source, location: Source
) -> None:
    connection = connection_make(business)
    inherit(location)
    # A grandchild that inherits from the inheriting location uses the business's connection too.
    corner = SourceFactory(slug="joes-plumbing-east-corner", parent=location)
    inherit(corner)
    # A location with its own connection counts toward its own.
    west = SourceFactory(slug="joes-plumbing-west", parent=business)
    west_connection = connection_make(west)
    sync_make(business, SyncStatus.FAILED)
    sync_make(location, SyncStatus.FAILED)
    sync_make(corner, SyncStatus.PENDING)
    sync_make(location, SyncStatus.RETRYING)
    sync_make(location, SyncStatus.WAITING_RECONNECT)
    sync_make(business, SyncStatus.WAITING_CONTACT_INFO)
    sync_make(business, SyncStatus.CREATED)
    sync_make(west, SyncStatus.FAILED)

    response = staff_client.get(CONSOLE)
    assert cell(response, connection, "waiting") == "4"
    assert cell(response, connection, "failed") == "2"
    assert "+ 2 inheriting" in row_text(response, connection)
    assert cell(response, west_connection, "waiting") == "0"
    assert cell(response, west_connection, "failed") == "1"


def test_the_list_costs_the_same_queries_for_3_or_30_connections(
    staff_client: Client, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    def make(count: int) -> None:
        for _ in range(count):
            business = SourceFactory()
            connection_make(business)
            location = SourceFactory(parent=business)
            inherit(location)
            sync_make(location, SyncStatus.FAILED, attempts=1)
            sync_make(business, SyncStatus.PENDING)

    make(3)
    with CaptureQueriesContext(db) as few:
        assert staff_client.get(CONSOLE).status_code == 200
    make(27)
    with django_assert_max_num_queries(len(few)):
        response = staff_client.get(CONSOLE)
    assert len(listed_connection_ids(response)) == 30


def test_the_in_memory_inheritance_walk_agrees_with_effective_salesforce_settings(
    business: Source, location: Source
) -> None:
    connection_make(business)
    inherit(location)
    child = SourceFactory(parent=location)
    inherit(child)
    own = SourceFactory(parent=location)
    connection_make(own)
    not_inheriting = SourceFactory(parent=business)  # own settings, no connection
    orphan_inherits = SourceFactory()  # a business: nothing to inherit from
    inherit(orphan_inherits)
    tree = SourceTree()
    for source in Source.objects.all():
        expected = effective_salesforce_settings(source=source).owner.pk
        assert tree.owner_of(source.pk) == expected, source.slug
    assert tree.business_of(child.pk).pk == business.pk
    assert tree.owner_of(not_inheriting.pk) == not_inheriting.pk


def test_filter_by_status(staff_client: Client) -> None:
    good = connection_make(SourceFactory(name="Good Co"))
    broken = connection_make(
        SourceFactory(name="Broken Co"), status=ConnectionStatus.NEEDS_RECONNECT
    )
    flaky = connection_make(SourceFactory(name="Flaky Co"), last_validation_ok=False)
    failing = connection_make(SourceFactory(name="Failing Co"))
    sync_make(failing.source, SyncStatus.FAILED)

    def listed(status: str) -> set[int]:
        return set(listed_connection_ids(staff_client.get(CONSOLE, {"status": status})))

    assert listed("") == {good.pk, broken.pk, flaky.pk, failing.pk}
    assert listed("connected") == {good.pk, flaky.pk, failing.pk}
    assert listed("needs_reconnect") == {broken.pk}
    assert listed("validation_failed") == {flaky.pk}
    assert listed("failed_syncs") == {failing.pk}
    # Broken connections come first in the unfiltered list.
    assert listed_connection_ids(staff_client.get(CONSOLE))[0] == broken.pk


def test_search_by_business_source_or_salesforce_user(
    staff_client: Client, business: Source, location: Source
) -> None:
    joes = connection_make(business, username="joe@joes.example", display_name="Joe Owner")
    inherit(location)
    other_business = SourceFactory(name="Acme Roofing", slug="acme-roofing")
    roof_north = SourceFactory(name="Roofing North", slug="roofing-north", parent=other_business)
    north = connection_make(roof_north, username="nina@acme.example", display_name="Nina North")

    def found(query: str) -> set[int]:
        return set(listed_connection_ids(staff_client.get(CONSOLE, {"q": query})))

    assert found("joe's plumbing") == {joes.pk}  # business name, any case
    assert found("East") == {joes.pk}  # a location that inherits finds the connection it uses
    assert found("acme roofing") == {north.pk}  # business of a location's own connection
    assert found("roofing-north") == {north.pk}  # source slug
    assert found("nina@") == {north.pk}  # Salesforce username
    assert found("joe owner") == {joes.pk}  # Salesforce display name
    assert found(north.org_id) == {north.pk}
    assert found("nobody") == set()
    response = staff_client.get(CONSOLE, {"q": "nobody"})
    assert "No connections match this search." in block(response, "connections")


def test_a_search_holding_nul_matches_nothing(staff_client: Client, business: Source) -> None:
    # PostgreSQL refuses a NUL in a text parameter: this search was a 500 there.
    connection_make(business, username="joe@joes.example")
    response = staff_client.get(CONSOLE, {"q": "joe\x00"})
    assert response.status_code == 200
    assert listed_connection_ids(response) == []
    assert "No connections match this search." in block(response, "connections")


def test_rows_name_the_business_of_a_location_connection(location: Source) -> None:
    connection = connection_make(location)
    [row] = console_connection_rows(connections=[connection])
    assert row.business.name == "Joe's Plumbing"
    assert row.description == (
        f"{connection.username} @ {connection.org_id} for Joe's Plumbing East (Joe's Plumbing)"
    )


# --- A connection's page, Retry ----------------------------------------------------------------


def test_connection_page_shows_sync_history_with_attempts_and_errors(
    staff_client: Client, business: Source, location: Source
) -> None:
    connection = connection_make(business)
    inherit(location)
    failed = sync_make(location, SyncStatus.FAILED, attempts=2)
    created = sync_make(business, SyncStatus.CREATED, record_id="00Q5e000000AAAAAAA")
    response = staff_client.get(f"{CONSOLE}connections/{connection.pk}/")
    history = block(response, "sync-history")
    assert failed.inquiry.external_id in history
    assert "Joe's Plumbing East" in history
    assert "REQUIRED_FIELD_MISSING Required fields are missing: [Company]" in history
    assert "fields: Company" in history
    assert block(response, f"sync-{failed.pk}").count("REQUIRED_FIELD_MISSING") == 3  # sync + 2
    assert "00Q5e000000AAAAAAA" in block(response, f"sync-{created.pk}")
    failed_only = staff_client.get(f"{CONSOLE}connections/{connection.pk}/", {"syncs": "failed"})
    assert created.inquiry.external_id not in block(failed_only, "sync-history")
    assert ACCESS_TOKEN not in response.content.decode()


def test_retry_one_failed_sync_requeues_it_and_logs_it(
    staff, staff_client: Client, business: Source
) -> None:  # type: ignore[no-untyped-def]
    connection_make(business)
    sync = sync_make(business, SyncStatus.FAILED, attempts=3)
    other = sync_make(business, SyncStatus.FAILED)
    response = staff_client.post(f"{CONSOLE}syncs/{sync.pk}/retry/", follow=True)
    assert f"Inquiry {sync.inquiry.external_id} of Joe's Plumbing will be sent again." in (
        messages_of(response)
    )
    sync.refresh_from_db()
    assert sync.status == SyncStatus.PENDING
    assert sync.due_at is not None
    assert sync.attempt_count == 0
    other.refresh_from_db()
    assert other.status == SyncStatus.FAILED  # only the one asked for
    action = StaffAction.objects.get()
    assert (action.actor, action.actor_name, action.action) == (
        staff,
        "support",
        StaffActionKind.RETRIED,
    )
    assert action.target == f"Inquiry {sync.inquiry.external_id} of Joe's Plumbing"
    assert action.detail["error_code"] == "REQUIRED_FIELD_MISSING"


def test_retry_of_a_sync_that_is_not_failed_changes_nothing(
    staff_client: Client, business: Source
) -> None:
    sync = sync_make(business, SyncStatus.CREATED, record_id="00Q5e000000AAAAAAA")
    response = staff_client.post(f"{CONSOLE}syncs/{sync.pk}/retry/", follow=True)
    assert any("is not failed" in m for m in messages_of(response))
    sync.refresh_from_db()
    assert sync.status == SyncStatus.CREATED
    assert StaffAction.objects.count() == 0


def test_retry_all_requeues_every_failed_sync_of_the_connection(
    staff_client: Client, business: Source, location: Source
) -> None:
    connection = connection_make(business)
    inherit(location)
    mine = [sync_make(business), sync_make(location), sync_make(location)]
    created = sync_make(business, SyncStatus.CREATED)
    elsewhere_source = SourceFactory()
    connection_make(elsewhere_source)
    elsewhere = sync_make(elsewhere_source)

    response = staff_client.post(f"{CONSOLE}connections/{connection.pk}/retry-failed/", follow=True)
    assert "3 failed syncs will be sent again." in messages_of(response)
    assert response.redirect_chain[-1][0] == f"{CONSOLE}connections/{connection.pk}/"
    for sync in mine:
        sync.refresh_from_db()
        assert sync.status == SyncStatus.PENDING and sync.due_at is not None
    created.refresh_from_db()
    elsewhere.refresh_from_db()
    assert created.status == SyncStatus.CREATED
    assert elsewhere.status == SyncStatus.FAILED
    action = StaffAction.objects.get()
    assert action.action == StaffActionKind.RETRIED_ALL
    assert action.connection_id == connection.pk
    assert action.detail["count"] == 3
    assert sorted(action.detail["sync_ids"]) == sorted(s.pk for s in mine)


# --- The audit log -----------------------------------------------------------------------------


def test_audit_log_lists_staff_actions_newest_first_and_filters(
    staff_client: Client, business: Source
) -> None:
    connection = connection_make(business)
    first = sync_make(business)
    second = sync_make(business)
    staff_client.post(f"{CONSOLE}syncs/{first.pk}/retry/")
    staff_client.post(f"{CONSOLE}syncs/{second.pk}/retry/")
    staff_client.post(f"{CONSOLE}connections/{connection.pk}/retry-failed/")

    response = staff_client.get(f"{CONSOLE}audit/")
    rows = [
        " ".join(r.text_content().split())
        for r in page(response).xpath('//table[contains(@class,"audit")]/tbody/tr')
    ]
    assert len(rows) == 3
    assert "support Retried a connection's failed syncs" in rows[0]
    assert "0 syncs" in rows[0]
    assert f"Inquiry {second.inquiry.external_id}" in rows[1]
    assert f"Inquiry {first.inquiry.external_id}" in rows[2]
    filtered = staff_client.get(f"{CONSOLE}audit/", {"action": "retried_all"})
    assert len(page(filtered).xpath('//table[contains(@class,"audit")]/tbody/tr')) == 1
    # The connection's page shows the actions on it.
    detail = staff_client.get(f"{CONSOLE}connections/{connection.pk}/")
    assert "Retried a connection's failed syncs" in block(detail, "connection-actions")


def test_the_audit_log_keeps_the_actor_name_after_the_user_is_deleted(
    business: Source,
) -> None:
    helper = UserFactory(username="temp-support", is_staff=True)
    client = Client()
    client.force_login(helper)
    sync = sync_make(business)
    client.post(f"{CONSOLE}syncs/{sync.pk}/retry/")
    helper.delete()
    action = StaffAction.objects.get()
    assert action.actor is None and action.actor_name == "temp-support"


# --- Admin -------------------------------------------------------------------------------------


def test_admin_pages_of_every_model_open_and_never_show_tokens(business: Source) -> None:
    admin_user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin_user)
    connection = connection_make(business)
    sync = sync_make(business, attempts=1)
    client.post(f"{CONSOLE}syncs/{sync.pk}/retry/")
    run = ValidationRun.objects.create(total=0)
    pages = [
        "/admin/salesforce/salesforceconnection/",
        f"/admin/salesforce/salesforceconnection/{connection.pk}/change/",
        "/admin/salesforce/salesforcesettings/",
        "/admin/salesforce/inquirysync/",
        f"/admin/salesforce/inquirysync/{sync.pk}/change/",
        "/admin/salesforce/salesforceperson/",
        "/admin/salesforce/validationrun/",
        f"/admin/salesforce/validationrun/{run.pk}/change/",
        "/admin/salesforce/staffaction/",
        f"/admin/salesforce/staffaction/{StaffAction.objects.get().pk}/change/",
    ]
    # The encrypted column values must not be shown either.
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token FROM salesforce_salesforceconnection WHERE id = %s",
            [connection.pk],
        )
        ciphertexts = [value for value in cursor.fetchone() if value]
    assert len(ciphertexts) == 2
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        content = response.content.decode()
        assert ACCESS_TOKEN not in content, url
        assert REFRESH_TOKEN not in content, url
        assert "access_token" not in content and "refresh_token" not in content, url
        for ciphertext in ciphertexts:
            assert ciphertext not in content, url


# --- Wording ---------------------------------------------------------------------------------


def test_counts_read_as_english_for_one_and_for_many(
    staff_client: Client, business: Source, django_capture_on_commit_callbacks
) -> None:
    connection = connection_make(business)
    sync_make(business)
    with django_capture_on_commit_callbacks(execute=False):
        response = staff_client.post(
            f"{CONSOLE}connections/{connection.pk}/retry-failed/", follow=True
        )
    assert "1 failed sync will be sent again." in messages_of(response)
    with django_capture_on_commit_callbacks(execute=False):
        response = staff_client.post(f"{CONSOLE}validate-all/", follow=True)
    assert "Validating the 1 connection in the background; progress below." in messages_of(response)
    audit = staff_client.get(f"{CONSOLE}audit/").content.decode()
    assert "(s)" not in audit
    assert "1 sync" in audit and "1 connection" in audit
