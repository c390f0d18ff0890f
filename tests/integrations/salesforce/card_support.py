"""Helpers of the Salesforce card tests: reading the rendered page, building connections and
the POST data the card's form sends."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.utils import timezone

from autorespond.models import Source
from integrations.salesforce.models import ConnectionStatus, Environment, SalesforceConnection
from tests.pages import page

# A value a test can search the page for: it must never be shown.
ACCESS_TOKEN = "00Dxx0000001gPL!AQ4AQFake.access.token.value"
REFRESH_TOKEN = "5Aep861FakeRefreshTokenValue"
INSTANCE_URL = "https://acme.my.salesforce.invalid"


def card_url(source: Source) -> str:
    return f"/sources/{source.slug}/integrations/salesforce/"


def inputs(response: HttpResponse) -> dict[str, Any]:
    """The settings form's current values, as a browser would submit them."""
    form = page(response).get_element_by_id("settings-form", None)
    if form is None:
        forms = [f for f in page(response).forms if f.get("class") == "inherit-form"]
        form = forms[0]
    values = dict(form.form_values())
    # Browsers drop the newline right after <textarea> (HTML spec); lxml keeps it.
    for textarea in form.xpath(".//textarea"):
        name = textarea.get("name")
        if name in values and values[name].startswith("\n"):
            values[name] = values[name][1:]
    return values


def checked(response: HttpResponse, name: str) -> bool:
    found = page(response).xpath(f'//input[@name="{name}" and @type="checkbox"]')
    assert found, f"no checkbox {name}"
    return found[0].get("checked") is not None


def checked_radio(response: HttpResponse, name: str) -> str | None:
    found = page(response).xpath(f'//input[@name="{name}" and @type="radio" and @checked]')
    return found[0].get("value") if found else None


def form_data(**overrides: Any) -> dict[str, Any]:
    """The POST of an untouched card (all defaults), with changes; False drops a checkbox."""
    data: dict[str, Any] = {
        "record_type": "Lead",
        "assignment": "off",
        "assignment_rule_id": "",
        "header_options": "",
    }
    for name, value in overrides.items():
        if value is False:
            data.pop(name, None)
        elif value is True:
            data[name] = "on"
        else:
            data[name] = value
    return data


def connection_create(
    source: Source,
    *,
    environment: str = Environment.PRODUCTION,
    status: str = ConnectionStatus.CONNECTED,
    **fields: Any,
) -> SalesforceConnection:
    values: dict[str, Any] = {
        "environment": environment,
        "login_url": "https://login.salesforce.com"
        if environment == Environment.PRODUCTION
        else "https://test.salesforce.com",
        # A reserved host (RFC 6761 ".invalid"): the card asks the org for its assignment rules,
        # and a test without the emulator must fail that question at once, never reach an org.
        "instance_url": INSTANCE_URL,
        "org_id": "00D5e000000ABCDEAA",
        "user_id": "0055e000001XYZWAA4",
        "username": "joe@acme.example",
        "display_name": "Joe Owner",
        "access_token": ACCESS_TOKEN,
        "refresh_token": REFRESH_TOKEN,
        "status": status,
        "token_refreshed_at": timezone.now(),
    }
    values.update(fields)
    return SalesforceConnection.objects.create(source=source, **values)
