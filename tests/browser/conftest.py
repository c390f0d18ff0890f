"""Browser fixtures: Playwright (sync API) driving Debian's Chromium against a live server.

No browser download works on these machines, so Playwright launches /usr/bin/chromium
(`scripts/browser.py` installs it). Without it the browser tests skip with a reason locally and
fail under CI, like the PostgreSQL and Redis guards of tests/conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.db import connections

from tests.conftest import IN_CI

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium_missing() -> None:
    message = f"Chromium is not installed at {CHROMIUM} (run scripts/browser.py)"
    if IN_CI:
        pytest.fail(f"{message}: CI must run the browser tests.")
    pytest.skip(message)


@pytest.fixture
def browser_page(live_server, settings, monkeypatch) -> Iterator:  # type: ignore[no-untyped-def]
    """A fresh Chromium page; the live server speaks plain HTTP, so cookies may not be Secure."""
    if not os.path.exists(CHROMIUM):
        _chromium_missing()
    from playwright.sync_api import sync_playwright

    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still
    # synchronous, so Django's guard against ORM calls from async code does not apply.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        try:
            yield page
        finally:
            context.close()
            browser.close()
            # While Playwright's loop runs, Django keeps the test's ORM connection in a context
            # variable rather than the thread; close it here, or it outlives the test database.
            connections.close_all()
