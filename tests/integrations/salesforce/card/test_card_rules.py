"""The assignment-rule picker: the org's rules read from Salesforce (the emulator over HTTPS), an
id the org does not have refused on save with the field error, and nothing asked of an org that
cannot answer."""

from __future__ import annotations

from typing import Any

import lxml.html
import pytest
from django.core.cache import cache

from integrations.salesforce.card.services import org_assignment_rules, salesforce_settings_update
from integrations.salesforce.models import SalesforceSettings
from tests.integrations.salesforce.card_support import (
    card_url,
    checked_radio,
    connection_create,
    form_data,
    inputs,
)
from tests.integrations.salesforce.sync_support import connection  # noqa: F401 - a fixture
from tests.pages import block, page

pytestmark = pytest.mark.django_db

UNKNOWN_RULE = "01Q000000000XYZAAA"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    cache.clear()


@pytest.fixture
def rules(control, org) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Two Lead rules (the later one is the active one) and a Case rule, which is never offered."""
    rep = control.add_user(org["org_id"], "rep@joesorg.example", email="rep@joesorg.example")
    entries = [{"assign_to": rep["id"], "criteria": {}}]
    east = control.set_assignment_rule(org["org_id"], "Lead", entries, name="East team")
    west = control.set_assignment_rule(org["org_id"], "Lead", entries, name="West team")
    case = control.set_assignment_rule(org["org_id"], "Case", entries, name="Support cases")
    return {"east": east, "west": west, "case": case}


def options(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    found = page(response).xpath('//select[@name="assignment_rule_id"]//option')
    return {o.get("value"): o.text_content().strip() for o in found}


def test_the_picker_offers_the_orgs_lead_rules(owner_client, business, connection, rules):
    response = owner_client.get(card_url(business))
    offered = options(response)
    assert offered[rules["east"]["id"]] == "East team"
    assert offered[rules["west"]["id"]] == "West team (active)"
    assert rules["case"]["id"] not in offered
    groups = page(response).xpath('//select[@name="assignment_rule_id"]/optgroup/@label')
    assert groups == ["Leads"]


def test_a_rule_from_the_list_is_saved_and_shown_again(owner_client, business, connection, rules):
    rule_id = rules["east"]["id"]
    response = owner_client.post(
        card_url(business), form_data(assignment="rule", assignment_rule_id=rule_id)
    )
    assert response.status_code == 302
    stored = SalesforceSettings.objects.get(source=business).header_options
    assert stored == f"AssignmentRuleHeader,assignmentRuleId,{rule_id}"
    again = owner_client.get(card_url(business))
    assert checked_radio(again, "assignment") == "rule"
    assert inputs(again)["assignment_rule_id"] == rule_id


def test_a_15_character_id_of_a_rule_is_accepted(owner_client, business, connection, rules):
    short = rules["west"]["id"][:15]
    response = owner_client.post(
        card_url(business), form_data(assignment="rule", assignment_rule_id=short)
    )
    assert response.status_code == 302


def test_an_id_the_org_does_not_have_is_refused_at_the_picker(
    owner_client, business, connection, rules
):
    """A crafted POST (or a stale page): the org answers every create with
    INVALID_CROSS_REFERENCE_KEY for such an id, so it is refused here."""
    response = owner_client.post(
        card_url(business),
        form_data(enabled=True, assignment="rule", assignment_rule_id=UNKNOWN_RULE),
    )
    assert response.status_code == 400
    assert (
        f"Your Salesforce org has no assignment rule with the ID {UNKNOWN_RULE}. Choose one of "
        "its rules from the list." in block(response, "field-assignment_rule_id")
    )
    assert 'href="#field-assignment"' in block_html(response, "form-errors")
    assert not SalesforceSettings.objects.exists()


def test_an_id_the_org_does_not_have_is_refused_in_the_advanced_text(
    owner_client, business, connection, rules
):
    text = f"AssignmentRuleHeader,assignmentRuleId,{UNKNOWN_RULE}"
    response = owner_client.post(card_url(business), form_data(header_options=text))
    assert response.status_code == 400
    assert f"no assignment rule with the ID {UNKNOWN_RULE}" in block(
        response, "field-header_options"
    )
    # The Advanced section opens by itself, so the error is seen.
    assert page(response).xpath('//details[@id="advanced"]/@open')  # present: open
    assert not SalesforceSettings.objects.exists()


def test_a_case_rule_is_refused_for_a_leads_card(owner_client, business, connection, rules):
    response = owner_client.post(
        card_url(business),
        form_data(header_options=f"AssignmentRuleHeader,assignmentRuleId,{rules['case']['id']}"),
    )
    assert response.status_code == 400
    assert "no assignment rule with the ID" in block(response, "field-header_options")


def test_a_rule_made_after_the_card_was_read_is_found_on_save(
    owner_client, business, connection, control, org, rules
):
    owner_client.get(card_url(business))  # the list is cached now
    rep = control.add_user(org["org_id"], "new@joesorg.example", email="new@joesorg.example")
    late = control.set_assignment_rule(
        org["org_id"], "Lead", [{"assign_to": rep["id"], "criteria": {}}], name="Late"
    )
    response = owner_client.post(
        card_url(business), form_data(assignment="rule", assignment_rule_id=late["id"])
    )
    assert response.status_code == 302


def test_without_a_connection_no_rule_can_be_chosen(owner_client, business):
    response = owner_client.get(card_url(business))
    assert "To choose a specific rule, connect Salesforce first" in block(
        response, "field-assignment"
    )
    response = owner_client.post(
        card_url(business), form_data(assignment="rule", assignment_rule_id=UNKNOWN_RULE)
    )
    assert response.status_code == 400
    assert "The rule could not be checked with Salesforce" in block(
        response, "field-assignment_rule_id"
    )
    assert not SalesforceSettings.objects.exists()


def test_a_saved_rule_is_kept_while_salesforce_cannot_be_asked(owner_client, business):
    """Saving other settings must not fail because the org cannot be asked right now."""
    salesforce_settings_update(
        source=business,
        data={"header_options": f"AssignmentRuleHeader,assignmentRuleId,{UNKNOWN_RULE}"},
        user=None,
    )
    connection_create(business)  # an unreachable org
    response = owner_client.get(card_url(business))
    assert options(response)[UNKNOWN_RULE] == (
        f"{UNKNOWN_RULE} (could not be checked with Salesforce)"
    )
    values = inputs(response)
    values["enabled"] = "on"
    assert owner_client.post(card_url(business), values).status_code == 302
    assert SalesforceSettings.objects.get(source=business).enabled is True


def test_a_saved_rule_the_org_lost_is_shown_as_such_and_must_be_changed(
    owner_client, business, connection, rules
):
    salesforce_settings_update(
        source=business,
        data={"header_options": f"AssignmentRuleHeader,assignmentRuleId,{UNKNOWN_RULE}"},
        user=None,
    )
    response = owner_client.get(card_url(business))
    assert options(response)[UNKNOWN_RULE] == f"{UNKNOWN_RULE} (not a rule of your org)"
    assert owner_client.post(card_url(business), inputs(response)).status_code == 400


def test_the_rules_are_read_once_and_then_cached(business, connection, rules, emulator):
    first = org_assignment_rules(connection=connection)
    assert [r.name for r in first.of("Lead")] == ["East team", "West team"]
    connection.refresh_from_db()
    used = connection.api_usage_used
    assert org_assignment_rules(connection=connection) == first
    connection.refresh_from_db()
    assert connection.api_usage_used == used


def block_html(response, element_id: str) -> str:  # type: ignore[no-untyped-def]
    return lxml.html.tostring(page(response).get_element_by_id(element_id)).decode()
