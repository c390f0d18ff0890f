"""The two points where an integration hooks into the core, so the core imports no integration.

An integration registers its callables in its `AppConfig.ready()`:

* `inquiry_changed_handlers`: called with the inquiry inside the transaction that created or
  changed it (the Salesforce integration marks its sync due and enqueues it after commit);
* `inquiry_sync_status_providers`: called with an inquiry, each returns that integration's sync
  status as a JSON-able dict, or None when it has nothing to say. The API shows the first one.

With one integration these are plain lists of callables, not a plug-in framework; a second
integration will show what more is shared. See docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autorespond.models import Inquiry

InquiryChanged = Callable[["Inquiry"], None]
InquirySyncStatus = Callable[["Inquiry"], "dict[str, Any] | None"]

inquiry_changed_handlers: list[InquiryChanged] = []
inquiry_sync_status_providers: list[InquirySyncStatus] = []


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
