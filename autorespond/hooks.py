"""The points where an integration hooks into the core, so the core imports no integration.

An integration registers its callables in its `AppConfig.ready()`:

* `inquiry_changed_writes`: an integration's database write for each created or changed inquiry
  (`InquiryChangedWrite`; the Salesforce integration marks the inquiry's sync due), made by the
  statement that writes the inquiry on PostgreSQL, else by its plain handler in the inquiry's
  transaction;
* `inquiry_changed_handlers`: called with the inquiry inside the transaction that created or
  changed it, for integrations with no write of their own;
* `inquiry_sync_status_providers`: called with an inquiry, each returns that integration's sync
  status as a JSON-able dict, or None when it has nothing to say. The API shows the first one.
* `source_status_providers`: called with a source, each returns that integration's status for
  the home page (`{"name", "label", "tone", "url"}`: the integration, its status in words, a CSS
  tone and the link to its card), or None.

With one integration these are plain lists of callables, not a plug-in framework; a second
integration will show what more is shared. See docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autorespond.models import Inquiry, Source

InquiryChanged = Callable[["Inquiry"], None]
InquirySyncStatus = Callable[["Inquiry"], "dict[str, Any] | None"]
SourceStatus = Callable[["Source"], "dict[str, str] | None"]


@dataclass(frozen=True)
class InquiryChangedWrite:
    """An integration's write for each created or changed inquiry, joined on PostgreSQL to the
    statement that writes the inquiry (data-modifying CTEs): one round trip with no explicit
    transaction, instead of BEGIN, two statements and COMMIT (benchmarks/ingest_api.py).

    * `ctes()`: PostgreSQL CTEs (`name AS (…), …`; called once per statement shape, so names
      and SQL are fixed) that may read two CTEs of the core: `written_inquiry`, the inquiry's
      row as the statement left it, and `changed_inquiry`, the same row only when this statement
      created or changed the inquiry (no row otherwise). Both have the inquiry table's columns.
      The CTE named `result` returns at most one row of `columns` columns: what the integration
      wrote about the inquiry (its sync request, say). The whole statement must stay within
      4096 characters, up to which psycopg caches the parsing of its placeholders (past it,
      parsing took a sixth of a POST's CPU).
    * `params()`: the CTEs' parameters, in order, for one statement.
    * `apply(inquiry, row, changed)`: after the statement, with `result`'s row (None when it
      returned none) and whether the inquiry changed: caches, and work after commit.
    * `handler`: the same write as an `InquiryChanged` handler, for databases without
      data-modifying CTEs (SQLite); called inside the inquiry's transaction, only on a change.
    """

    ctes: Callable[[], str]
    params: Callable[[], list[Any]]
    result: str
    columns: int
    apply: Callable[[Inquiry, Sequence[Any] | None, bool], None]
    handler: InquiryChanged


inquiry_changed_writes: list[InquiryChangedWrite] = []
inquiry_changed_handlers: list[InquiryChanged] = []
inquiry_sync_status_providers: list[InquirySyncStatus] = []
source_status_providers: list[SourceStatus] = []


def inquiry_changed(inquiry: Inquiry) -> None:
    """Tell every integration that `inquiry` was created or changed (inside its transaction):
    the handlers, and the writes' handlers (the path without data-modifying CTEs)."""
    for write in inquiry_changed_writes:
        write.handler(inquiry)
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
