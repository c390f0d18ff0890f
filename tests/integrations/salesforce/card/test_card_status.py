"""The card's header: one status per source, in order of urgency, with its counts (linked to the
inquiries they count) and one primary action; and the home page's pill of the same status."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from integrations.salesforce.card.services import salesforce_settings_update
from integrations.salesforce.card.status import card_status
from integrations.salesforce.models import ConnectionStatus, InquirySync, SyncStatus
from integrations.salesforce.selectors import effective_salesforce_settings
from tests.factories import InquiryFactory, MembershipFactory, UserFactory
from tests.integrations.salesforce.card_support import card_url, connection_create
from tests.pages import block, page

pytestmark = pytest.mark.django_db

SINCE = dt.datetime(2026, 11, 30, 7, 15, tzinfo=dt.UTC)


def sync_for(source, status: str, **fields) -> InquirySync:  # type: ignore[no-untyped-def]
    return InquirySync.objects.create(
        inquiry=InquiryFactory(source=source), status=status, **fields
    )


def header(client, source) -> tuple[str, str, str, str]:  # type: ignore[no-untyped-def]
    """(pill, detail, counts, action label) of the card's header."""
    response = client.get(card_url(source))
    assert response.status_code == 200
    action = page(response).get_element_by_id("status-action", None)
    return (
        block(response, "status-pill"),
        block(response, "status"),
        " ".join(
            page(response).get_element_by_id("status").xpath('.//p[@class="counts"]')[0].itertext()
        ),
        action.text_content().strip() if action is not None else "",
    )


def enabled(source) -> None:  # type: ignore[no-untyped-def]
    salesforce_settings_update(source=source, data={"enabled": True}, user=None)


def test_not_connected(owner_client, business):
    pill, detail, _counts, action = header(owner_client, business)
    assert pill == "Not connected"
    assert "Nothing is sent until a Salesforce user is connected." in detail
    assert action == "Connect Salesforce"


def test_connected_but_off(owner_client, business):
    connection_create(business)
    pill, _detail, _counts, action = header(owner_client, business)
    assert (pill, action) == ("Connected but off", "Turn on Enable")


def test_sending(owner_client, business):
    connection_create(business)
    enabled(business)
    sync_for(business, SyncStatus.CREATED)
    pill, detail, counts, action = header(owner_client, business)
    assert pill == "Sending"
    assert "New and changed inquiries are sent to Salesforce." in detail
    assert counts.split() == ["0", "failed", "·", "0", "waiting"]
    assert action == "Test with a sample inquiry"


def test_some_inquiries_failed_counts_and_links_them(owner_client, business):
    connection_create(business)
    enabled(business)
    failed = [sync_for(business, SyncStatus.FAILED, error_code="STRING_TOO_LONG") for _ in range(2)]
    sync_for(business, SyncStatus.BLOCKED_DUPLICATE, error_code="DUPLICATES_DETECTED")
    sync_for(business, SyncStatus.RETRYING)
    sync_for(business, SyncStatus.CREATED)
    response = owner_client.get(card_url(business))
    assert block(response, "status-pill") == "Some inquiries failed"
    links = {a.text_content(): a.get("href") for a in page(response).xpath('//*[@id="status"]//a')}
    assert links["3 failed"] == f"{card_url(business)}?show=failed#inquiries"
    assert links["1 waiting"] == f"{card_url(business)}?show=waiting#inquiries"
    assert links["Review failed inquiries"] == f"{card_url(business)}?show=failed#inquiries"
    # The link shows exactly those inquiries.
    shown = owner_client.get(f"{card_url(business)}?show=failed")
    rows = page(shown).xpath('//table[@class="inquiries"]/tbody/tr/@id')
    assert len(rows) == 3
    assert f"inquiry-{failed[0].inquiry_id}" in rows
    assert block(shown, "inquiries").startswith("Failed inquiries Show all recent inquiries")


def test_waiting_for_reconnect_wins_over_failures_and_enable(owner_client, business):
    connection_create(business, status=ConnectionStatus.NEEDS_RECONNECT)
    sync_for(business, SyncStatus.FAILED)
    sync_for(business, SyncStatus.WAITING_RECONNECT)
    pill, _detail, counts, action = header(owner_client, business)
    assert (pill, action) == ("Waiting for reconnect", "Connect again")
    assert counts.split() == ["1", "failed", "·", "1", "waiting"]


def test_salesforce_unavailable_since(owner_client, business):
    connection_create(business, unavailable_since=SINCE)
    enabled(business)
    pill, detail, _counts, action = header(owner_client, business)
    local = timezone.localtime(SINCE)
    assert pill == f"Salesforce unavailable since {local:%b} {local.day}, {local:%H:%M}"
    assert "nothing is lost" in detail
    assert action == "See waiting inquiries"


def test_waiting_for_api_budget(owner_client, business):
    connection_create(business, budget_paused_since=SINCE)
    enabled(business)
    sync_for(business, SyncStatus.WAITING_BUDGET)
    pill, detail, counts, action = header(owner_client, business)
    assert pill == "Waiting for API budget"
    assert "sent automatically when calls are available again" in detail
    assert counts.split()[3:] == ["1", "waiting"]
    assert action == "See waiting inquiries"


def test_inherited_from_a_named_parent(owner_client, business, location):
    connection_create(business)
    enabled(business)
    salesforce_settings_update(source=location, data={"inherit_from_parent": True}, user=None)
    pill, detail, _counts, action = header(owner_client, location)
    assert pill == "Inherited from Joe's Plumbing"
    assert "Sending with the Salesforce connection and settings of Joe's Plumbing." in detail
    assert action == "Open Joe's Plumbing's card"


def test_an_inheriting_location_with_failures_says_so(owner_client, business, location):
    connection_create(business)
    enabled(business)
    salesforce_settings_update(source=location, data={"inherit_from_parent": True}, user=None)
    sync_for(location, SyncStatus.FAILED)
    sync_for(business, SyncStatus.FAILED)  # the parent's own do not count here
    pill, detail, counts, _action = header(owner_client, location)
    assert pill == "Some inquiries failed"
    assert "Connection and settings inherited from Joe's Plumbing." in detail
    assert counts.split()[:2] == ["1", "failed"]


def test_the_order_is_one_plain_function(business):
    """The selector alone, without the page: every mark set at once, the most urgent wins."""
    connection = connection_create(business, unavailable_since=SINCE, budget_paused_since=SINCE)
    effective = effective_salesforce_settings(source=business)
    assert card_status(effective=effective).key == "unavailable"
    connection.unavailable_since = None
    connection.save()
    assert card_status(effective=effective_salesforce_settings(source=business)).key == (
        "waiting_budget"
    )


def test_no_action_link_to_a_card_the_user_may_not_open(business, location, client):
    manager = UserFactory(username="east-manager")
    MembershipFactory(user=manager, business=location)
    salesforce_settings_update(source=location, data={"inherit_from_parent": True}, user=None)
    client.force_login(manager)
    response = client.get(card_url(location))
    assert block(response, "status-pill") == "Not connected"
    assert page(response).get_element_by_id("status-action", None) is None


def test_the_home_page_lists_each_source_with_its_pill_and_card_link(
    owner_client, business, location
):
    connection_create(business)
    enabled(business)
    response = owner_client.get("/")
    assert block(response, f"source-{business.slug}") == (
        "Joe's Plumbing business Sending Salesforce settings"
    )
    assert block(response, f"source-{location.slug}") == (
        "Joe's Plumbing East location Not connected Salesforce settings"
    )
    link = page(response).get_element_by_id(f"source-{location.slug}").xpath(".//a")[0]
    assert link.get("href") == card_url(location)
    assert link.get("aria-label") == "Salesforce settings of Joe's Plumbing East"
