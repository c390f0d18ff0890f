"""The points where an integration hooks into the core, so the core imports no integration.

An integration registers its callables in its `AppConfig.ready()`:

* `inquiry_changed_handlers`: called with the inquiry inside the transaction that created or
  changed it (the Salesforce integration marks its sync due and enqueues it after commit);
* `inquiry_sync_status_providers`: called with an inquiry, each returns that integration's sync
  status as a JSON-able dict, or None when it has nothing to say. The API shows the first one.
* `source_status_providers`: called with a source, each returns that integration's status for
  the home page (`{"name", "label", "tone", "url"}`: the integration, its status in words, a CSS
  tone and the link to its card), or None.

With one integration these are plain lists of callables, not a plug-in framework; a second
integration will show what more is shared. See docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autorespond.models import Inquiry, Source

InquiryChanged = Callable[["Inquiry"], None]
InquirySyncStatus = Callable[["Inquiry"], "dict[str, Any] | None"]
SourceStatus = Callable[["Source"], "dict[str, str] | None"]

inquiry_changed_handlers: list[InquiryChanged] = []
inquiry_sync_status_providers: list[InquirySyncStatus] = []
source_status_providers: list[SourceStatus] = []


def inquiry_changed(inquiry: Inquiry) -> None:
    """Tell every integration that `inquiry` was created or changed (inside its transaction)."""
    for handler in inquiry_changed_handlers:
        handler(inquiry)


def inquiry_sync_status(inquiry: Inquiry) -> dict[str, Any] | None:
    """The first integration's sync status of `inquiry` (a dict), or None."""
    for provider in inquiry_sync_status_providers:
        status = provider(inquiry)
        if status is not None:
            return status
    return None


def source_statuses(source: Source) -> list[dict[str, str]]:
    """Every integration's status of `source` for the home page (see the module docstring)."""
    statuses = []
    for provider in source_status_providers:
        status = provider(source)
        if status is not None:
            statuses.append(status)
    return statuses
