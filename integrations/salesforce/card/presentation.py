"""What the Salesforce card shows besides the form and its header (`card_status`): the
connection's state, the product page's troubleshooting list, and the recent inquiries with their
sync outcome, each error in plain words (`plain_errors`) and each record linked to Salesforce.

Plain reads over `effective_salesforce_settings`; the view renders them.
"""

from __future__ import annotations

from dataclasses import dataclass

from autorespond.models import Inquiry, Source
from autorespond.selectors import inquiries_recent
from integrations.salesforce.api.headers import HeaderOptionError, SoapHeaders, parse_header_options
from integrations.salesforce.card.plain_errors import PlainError, explain_error
from integrations.salesforce.card.preview import record_url
from integrations.salesforce.card.status import FAILED_STATUSES, WAITING_STATUSES
from integrations.salesforce.models import (
    ConnectionStatus,
    InquirySync,
    SalesforceConnection,
    SyncStatus,
)

ROWS_SHOWN = 20

NOT_CONNECTED, CONNECTED, NEEDS_RECONNECT = "not_connected", "connected", "needs_reconnect"


@dataclass(frozen=True)
class Hint:
    title: str
    text: str


# The product page's troubleshooting list, in its order and words.
ALL_HINTS = [
    Hint(
        "“Validation failed” / token expired",
        "The OAuth token is no longer valid. Click Connect again and re-authorize.",
    ),
    Hint(
        "No records appearing",
        "Confirm Enable is on. Check your Create customer only when contact info is captured "
        "setting. Also confirm the Salesforce user you connected with has permission to create "
        "the chosen record type (Leads or Contacts).",
    ),
    Hint(
        "Records created as the wrong type",
        "Check the record-type setting on the card. Changing it only affects new records.",
    ),
    Hint(
        "Description empty",
        "Turn on Include job description if you want the inquiry to populate the Description "
        "field.",
    ),
    Hint("Duplicates", "Enable Create only for new leads to skip matches."),
]


def connection_state(connection: SalesforceConnection | None) -> str:
    if connection is None:
        return NOT_CONNECTED
    if connection.status == ConnectionStatus.NEEDS_RECONNECT:
        return NEEDS_RECONNECT
    return CONNECTED


def automation_of(header_options: str) -> SoapHeaders:
    """The parsed headers of a stored option string (empty if it is somehow invalid)."""
    try:
        return parse_header_options(header_options)
    except HeaderOptionError:
        return SoapHeaders()


# Which rows the list shows: ?show=failed / ?show=waiting (the header's counts link there).
SHOW_ALL, SHOW_FAILED, SHOW_WAITING = "", "failed", "waiting"
_SHOW_STATUSES = {SHOW_FAILED: FAILED_STATUSES, SHOW_WAITING: WAITING_STATUSES}


# Statuses whose stored error explains them now (a Retry makes the row "Waiting to be sent",
# and the error of the earlier attempt no longer applies).
_ERROR_STATUSES = (*FAILED_STATUSES, SyncStatus.RETRYING, SyncStatus.WAITING_RECONNECT)

_STATUS_NOTES = {
    SyncStatus.WAITING_CONTACT_INFO: "Sent once a phone number or email is collected (Create "
    "customer only when contact info is captured is on).",
    SyncStatus.DISABLED: "Enable was off when it arrived, so it was not sent.",
    SyncStatus.WAITING_RECONNECT: "Sent automatically once Salesforce is connected again.",
    SyncStatus.WAITING_BUDGET: "Sent automatically when your org's API calls allow it again.",
}


@dataclass(frozen=True)
class InquiryRow:
    """One recent inquiry and where its sync stands, with its error in plain words."""

    inquiry: Inquiry
    sync: InquirySync | None
    record_url: str
    plain_error: PlainError | None = None

    @property
    def status_label(self) -> str:
        if self.sync is None:
            return "Not queued yet"
        return self.sync.get_status_display()

    @property
    def status_class(self) -> str:
        if self.sync is None:
            return "neutral"
        return {
            SyncStatus.CREATED: "good",
            SyncStatus.UPDATED: "good",
            SyncStatus.SKIPPED_EXISTING: "neutral",
            SyncStatus.FAILED: "bad",
            SyncStatus.BLOCKED_DUPLICATE: "bad",
            SyncStatus.WAITING_RECONNECT: "warn",
            SyncStatus.WAITING_BUDGET: "warn",
            SyncStatus.RETRYING: "warn",
        }.get(SyncStatus(self.sync.status), "neutral")

    @property
    def status_note(self) -> str:
        """Why an inquiry that waits or was not sent is held back, in words."""
        if self.sync is None:
            return ""
        return _STATUS_NOTES.get(SyncStatus(self.sync.status), "")

    @property
    def can_retry(self) -> bool:
        return self.sync is not None and self.sync.status in FAILED_STATUSES

    @property
    def error_fields(self) -> str:
        fields = self.sync.error_fields if self.sync else []
        return ", ".join(str(f) for f in fields) if isinstance(fields, list) else str(fields)


def inquiry_rows(
    *,
    source: Source,
    connection: SalesforceConnection | None,
    rule_id_chosen: bool = False,
    show: str = SHOW_ALL,
) -> list[InquiryRow]:
    """The source's most recent inquiries with their sync row (one query for the syncs), or,
    with `show`, its most recent failed or waiting ones.

    A linked record gets a link to its Lightning record page when it lives in the org of the
    connection that applies now. `rule_id_chosen`: the card asks for a specific assignment rule
    (it explains INVALID_CROSS_REFERENCE_KEY).
    """
    if show in _SHOW_STATUSES:
        inquiries = list(
            Inquiry.objects.filter(
                source=source, salesforce_sync__status__in=_SHOW_STATUSES[show]
            ).order_by("-updated_at", "-id")[:ROWS_SHOWN]
        )
    else:
        inquiries = list(inquiries_recent(source=source))
    syncs = {s.inquiry_id: s for s in InquirySync.objects.filter(inquiry__in=inquiries)}
    rows = []
    for inquiry in inquiries:
        sync = syncs.get(inquiry.pk)
        url = ""
        if (
            sync is not None
            and sync.record_id
            and sync.sobject
            and connection is not None
            and connection.org_id == sync.org_id
            and connection.instance_url
        ):
            url = record_url(connection.instance_url, sync.sobject, sync.record_id)
        plain = None
        if sync is not None and sync.error_code and sync.status in _ERROR_STATUSES:
            plain = explain_error(
                sync.error_code, sync.error_message, rule_id_chosen=rule_id_chosen
            )
        rows.append(InquiryRow(inquiry=inquiry, sync=sync, record_url=url, plain_error=plain))
    return rows
