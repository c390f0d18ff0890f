"""Reading rendered pages in tests: the parsed document, an element's visible text, the flash
messages. One place, so every page test reads HTML the same way."""

from __future__ import annotations

import re

import lxml.html
from django.http import HttpResponse


def page(response: HttpResponse) -> lxml.html.HtmlElement:
    return lxml.html.fromstring(response.content.decode())


def text_of(element: lxml.html.HtmlElement) -> str:
    """The element's visible text with whitespace collapsed."""
    return re.sub(r"\s+", " ", element.text_content()).strip()


def block(response: HttpResponse, element_id: str) -> str:
    """The text of the element with this id (fails the test when it is missing)."""
    found = page(response).get_element_by_id(element_id, None)
    assert found is not None, f"no element #{element_id} on the page"
    return text_of(found)


def has_block(response: HttpResponse, element_id: str) -> bool:
    return page(response).get_element_by_id(element_id, None) is not None


def messages_of(response: HttpResponse) -> list[str]:
    """The flash messages the response rendered (Django's messages framework)."""
    return [str(message) for message in response.context["messages"]] if response.context else []
