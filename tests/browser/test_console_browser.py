"""The support console in a real browser: staff run Validate all and watch it finish.

Everything is real: Chromium, the live server, a Celery worker process fed through Redis, and
the emulator answering the validations over HTTPS. The page's poller (plain fetch every second)
moves the progress to "3 of 3" without a reload.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from integrations.salesforce.models import ConnectionStatus, SalesforceConnection, ValidationRun
from tests.emulator_support import create_org
from tests.factories import SourceFactory
from tests.integrations.salesforce.console_support import emulator_worker_env
from tests.integrations.salesforce.oauth_support import (
    connect_through_emulator,
)

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_staff_run_validate_all_and_see_it_reach_the_end(
    browser_page: Any,
    live_server: Any,
    start_worker: Any,
    staff: Any,
    control: Any,
    emulator: Any,
    sf_settings: Any,
) -> None:
    # Three sources, each connected to its own org through a real OAuth grant.
    connector = Client()
    connector.force_login(staff)
    sources = [
        SourceFactory(slug="joes-plumbing", name="Joe's Plumbing"),
        SourceFactory(slug="acme-roofing", name="Acme Roofing"),
        SourceFactory(slug="bay-electric", name="Bay Electric"),
    ]
    connections = []
    for source in sources:
        create_org(control, auto_approve=True)
        connections.append(connect_through_emulator(connector, source))
    # One org's admin revoked our access in Salesforce.
    control.revoke_refresh_tokens(connections[1].org_id)
    start_worker(emulator_worker_env(emulator))

    page = browser_page
    page.goto(f"{live_server.url}/accounts/login/?next=/support/salesforce/")
    page.fill("input[name=username]", "support")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(f"{live_server.url}/support/salesforce/")
    assert page.locator("#connections tbody tr[id]").count() == 3

    page.click("#validate-all-button")
    page.wait_for_selector("#run-progress")
    assert "Validating all 3 connections in the background" in page.inner_text(".messages")
    url_while_running = page.url
    # The worker does the work; the page's poller shows it arriving.
    page.wait_for_function(
        "document.getElementById('run-progress-text').textContent === '3 of 3'", timeout=60_000
    )
    page.wait_for_selector("#run-progress-reload", state="visible")
    assert page.url == url_while_running  # updated in place, not by reloading
    assert page.inner_text("#run-progress-failed") == "1"
    assert "finished" in page.inner_text("#run-progress-state")

    run = ValidationRun.objects.get()
    assert (run.done, run.total, run.failed, run.is_finished) == (3, 3, 1, True)
    revoked = SalesforceConnection.objects.get(pk=connections[1].pk)
    assert revoked.status == ConnectionStatus.NEEDS_RECONNECT

    # "Show the results" reloads the list with the outcome in each row.
    page.click("#run-progress-reload")
    row = page.inner_text(f"#connection-{revoked.pk}")
    assert "Needs reconnect" in row and "invalid_grant" in row
    assert "1 connection failed in this run" in page.inner_text("#run-progress")
