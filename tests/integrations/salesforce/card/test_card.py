"""The Salesforce card: defaults, saving, validation next to the field, the header string and the
automation switches as one setting, connection state, hints, permissions and CSRF."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from integrations.salesforce.card.services import salesforce_settings_update
from integrations.salesforce.models import (
    ConnectionStatus,
    Environment,
    RecordType,
    SalesforceSettings,
)
from tests.factories import SourceFactory
from tests.integrations.salesforce.card_support import (
    ACCESS_TOKEN,
    INSTANCE_URL,
    REFRESH_TOKEN,
    card_url,
    checked,
    checked_radio,
    connection_create,
    form_data,
    inputs,
)
from tests.pages import block, has_block, page

pytestmark = pytest.mark.django_db

ON_OFF_OPTIONS = [
    "enabled",
    "send_job_description",
    "only_with_contact_info",
    "only_new_leads",
    "include_source_name",
]


def settings_row(source) -> SalesforceSettings:  # type: ignore[no-untyped-def]
    return SalesforceSettings.objects.get(source=source)


def db_snapshot() -> list[dict]:
    return list(SalesforceSettings.objects.order_by("pk").values())


# --- Defaults and labels --------------------------------------------------------------------


def test_unsaved_settings_show_every_default(owner_client, business):
    response = owner_client.get(card_url(business))
    assert response.status_code == 200
    for name in [*ON_OFF_OPTIONS, "auto_response", "notify_owner"]:
        assert checked(response, name) is False, name
    assert checked_radio(response, "record_type") == "Lead"
    assert checked_radio(response, "assignment") == "off"
    assert inputs(response)["header_options"] == ""
    # Viewing the card saves nothing.
    assert not SalesforceSettings.objects.exists()


def test_labels_and_explanations_are_the_product_pages(owner_client, location):
    response = owner_client.get(card_url(location))
    assert block(response, "field-enabled").startswith("Enable Turns the integration on or off")
    assert "Nothing is sent to Salesforce until Enable is on." in block(response, "field-enabled")
    assert block(response, "field-inherit_from_parent").startswith("Inherit from parent")
    record_type = block(response, "field-record_type")
    assert record_type.startswith("Record type Leads — The standard choice for most sales orgs.")
    assert "Contacts — Use this if your Salesforce setup skips the Lead object" in record_type
    assert "Switching this only affects new records" in record_type
    job = block(response, "field-send_job_description")
    assert job.startswith("Include job description The description of the inquiry")
    contact = block(response, "field-only_with_contact_info")
    assert contact.startswith("Create customer only when contact info is captured")
    assert "The Salesforce record is only created after a phone number or email" in contact
    new_leads = block(response, "field-only_new_leads")
    assert new_leads.startswith("Create only for new leads If a matching Salesforce record")
    source_name = block(response, "field-include_source_name")
    assert source_name.startswith("Include source name The source name is added")
    auto = block(response, "field-auto_response")
    assert auto.startswith("Send Salesforce's auto-response email to the customer")
    assert "Auto-Respond already replies to them, so this is a second email." in auto
    assert block(response, "field-assignment").startswith(
        "Give the record to an owner with an assignment rule"
    )
    assert block(response, "field-notify_owner").startswith("Email the assigned owner")
    assert block(response, "field-header_options").startswith("Advanced: API headers")
    # No jargon and no repeated "Default: off. On: … Off: …" on the main card: the header
    # names live under Advanced only.
    main = block(response, "settings") + block(response, "field-auto_response")
    main += block(response, "field-assignment") + block(response, "field-notify_owner")
    for jargon in ("(setting: sendJobDescription)", "EmailHeader", "SOAP", "Default: off", "Off:"):
        assert jargon not in main, jargon
    assert page(response).xpath('//details[@id="advanced"]//textarea[@name="header_options"]')
    assert page(response).xpath('//details[@id="advanced"]/@open') == []
    crumbs = block(response, "connection")  # the card's connection section is there too
    assert "Not connected." in crumbs


def test_breadcrumb_names_the_source(owner_client, location):
    text = owner_client.get(card_url(location)).content.decode()
    assert "Messaging Settings → Integrations → " in text
    assert "Joe&#x27;s Plumbing East</a> → Messaging Settings → Integrations →" in text


def test_inherit_from_parent_is_shown_only_on_a_source_with_a_parent(
    owner_client, business, location
):
    assert not has_block(owner_client.get(card_url(business)), "field-inherit_from_parent")
    assert has_block(owner_client.get(card_url(location)), "field-inherit_from_parent")


# --- Saving ---------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ON_OFF_OPTIONS)
def test_saving_an_option_turns_it_on_and_the_card_shows_it(owner_client, business, option):
    response = owner_client.post(card_url(business), form_data(**{option: True}))
    assert response.status_code == 302
    assert response["Location"] == card_url(business)
    row = settings_row(business)
    assert getattr(row, option) is True
    others = [name for name in ON_OFF_OPTIONS if name != option]
    assert not any(getattr(row, name) for name in others)
    page = owner_client.get(card_url(business))
    assert checked(page, option) is True
    assert "Salesforce settings saved." in page.content.decode()


def test_saving_an_option_off_again(owner_client, business):
    owner_client.post(card_url(business), form_data(enabled=True, only_new_leads=True))
    owner_client.post(card_url(business), form_data(enabled=True))
    row = settings_row(business)
    assert row.enabled is True
    assert row.only_new_leads is False


def test_record_type_contacts_is_saved(owner_client, business):
    owner_client.post(card_url(business), form_data(record_type="Contact"))
    assert settings_row(business).record_type == RecordType.CONTACT
    assert checked_radio(owner_client.get(card_url(business)), "record_type") == "Contact"


def test_a_browser_round_trip_keeps_everything(owner_client, business):
    """Submitting the page exactly as rendered changes nothing."""
    owner_client.post(
        card_url(business),
        form_data(
            enabled=True,
            record_type="Contact",
            include_source_name=True,
            header_options="MruHeader,updateMru,false;EmailHeader,triggerUserEmail,true",
        ),
    )
    before = db_snapshot()
    values = inputs(owner_client.get(card_url(business)))
    response = owner_client.post(card_url(business), values)
    assert response.status_code == 302
    after = db_snapshot()
    for row in (*before, *after):
        row.pop("updated_at")
    assert after == before


# --- The automation switches and the option string: one setting -----------------------------


def test_switches_write_the_option_string(owner_client, business):
    owner_client.post(
        card_url(business), form_data(auto_response=True, notify_owner=True, assignment="default")
    )
    assert settings_row(business).header_options == (
        "EmailHeader,triggerAutoResponseEmail,true;EmailHeader,triggerUserEmail,true;"
        "AssignmentRuleHeader,useDefaultRule,true"
    )


def test_the_option_string_sets_the_switches(owner_client, business):
    owner_client.post(
        card_url(business),
        form_data(header_options="EmailHeader,triggerUserEmail,true;AssignmentRuleHeader,"
                  "useDefaultRule,true"),
    )  # fmt: skip
    response = owner_client.get(card_url(business))
    assert checked(response, "notify_owner") is True
    assert checked(response, "auto_response") is False
    assert checked_radio(response, "assignment") == "default"


def test_switches_keep_the_rest_of_the_string(owner_client, business):
    salesforce_settings_update(
        source=business,
        data={"header_options": "MruHeader,updateMru,false;EmailHeader,triggerOtherEmail,true"},
        user=None,
    )
    stored = settings_row(business).header_options
    assert stored == "EmailHeader,triggerOtherEmail,true;MruHeader,updateMru,false"
    # The text is submitted unchanged, so the switches rewrite only their own parts.
    owner_client.post(card_url(business), form_data(auto_response=True, header_options=stored))
    assert settings_row(business).header_options == (
        "EmailHeader,triggerAutoResponseEmail,true;EmailHeader,triggerOtherEmail,true;"
        "MruHeader,updateMru,false"
    )


def test_turning_the_switches_off_removes_only_their_parts(owner_client, business):
    salesforce_settings_update(
        source=business,
        data={
            "header_options": "EmailHeader,triggerUserEmail,true;"
            "AssignmentRuleHeader,useDefaultRule,true;AllOrNoneHeader,allOrNone,true"
        },
        user=None,
    )
    stored = settings_row(business).header_options
    owner_client.post(card_url(business), form_data(header_options=stored, assignment="off"))
    assert settings_row(business).header_options == "AllOrNoneHeader,allOrNone,true"


def test_an_edited_string_wins_over_switches_changed_in_the_same_save(owner_client, business):
    response = owner_client.post(
        card_url(business),
        form_data(auto_response=True, header_options="EmailHeader,triggerUserEmail,true"),
        follow=True,
    )
    assert settings_row(business).header_options == "EmailHeader,triggerUserEmail,true"
    assert checked(response, "auto_response") is False
    assert checked(response, "notify_owner") is True
    assert "so that text decided the automation switches" in response.content.decode()


def test_the_stored_string_is_canonical(owner_client, business):
    owner_client.post(
        card_url(business),
        form_data(
            header_options="  MruHeader , updateMru , false ;EmailHeader,triggerUserEmail,true;"
        ),
    )
    assert (
        settings_row(business).header_options
        == "EmailHeader,triggerUserEmail,true;MruHeader,updateMru,false"
    )


# --- Validation: next to the field, and nothing saved ----------------------------------------

# Every error of seed 003 (and the parser's own for what the seed leaves open), with its tips.
OPTION_STRING_ERRORS = [
    (
        "EmailHeader,triggerUserEmail",
        "Invalid SOAP header format: 'EmailHeader,triggerUserEmail'",
        [
            "Tip: Expected format: 'HeaderName,property,value'",
            "Tip: Example: 'EmailHeader,triggerUserEmail,true'",
        ],
    ),
    (
        "EmalHeader,triggerUserEmail,true",
        "Unknown SOAP header: 'EmalHeader'",
        [
            "Tip: Available headers: AllOrNoneHeader, AllowFieldTruncationHeader, "
            "AssignmentRuleHeader, DisableFeedTrackingHeader, DuplicateRuleHeader, EmailHeader, "
            "MruHeader",
            "Tip: Header names are case-sensitive and must match Salesforce API exactly",
        ],
    ),
    (
        "EmailHeader,triggerUserEmail,yes",
        "Invalid boolean value 'yes' for EmailHeader.triggerUserEmail",
        [
            "Tip: Boolean values must be exactly 'true' or 'false' (lowercase)",
            "Tip: Example: 'EmailHeader,triggerUserEmail,true'",
        ],
    ),
    (
        "AssignmentRuleHeader,assignmentRuleId,01Q5e000000EXAMPLE;"
        "AssignmentRuleHeader,useDefaultRule,true",
        "AssignmentRuleHeader properties assignmentRuleId and useDefaultRule are mutually "
        "exclusive",
        [
            "Tip: Specify either assignmentRuleId OR useDefaultRule, not both",
            "Tip: Example: 'AssignmentRuleHeader,useDefaultRule,true'",
        ],
    ),
    (
        "EmailHeader,triggerUserMail,true",
        "Unknown property 'triggerUserMail' for EmailHeader",
        [
            "Tip: EmailHeader properties: triggerAutoResponseEmail, triggerOtherEmail, "
            "triggerUserEmail",
        ],
    ),
    (
        "MruHeader,updateMru,true;MruHeader,updateMru,false",
        "Duplicate property MruHeader.updateMru",
        ["Tip: Specify each property once"],
    ),
    (
        "AssignmentRuleHeader,assignmentRuleId,12345",
        "Invalid assignmentRuleId '12345' for AssignmentRuleHeader",
        ["Tip: An assignment rule ID has 15 or 18 letters and digits and starts with 01Q"],
    ),
]


@pytest.mark.parametrize(("text", "error", "tips"), OPTION_STRING_ERRORS)
def test_option_string_errors_are_shown_next_to_the_field_with_their_tips(
    owner_client, business, text, error, tips
):
    salesforce_settings_update(source=business, data={"include_source_name": True}, user=None)
    before = db_snapshot()
    response = owner_client.post(
        card_url(business), form_data(enabled=True, record_type="Contact", header_options=text)
    )
    assert response.status_code == 400
    field = block(response, "field-header_options")
    assert error in field
    for tip in tips:
        assert tip in field
    # The rest of the page did not pick the error up, and nothing was saved.
    assert error not in block(response, "settings")
    assert "Nothing was saved." in response.content.decode()
    assert db_snapshot() == before
    # What the owner typed (and the other changes) are still in the form, ready to fix.
    values = inputs(response)
    assert values["header_options"] == text
    assert values["enabled"] == "on"
    assert values["record_type"] == "Contact"


def test_a_specific_rule_must_be_chosen(owner_client, business):
    response = owner_client.post(card_url(business), form_data(enabled=True, assignment="rule"))
    assert response.status_code == 400
    assert "Choose one of your org's assignment rules." in block(
        response, "field-assignment_rule_id"
    )
    assert not SalesforceSettings.objects.exists()


def test_an_invalid_rule_id_from_the_switch_is_shown_next_to_it(owner_client, business):
    response = owner_client.post(
        card_url(business), form_data(assignment="rule", assignment_rule_id="00Q5e000000EXAMPLE")
    )
    assert response.status_code == 400
    field = block(response, "field-assignment_rule_id")
    assert "Invalid assignmentRuleId '00Q5e000000EXAMPLE' for AssignmentRuleHeader" in field
    assert "Tip: An assignment rule ID has 15 or 18 letters and digits and starts with 01Q" in field
    assert "Invalid assignmentRuleId" not in block(response, "field-header_options")
    assert not SalesforceSettings.objects.exists()


def test_an_unknown_record_type_is_rejected(owner_client, business):
    response = owner_client.post(card_url(business), form_data(record_type="Account"))
    assert response.status_code == 400
    assert "Choose Leads or Contacts." in block(response, "field-record_type")
    assert not SalesforceSettings.objects.exists()


def test_the_service_rejects_what_the_form_would(business, location):
    with pytest.raises(ValidationError) as no_parent:
        salesforce_settings_update(source=business, data={"inherit_from_parent": True}, user=None)
    assert no_parent.value.message_dict == {
        "inherit_from_parent": ["Only a location with a parent can inherit its settings."]
    }
    with pytest.raises(ValidationError) as bad_string:
        salesforce_settings_update(source=business, data={"header_options": "x,y"}, user=None)
    assert bad_string.value.message_dict["header_options"][0].startswith(
        "ERROR: Invalid SOAP header format: 'x,y'\nTip: Expected format"
    )
    with pytest.raises(ValidationError):
        salesforce_settings_update(source=business, data={"record_type": "Account"}, user=None)
    with pytest.raises(ValidationError):
        salesforce_settings_update(source=business, data={"source": location}, user=None)
    assert not SalesforceSettings.objects.exists()


# --- Connection state ------------------------------------------------------------------------


def test_not_connected_offers_connect_with_the_login_choices(owner_client, business):
    response = owner_client.get(card_url(business))
    connection = block(response, "connection")
    assert "Not connected." in connection
    assert "Production" in connection and "Sandbox" in connection and "My Domain" in connection
    names = {i.get("name") for i in page(response).xpath('//form[@class="connect-form"]//input')}
    assert {"csrfmiddlewaretoken", "environment", "my_domain"} <= names
    assert block(response, "status-pill") == "Not connected"
    assert "Nothing is sent until a Salesforce user is connected." in block(response, "status")


def test_connected_shows_user_org_environment_and_instance(owner_client, business):
    connection_create(business, environment=Environment.SANDBOX)
    response = owner_client.get(card_url(business))
    text = block(response, "connection")
    assert "Connected." in text
    assert "Joe Owner (joe@acme.example)" in text
    assert "00D5e000000ABCDEAA" in text
    assert "Environment Sandbox" in text
    assert INSTANCE_URL in text
    assert "Validate Connection" in text and "Disconnect" in text
    page = response.content.decode()
    assert ACCESS_TOKEN not in page and REFRESH_TOKEN not in page


def test_last_validation_result_is_shown(owner_client, business):
    connection_create(
        business,
        last_validated_at=timezone.now(),
        last_validation_ok=False,
        last_validation_message="INVALID_SESSION_ID: Session expired or invalid",
    )
    response = owner_client.get(card_url(business))
    assert "Validation failed: INVALID_SESSION_ID: Session expired or invalid" in block(
        response, "connection"
    )


def test_needs_reconnect_reads_as_such_and_never_beside_an_ok(owner_client, business):
    connection_create(
        business,
        status=ConnectionStatus.NEEDS_RECONNECT,
        status_reason="invalid_grant: expired access/refresh token",
        # Validated fine yesterday: that "OK" must not sit beside the broken connection.
        last_validated_at=timezone.now(),
        last_validation_ok=True,
    )
    response = owner_client.get(card_url(business))
    text = block(response, "connection")
    assert text.startswith(
        "Connection Waiting for reconnect. Salesforce no longer accepts this connection (the "
        "sign-in expired or was revoked). Click Connect and sign in to Salesforce again"
    )
    assert "Details for support invalid_grant: expired access/refresh token" in text
    assert "OK" not in text.split()
    assert "Last validation" not in text
    assert "“Validation failed” / token expired" not in block(response, "status")
    assert block(response, "status-pill") == "Waiting for reconnect"


# --- Troubleshooting -------------------------------------------------------------------------


def test_enable_off_is_the_header_with_its_one_action(owner_client, business):
    connection_create(business)
    response = owner_client.get(card_url(business))
    assert block(response, "status-pill") == "Connected but off"
    assert block(response, "status-action") == "Turn on Enable"
    owner_client.post(card_url(business), form_data(enabled=True))
    assert block(owner_client.get(card_url(business)), "status-pill") == "Sending"


def test_the_full_troubleshooting_list_is_on_the_card(owner_client, business):
    text = block(owner_client.get(card_url(business)), "troubleshooting")
    assert "Records created as the wrong type — Check the record-type setting on the card." in text
    assert "Description empty — Turn on Include job description" in text
    assert "Duplicates — Enable Create only for new leads to skip matches." in text


# --- Permissions and CSRF --------------------------------------------------------------------


@pytest.fixture
def other_business():  # type: ignore[no-untyped-def]
    return SourceFactory(slug="acme-hvac", name="Acme HVAC")


def test_owner_gets_404_for_another_business_on_get_and_post(owner_client, other_business):
    assert owner_client.get(card_url(other_business)).status_code == 404
    response = owner_client.post(card_url(other_business), form_data(enabled=True))
    assert response.status_code == 404
    assert not SalesforceSettings.objects.exists()


def test_owner_can_change_every_level_of_their_business(owner_client, location):
    deep = SourceFactory(slug="joes-east-van", name="East van", parent=location)
    assert owner_client.post(card_url(deep), form_data(enabled=True)).status_code == 302
    assert settings_row(deep).enabled is True


def test_staff_can_see_and_change_any_source(staff_client, other_business):
    assert staff_client.get(card_url(other_business)).status_code == 200
    response = staff_client.post(card_url(other_business), form_data(enabled=True))
    assert response.status_code == 302
    assert settings_row(other_business).enabled is True


def test_anonymous_post_goes_to_login_and_saves_nothing(client, business):
    response = client.post(card_url(business), form_data(enabled=True))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not SalesforceSettings.objects.exists()


def test_a_post_without_the_csrf_token_is_refused(owner, business):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(card_url(business), form_data(enabled=True)).status_code == 403
    assert not SalesforceSettings.objects.exists()


def test_a_post_with_the_csrf_token_is_accepted(owner, business):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    values = inputs(client.get(card_url(business)))
    assert values["csrfmiddlewaretoken"]
    values["enabled"] = "on"
    assert client.post(card_url(business), values).status_code == 302
    assert settings_row(business).enabled is True


def test_every_form_on_the_card_carries_the_csrf_token(owner_client, business):
    connection_create(business)
    forms = [f for f in page(owner_client.get(card_url(business))).forms if f.method == "POST"]
    assert len(forms) >= 3  # settings, connect, validate
    for form in forms:
        assert "csrfmiddlewaretoken" in dict(form.form_values()), form.action
