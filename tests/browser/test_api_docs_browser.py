"""The API docs page works offline: Swagger UI's assets come from django-ninja's static files,
not a CDN (issue 14). Every request off this machine is blocked, and the page must still show
the ingestion API's operations."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from playwright.sync_api import Page, Route, expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


def test_api_docs_render_with_the_network_blocked(browser_page: Page, live_server: Any) -> None:
    page = browser_page
    refused: list[str] = []

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    page.route("**/*", only_loopback)
    page.goto(f"{live_server.url}/api/v1/docs")

    operation = page.locator(".opblock-post", has_text="/api/v1/inquiries")
    expect(operation.locator(".opblock-summary-method")).to_have_text("POST")
    expect(page.locator(".opblock-get", has_text="/api/v1/inquiries/")).to_be_visible()
    expect(page.locator(".opblock-put", has_text="/api/v1/sources/")).to_be_visible()
    expect(page.locator(".info .title")).to_contain_text("Auto-Respond Lead Sync ingestion API")
    assert refused == []  # it did not even try to reach a CDN
    screenshots = Path(settings.VAR_DIR) / "screenshots"
    screenshots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshots / "api-docs-offline.png"), full_page=True)
