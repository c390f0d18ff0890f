"""What the Salesforce card shows besides the form: the connection's state, the troubleshooting
hints of the product page that apply right now, and the recent inquiries with their sync outcome.

Plain reads over `effective_salesforce_settings`; the view renders them.
"""

from __future__ import annotations

from dataclasses import dataclass

from autorespond.models import Inquiry, Source
from autorespond.selectors import inquiries_recent
from integrations.salesforce.api.headers import HeaderOptionError, SoapHeaders, parse_header_options
from integrations.salesforce.models import (
    PERSON_RETRY_STATUSES,
    ConnectionStatus,
    InquirySync,
    SalesforceConnection,
    SyncStatus,
)
from integrations.salesforce.selectors import EffectiveSettings

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

# Salesforce error codes that mean the connected user lacks permission on the record type.
_PERMISSION_CODES = {
    "INSUFFICIENT_ACCESS",
    "INSUFFICIENT_ACCESS_OR_READONLY",
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
    "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
    "NOT_FOUND",
}


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


def hints_that_apply(*, effective: EffectiveSettings, syncs: list[InquirySync]) -> list[Hint]:
    """The troubleshooting hints that explain the card's current state, most urgent first."""
    hints: list[Hint] = []
    settings = effective.settings
    connection = effective.connection
    state = connection_state(connection)
    # An inheriting source's connection is managed on the card it inherits from.
    where = f" (on the card of {effective.owner.name})" if effective.inherited else ""
    if state == NOT_CONNECTED:
        hints.append(
            Hint(
                "Not connected",
                "Nothing can be sent until a Salesforce user is connected. Click Connect"
                f"{where} and authorize on Salesforce.",
            )
        )
    elif state == NEEDS_RECONNECT or (connection and connection.last_validation_ok is False):
        hints.append(
            Hint(
                ALL_HINTS[0].title,
                f"The OAuth token is no longer valid. Click Connect again{where} and re-authorize.",
            )
        )
    if not settings.enabled:
        hints.append(Hint("No records appearing", "Confirm Enable is on."))
    if settings.only_with_contact_info and any(
        s.status == SyncStatus.WAITING_CONTACT_INFO for s in syncs
    ):
        hints.append(
            Hint(
                "No records appearing",
                "Check your Create customer only when contact info is captured setting: "
                "inquiries without a phone number or email wait until one is collected.",
            )
        )
    if any(s.status == SyncStatus.FAILED and s.error_code in _PERMISSION_CODES for s in syncs):
        hints.append(
            Hint(
                "No records appearing",
                "Confirm the Salesforce user you connected with has permission to create the "
                f"chosen record type ({settings.get_record_type_display()}).",
            )
        )
    return hints


@dataclass(frozen=True)
class InquiryRow:
    """One recent inquiry and where its sync stands."""

    inquiry: Inquiry
    sync: InquirySync | None
    record_url: str

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
            SyncStatus.RETRYING: "warn",
        }.get(SyncStatus(self.sync.status), "neutral")

    @property
    def can_retry(self) -> bool:
        return self.sync is not None and self.sync.status in PERSON_RETRY_STATUSES

    @property
    def error_fields(self) -> str:
        fields = self.sync.error_fields if self.sync else []
        return ", ".join(str(f) for f in fields) if isinstance(fields, list) else str(fields)


def inquiry_rows(*, source: Source, connection: SalesforceConnection | None) -> list[InquiryRow]:
    """The source's most recent inquiries with their sync row (one query for the syncs).

    A linked record gets a link into Salesforce when it lives in the org of the connection that
    applies now.
    """
    inquiries = list(inquiries_recent(source=source))
    syncs = {s.inquiry_id: s for s in InquirySync.objects.filter(inquiry__in=inquiries)}
    rows = []
    for inquiry in inquiries:
        sync = syncs.get(inquiry.pk)
        url = ""
        if (
            sync is not None
            and sync.record_id
            and connection is not None
            and connection.org_id == sync.org_id
            and connection.instance_url
        ):
            url = f"{connection.instance_url.rstrip('/')}/{sync.record_id}"
        rows.append(InquiryRow(inquiry=inquiry, sync=sync, record_url=url))
    return rows
