"""Helpers of the support console tests: connections and syncs in the database, page parsing.

Connections made here carry made-up tokens (for tests that never call Salesforce); tests that do
call it connect through the emulator with a real OAuth grant (see test_console_validation.py).
"""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import urlsplit

from django.http import HttpResponse
from django.utils import timezone

from autorespond.models import Source
from integrations.salesforce.models import (
    ConnectionStatus,
    Environment,
    InquirySync,
    SalesforceConnection,
    SalesforceSettings,
    SyncAttempt,
    SyncStatus,
)
from tests.factories import InquiryFactory
from tests.pages import block, page, text_of

# Values a test searches the pages for: they must never be shown.
ACCESS_TOKEN = "00Dxx0000001gPL!AQ4AQConsole.access.token.value"
REFRESH_TOKEN = "5Aep861ConsoleRefreshTokenValue"

_numbers = itertools.count(1)


def connection_make(
    source: Source,
    *,
    status: str = ConnectionStatus.CONNECTED,
    environment: str = Environment.PRODUCTION,
    **fields: Any,
) -> SalesforceConnection:
    n = next(_numbers)
    values: dict[str, Any] = {
        "environment": environment,
        "login_url": "https://login.salesforce.com",
        "instance_url": "https://acme.my.salesforce.com",
        "org_id": f"00D5e0000{n:05d}AAA"[:18],
        "user_id": f"0055e0000{n:05d}AAA"[:18],
        "username": f"user{n}@{source.slug}.example",
        "display_name": f"User {n}",
        "access_token": ACCESS_TOKEN,
        "refresh_token": REFRESH_TOKEN,
        "status": status,
    }
    values.update(fields)
    return SalesforceConnection.objects.create(source=source, **values)


def inherit(source: Source) -> None:
    SalesforceSettings.objects.update_or_create(
        source=source, defaults={"inherit_from_parent": True}
    )


def sync_make(
    source: Source,
    status: str = SyncStatus.FAILED,
    *,
    error_code: str = "",
    error_message: str = "",
    attempts: int = 0,
    **fields: Any,
) -> InquirySync:
    """An inquiry of `source` with a sync row in `status` and `attempts` recorded tries."""
    if status == SyncStatus.FAILED and not error_code:
        error_code, error_message = (
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [Company]",
        )
    error_fields = ["Company"] if error_code == "REQUIRED_FIELD_MISSING" else []
    sync = InquirySync.objects.create(
        inquiry=InquiryFactory(source=source),
        status=status,
        error_code=error_code,
        error_message=error_message,
        error_fields=error_fields,
        attempt_count=attempts,
        **fields,
    )
    for _ in range(attempts):
        SyncAttempt.objects.create(
            sync=sync,
            started_at=timezone.now(),
            finished_at=timezone.now(),
            api_calls=2,
            outcome=status,
            error_code=error_code,
            error_message=error_message,
            error_fields=error_fields,
        )
    return sync


def listed_connection_ids(response: HttpResponse) -> list[int]:
    """The ids of the connections in the console's table, in order."""
    rows = page(response).xpath('//table[@id="connections"]/tbody/tr[@id]')
    return [int(row.get("id").removeprefix("connection-")) for row in rows]


def row_text(response: HttpResponse, connection: SalesforceConnection) -> str:
    return block(response, f"connection-{connection.pk}")


def cell(response: HttpResponse, connection: SalesforceConnection, css_class: str) -> str:
    found = page(response).xpath(
        f'//tr[@id="connection-{connection.pk}"]/td[contains(@class, "{css_class}")]'
    )
    assert found, f"no {css_class} cell for connection {connection.pk}"
    return text_of(found[0])


def emulator_worker_env(emulator: Any) -> dict[str, str]:
    """What a Celery worker process needs to reach the emulator, as `make run` configures it."""
    return {
        "SALESFORCE_LOGIN_URL": emulator.login_url,
        "SALESFORCE_SANDBOX_LOGIN_URL": emulator.sandbox_login_url,
        "SALESFORCE_CA_BUNDLE": str(emulator.ca_path),
        "SALESFORCE_EXTRA_LOGIN_HOSTS": ",".join(
            urlsplit(url).netloc for url in (emulator.login_url, emulator.sandbox_login_url)
        ),
        # requests lets these override the CA the client sets; this bundle has ours too.
        "REQUESTS_CA_BUNDLE": str(emulator.ca_bundle_path),
        "CURL_CA_BUNDLE": str(emulator.ca_bundle_path),
        # The worker's email goes to its log, where a test can count it.
        "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
    }
