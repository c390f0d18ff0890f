"""Fixtures and helpers of the sync tests: a running Salesforce emulator, an org connected to a
source through the real OAuth flow, and shortcuts to send an inquiry through the sync service.

The emulator is the other side over real HTTPS (its own CA); nothing of ours is mocked. Test
modules import the fixtures they use from here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from autorespond.models import Inquiry, Source
from autorespond.services import inquiry_upsert
from integrations.salesforce.client import SalesforceClient
from integrations.salesforce.models import (
    InquirySync,
    SalesforceConnection,
    SalesforceSettings,
)
from integrations.salesforce.org_schema import org_schema_refresh
from integrations.salesforce.sync import AttemptResult, sync_inquiry_run
from salesforce_emulator import EmulatorControl, EmulatorServer
from tests.salesforce_emulator.conftest import connect


def point_settings_at(settings: Any, server: EmulatorServer) -> None:
    """Make the service trust the emulator's CA and accept its login hosts."""
    settings.SALESFORCE_CA_BUNDLE = str(server.ca_path)
    settings.SALESFORCE_LOGIN_URL = server.login_url
    settings.SALESFORCE_SANDBOX_LOGIN_URL = server.sandbox_login_url


@pytest.fixture
def emulator(sf_emulator_server: EmulatorServer, settings: Any) -> EmulatorServer:
    """The running emulator (the session's, from the package conftest), emptied for this test,
    with the service's settings pointing at it."""
    sf_emulator_server.state.reset()
    point_settings_at(settings, sf_emulator_server)
    return sf_emulator_server


@pytest.fixture
def control(emulator: EmulatorServer) -> EmulatorControl:
    return EmulatorControl(emulator.login_url)


@pytest.fixture
def org(control: EmulatorControl) -> dict[str, Any]:
    """An org whose connected app is ours (the client id and secret of the settings)."""
    return control.create_org(
        "Joe's Org",
        auto_approve=True,
        client_id=django_settings.SALESFORCE_CLIENT_ID,
        client_secret=django_settings.SALESFORCE_CLIENT_SECRET,
    )


def connect_source(server: EmulatorServer, org: dict[str, Any], source: Source) -> Any:
    """Connect `source` to `org` through the emulator's OAuth flow (auto-approved)."""
    token = connect(server, org)
    _, org_id, user_id = token["id"].rsplit("/", 2)
    connection = SalesforceConnection.objects.create(
        source=source,
        login_url=server.login_url,
        instance_url=token["instance_url"],
        org_id=org_id,
        user_id=user_id,
        username=org["users"][0]["username"],
        access_token=token["access_token"],
        refresh_token=token.get("refresh_token", ""),
    )
    # The org's schema, as Validate Connection (or the first sync) reads it: syncs then cost
    # only their own calls.
    org_schema_refresh(client=SalesforceClient(connection))
    return connection


@pytest.fixture
def connection(emulator: EmulatorServer, org: dict[str, Any], business: Source) -> Any:
    return connect_source(emulator, org, business)


def enable(source: Source, **options: Any) -> SalesforceSettings:
    """Turn the source's Salesforce card on, with options (model field names)."""
    values = {"enabled": True, **options}
    row, _ = SalesforceSettings.objects.update_or_create(source=source, defaults=values)
    return row


PERSON = {
    "first_name": "Ann",
    "last_name": "Lee",
    "company": "Lee Bakery",
    "email": "ann@example.com",
    "phone": "(415) 555-1212",
    "street": "1 Main St",
    "city": "Springfield",
    "state": "IL",
    "postal_code": "62701",
    "job_description": "Leaking kitchen tap",
}


def upsert(source: Source, external_id: str = "inq-1", **data: Any) -> Inquiry:
    """Create or change an inquiry the way the ingestion API does (it requests a sync)."""
    return inquiry_upsert(source=source, external_id=external_id, data=data).inquiry


def run(inquiry: Inquiry) -> AttemptResult | None:
    """Run the sync of `inquiry` now, as the worker would, even if a retry is scheduled later."""
    InquirySync.objects.filter(inquiry=inquiry, due_at__gt=timezone.now()).update(
        due_at=timezone.now() - dt.timedelta(seconds=1)
    )
    return sync_inquiry_run(inquiry_id=inquiry.pk)


def send(source: Source, external_id: str = "inq-1", **data: Any) -> InquirySync:
    """Upsert the inquiry and sync it; returns the sync row."""
    inquiry = upsert(source, external_id, **data)
    run(inquiry)
    return InquirySync.objects.get(inquiry=inquiry)


def sync_of(inquiry: Inquiry) -> InquirySync:
    return InquirySync.objects.get(inquiry=inquiry)


def leads(control: Any, org: dict[str, Any]) -> list[dict[str, Any]]:
    """The Leads in the emulator's org."""
    return control.records(org["org_id"], "Lead")


def contacts(control: Any, org: dict[str, Any]) -> list[dict[str, Any]]:
    """The Contacts in the emulator's org."""
    return control.records(org["org_id"], "Contact")
