"""The support console's search bar in Chromium: the placeholder fits, each label sits above its
field, and the button lines up with the fields (issue 14). Saves var/screenshots/console-*.png."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.screenshots import shot
from tests.factories import SourceFactory, UserFactory
from tests.integrations.salesforce.card_support import connection_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_search_bar_fits_and_lines_up(browser_page: Page, live_server: Any) -> None:
    page = browser_page
    UserFactory(username="support", is_staff=True)
    connection_create(SourceFactory(slug="joes-plumbing", name="Joe's Plumbing"))
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("support")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server.url}/support/salesforce/")
    expect(page.locator("#result-count")).to_have_text("1 connection.")

    search = page.get_by_label("Search")
    # The whole placeholder is visible: the field is wider than its text.
    text_width = search.evaluate(
        """el => { const c = document.createElement('canvas').getContext('2d');
                   c.font = getComputedStyle(el).font;
                   return c.measureText(el.placeholder).width; }"""
    )
    field = search.bounding_box()
    assert field is not None and field["width"] > text_width + 16
    # Labels above their fields, left edges aligned; the button's bottom on the fields' bottom.
    for label_text, control in (("Search", search), ("Status", page.get_by_label("Status"))):
        label = page.locator("form.filters label", has_text=label_text).bounding_box()
        box = control.bounding_box()
        assert label is not None and box is not None
        assert abs(label["x"] - box["x"]) < 1
        assert label["y"] + label["height"] <= box["y"] + 1
    status_box = page.get_by_label("Status").bounding_box()
    button = page.locator("form.filters button").bounding_box()
    assert status_box is not None and button is not None
    assert abs((button["y"] + button["height"]) - (status_box["y"] + status_box["height"])) < 2
    shot(page, "console-search-bar", selector="form.filters")
