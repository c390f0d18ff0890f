"""Fixtures and helpers of the sync tests: a running Salesforce emulator, an org connected to a
source through the real OAuth flow, and shortcuts to send an inquiry through the sync service.

The emulator is the other side over real HTTPS (its own CA); nothing of ours is mocked. Test
modules import the fixtures they use from here; the emulator fixtures (`emulator`, `control`,
`org`) are the one set in tests/emulator_support.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from autorespond.models import Inquiry, Source
from autorespond.services import inquiry_upsert
from integrations.salesforce.models import (
    InquirySync,
    SalesforceConnection,
    SalesforceSettings,
)
from integrations.salesforce.oauth.tokens import salesforce_client
from integrations.salesforce.sync.org_schema import org_schema_refresh
from integrations.salesforce.sync.runner import AttemptResult, sync_inquiry_run
from salesforce_emulator import EmulatorServer
from tests.salesforce_emulator.conftest import connect


def connect_source(
    server: EmulatorServer, org: dict[str, Any], source: Source, *, username: str = ""
) -> Any:
    """Connect `source` to `org` through the emulator's OAuth flow (auto-approved), as the
    org's admin or as the user `username`."""
    token = connect(server, org, login_hint=username)
    _, org_id, user_id = token["id"].rsplit("/", 2)
    connection = SalesforceConnection.objects.create(
        source=source,
        login_url=server.login_url,
        instance_url=token["instance_url"],
        org_id=org_id,
        user_id=user_id,
        username=username or org["users"][0]["username"],
        access_token=token["access_token"],
        refresh_token=token.get("refresh_token", ""),
    )
    # The org's schema, as Validate Connection (or the first sync) reads it: syncs then cost
    # only their own calls.
    org_schema_refresh(client=salesforce_client(connection))
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
    """Run the sync of `inquiry` now, as the worker would, even if a retry is scheduled later
    (or its org's circuit breaker would probe later: time passes)."""
    InquirySync.objects.filter(inquiry=inquiry, due_at__gt=timezone.now()).update(
        due_at=timezone.now() - dt.timedelta(seconds=1)
    )
    SalesforceConnection.objects.filter(breaker_probe_at__gt=timezone.now()).update(
        breaker_probe_at=timezone.now() - dt.timedelta(seconds=1)
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
