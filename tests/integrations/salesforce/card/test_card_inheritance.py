"""Inherit from parent on the card: two and three levels, read-only display, switching back."""

from __future__ import annotations

import pytest
from django.test import Client

from autorespond.models import Source
from integrations.salesforce.card.services import salesforce_settings_update
from integrations.salesforce.models import SalesforceSettings
from integrations.salesforce.selectors import effective_salesforce_settings
from tests.factories import MembershipFactory, SourceFactory, UserFactory
from tests.integrations.salesforce.card_support import (
    card_url,
    checked,
    connection_create,
    form_data,
    inputs,
)
from tests.pages import block, has_block, page

pytestmark = pytest.mark.django_db


def effective_of(source):  # type: ignore[no-untyped-def]
    """What applies to the source now, read fresh (test objects cache their relations)."""
    return effective_salesforce_settings(source=Source.objects.get(pk=source.pk))


@pytest.fixture
def van(location):  # type: ignore[no-untyped-def]
    """A third level: business → location → van."""
    return SourceFactory(slug="joes-east-van", name="East van", parent=location)


@pytest.fixture
def business_setup(business):  # type: ignore[no-untyped-def]
    salesforce_settings_update(
        source=business,
        data={
            "enabled": True,
            "record_type": "Contact",
            "send_job_description": True,
            "header_options": "EmailHeader,triggerUserEmail,true",
        },
        user=None,
    )
    return connection_create(business, org_id="00D000000000BUSAAA", display_name="Biz Admin")


def inherit(client, source) -> None:  # type: ignore[no-untyped-def]
    """Turn on Inherit from parent through the card, as an owner would: tick it and save the
    form as the page shows it."""
    values = inputs(client.get(card_url(source)))
    values["inherit_from_parent"] = "on"
    response = client.post(card_url(source), values)
    assert response.status_code == 302, response.content.decode()


def stop_inheriting(client, source) -> None:  # type: ignore[no-untyped-def]
    """Untick Inherit from parent on the read-only card and save."""
    response = client.post(card_url(source), {})
    assert response.status_code == 302, response.content.decode()


def own_inputs(response) -> set[str]:  # type: ignore[no-untyped-def]
    return {el.get("name") for el in page(response).xpath("//form//input | //form//textarea")}


def test_a_location_that_inherits_shows_the_parents_settings_read_only(
    owner_client, business, location, business_setup
):
    inherit(owner_client, location)
    response = owner_client.get(card_url(location))
    notice = block(response, "inherited")
    assert notice.startswith("Inherited from Joe's Plumbing")
    links = page(response).get_element_by_id("inherited").xpath(".//a/@href")
    assert card_url(business) in links
    settings = block(response, "settings")
    assert "Enable On" in settings
    assert "Record type Contacts" in settings
    assert "Include job description On" in settings
    assert "Create only for new leads Off" in settings
    assert "Email the assigned owner On" in settings
    # The option string is there, under Advanced (closed).
    advanced = page(response).get_element_by_id("settings").xpath(".//details")[0]
    assert "EmailHeader,triggerUserEmail,true" in advanced.text_content()
    assert advanced.get("open") is None
    connection = block(response, "connection")
    assert "00D000000000BUSAAA" in connection and "Biz Admin" in connection
    # None of this source's own fields can be edited; only inheritance can be switched off.
    assert "enabled" not in own_inputs(response)
    assert "header_options" not in own_inputs(response)
    assert "inherit_from_parent" in own_inputs(response)
    assert checked(response, "inherit_from_parent") is True
    # The header says what applies: the parent is connected and enabled.
    assert block(response, "status-pill") == "Inherited from Joe's Plumbing"
    effective = effective_of(location)
    assert effective.owner == business and effective.connection == business_setup


def test_own_fields_posted_while_inheriting_are_ignored(owner_client, location, business_setup):
    inherit(owner_client, location)
    response = owner_client.post(
        card_url(location), form_data(inherit_from_parent=True, enabled=True, only_new_leads=True)
    )
    assert response.status_code == 302
    row = SalesforceSettings.objects.get(source=location)
    assert row.inherit_from_parent is True
    assert row.enabled is False and row.only_new_leads is False


def test_turning_inherit_off_brings_back_the_locations_own_settings(
    owner_client, location, business_setup
):
    owner_client.post(card_url(location), form_data(only_new_leads=True, record_type="Lead"))
    inherit(owner_client, location)
    # The own settings are kept while inheriting...
    assert SalesforceSettings.objects.get(source=location).only_new_leads is True
    stop_inheriting(owner_client, location)
    response = owner_client.get(card_url(location))
    assert not has_block(response, "inherited")
    assert checked(response, "inherit_from_parent") is False
    # ...and apply again once it is off.
    assert checked(response, "only_new_leads") is True
    assert checked(response, "enabled") is False
    assert "Not connected." in block(response, "connection")
    assert effective_of(location).owner == location


def test_three_levels_the_child_uses_the_grandparents_settings_and_connection(
    owner_client, business, location, van, business_setup
):
    salesforce_settings_update(source=location, data={"record_type": "Lead"}, user=None)
    connection_create(location, org_id="00D000000000LOCAAA", display_name="Location Admin")
    inherit(owner_client, location)
    inherit(owner_client, van)

    response = owner_client.get(card_url(van))
    assert block(response, "inherited").startswith("Inherited from Joe's Plumbing ")
    assert card_url(business) in page(response).get_element_by_id("inherited").xpath(".//a/@href")
    assert "Record type Contacts" in block(response, "settings")
    assert "00D000000000BUSAAA" in block(response, "connection")
    effective = effective_of(van)
    assert effective.owner == business
    assert effective.connection == business_setup

    # The middle one stops inheriting: the child now follows it.
    stop_inheriting(owner_client, location)
    response = owner_client.get(card_url(van))
    assert block(response, "inherited").startswith("Inherited from Joe's Plumbing East")
    assert card_url(location) in page(response).get_element_by_id("inherited").xpath(".//a/@href")
    assert "Record type Leads" in block(response, "settings")
    assert "00D000000000LOCAAA" in block(response, "connection")
    assert effective_of(van).owner == location


def test_a_child_that_inherits_from_a_parent_that_does_not_stops_there(
    owner_client, business, location, van, business_setup
):
    inherit(owner_client, van)
    assert effective_of(van).owner == location
    assert "Not connected." in block(owner_client.get(card_url(van)), "connection")


def test_the_inheriting_card_says_where_to_connect(owner_client, business, location):
    inherit(owner_client, location)
    response = owner_client.get(card_url(location))
    assert block(response, "status-pill") == "Not connected"
    assert "connected on the card of Joe's Plumbing." in block(response, "status")
    assert page(response).get_element_by_id("status-action").get("href") == (
        f"{card_url(business)}#connection"
    )
    assert "Connect, Validate Connection and Disconnect are on the card of Joe's Plumbing." in (
        block(response, "connection")
    )
    assert not page(response).xpath('//form[@class="connect-form"]')


def test_no_link_to_a_parent_card_the_user_may_not_open(business, location):
    """A user who manages only the location sees what it inherits, without a link that 404s."""
    manager = UserFactory(username="east-manager")
    MembershipFactory(user=manager, business=location)
    salesforce_settings_update(source=location, data={"inherit_from_parent": True}, user=None)
    client = Client()
    client.force_login(manager)
    response = client.get(card_url(location))
    assert block(response, "inherited").startswith("Inherited from Joe's Plumbing")
    assert card_url(business) not in page(response).xpath("//a/@href")
    assert client.get(card_url(business)).status_code == 404
