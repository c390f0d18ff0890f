"""The one status of a source's Salesforce card, its counts and its one primary action.

`card_status` is a plain function of what is stored (the effective settings and connection, the
connection's `unavailable_since` / `budget_paused_since` marks, and the sync rows of the source's
inquiries), so the card's header, the home page's pill and the tests all read the same answer.
The template only renders it.

The statuses, most urgent first (the first that applies wins):

1. **Not connected**: no connection applies (own or inherited).
2. **Waiting for reconnect**: Salesforce refused the connection (expired or revoked sign-in).
3. **Salesforce unavailable since …**: the org answers with outages (the circuit breaker is open).
4. **Waiting for API budget**: the org's syncs are paused because its daily API usage passed the
   configured share.
5. **Connected but off**: Enable is off, so nothing is sent.
6. **Some inquiries failed**: at least one inquiry failed for good and waits for a person.
7. **Inherited from <parent>**: a location that inherits, with nothing of the above.
8. **Sending**.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q
from django.urls import reverse
from django.utils import formats, timezone

from autorespond.models import Source
from integrations.salesforce.models import ConnectionStatus, InquirySync, SyncStatus
from integrations.salesforce.selectors import EffectiveSettings, effective_salesforce_settings

NOT_CONNECTED = "not_connected"
RECONNECT = "waiting_reconnect"
UNAVAILABLE = "unavailable"
BUDGET = "waiting_budget"
OFF = "off"
FAILED = "failed"
INHERITED = "inherited"
SENDING = "sending"

# Sync statuses that need a person (failed for good) and those that will be sent by themselves.
FAILED_STATUSES = (SyncStatus.FAILED, SyncStatus.BLOCKED_DUPLICATE)
WAITING_STATUSES = (
    SyncStatus.PENDING,
    SyncStatus.RETRYING,
    SyncStatus.WAITING_RECONNECT,
    SyncStatus.WAITING_BUDGET,
    SyncStatus.WAITING_CONTACT_INFO,
)


@dataclass(frozen=True)
class Action:
    """The one primary action of a status: a link (`url`), or a POST form when `post` is set."""

    label: str
    url: str
    post: bool = False


@dataclass(frozen=True)
class CardStatus:
    """What the card's header says. `tone` is one of good, warn, bad, off, info (a CSS class)."""

    key: str
    label: str
    tone: str
    detail: str
    failed_count: int
    waiting_count: int
    action: Action | None
    # The source whose settings and connection apply, when it is not the source itself.
    inherited_from: Source | None = None

    @property
    def is_problem(self) -> bool:
        return self.tone in ("bad", "warn")


@dataclass(frozen=True)
class SyncCounts:
    failed: int
    waiting: int


def sync_counts(*, source: Source) -> SyncCounts:
    """How many of the source's own inquiries failed (need a person) and wait to be sent."""
    counts = InquirySync.objects.filter(inquiry__source=source).aggregate(
        failed=Count("pk", filter=Q(status__in=FAILED_STATUSES)),
        waiting=Count("pk", filter=Q(status__in=WAITING_STATUSES)),
    )
    return SyncCounts(failed=counts["failed"], waiting=counts["waiting"])


def _when(moment: dt.datetime) -> str:
    return formats.date_format(timezone.localtime(moment), "M j, H:i")


def card_status(
    *, effective: EffectiveSettings, counts: SyncCounts | None = None, can_open_owner: bool = True
) -> CardStatus:
    """The card's status for `effective.source` (see the module docstring for the order).

    `can_open_owner`: whether the viewer may open the card the settings are inherited from (the
    action then links there; otherwise it names it).
    """
    source = effective.source
    counts = counts or sync_counts(source=source)
    card_url = reverse("salesforce:card", args=[source.slug])
    owner = effective.owner if effective.inherited else None
    # Connect, Enable and the rest live on the card the settings come from.
    settings_url = reverse("salesforce:card", args=[effective.owner.slug])
    elsewhere = f" on the card of {effective.owner.name}" if owner else ""

    def status(key: str, label: str, tone: str, detail: str, action: Action | None) -> CardStatus:
        if owner is not None and action is not None and not can_open_owner:
            action = None
        return CardStatus(
            key=key,
            label=label,
            tone=tone,
            detail=detail,
            failed_count=counts.failed,
            waiting_count=counts.waiting,
            action=action,
            inherited_from=owner,
        )

    connection = effective.connection
    if connection is None:
        return status(
            NOT_CONNECTED,
            "Not connected",
            "off",
            f"Nothing is sent until a Salesforce user is connected{elsewhere}.",
            Action("Connect Salesforce", f"{settings_url}#connection"),
        )
    if connection.status == ConnectionStatus.NEEDS_RECONNECT:
        return status(
            RECONNECT,
            "Waiting for reconnect",
            "bad",
            "Salesforce no longer accepts the connection (the sign-in expired or was revoked). "
            f"Inquiries wait and are sent once you connect again{elsewhere}.",
            Action("Connect again", f"{settings_url}#connection"),
        )
    if connection.unavailable_since is not None:
        return status(
            UNAVAILABLE,
            f"Salesforce unavailable since {_when(connection.unavailable_since)}",
            "warn",
            "Salesforce is not answering for your org. Inquiries wait and are sent "
            "automatically when it is back; nothing is lost.",
            Action("See waiting inquiries", f"{card_url}?show=waiting#inquiries"),
        )
    if connection.budget_paused_since is not None:
        return status(
            BUDGET,
            "Waiting for API budget",
            "warn",
            "Your org has used the share of today's Salesforce API calls set aside for "
            f"Auto-Respond (since {_when(connection.budget_paused_since)}). Inquiries wait and "
            "are sent automatically when calls are available again.",
            Action("See waiting inquiries", f"{card_url}?show=waiting#inquiries"),
        )
    if not effective.settings.enabled:
        return status(
            OFF,
            "Connected but off",
            "off",
            f"Salesforce is connected, but nothing is sent until Enable is on{elsewhere}.",
            Action("Turn on Enable", f"{settings_url}#field-enabled"),
        )
    if counts.failed:
        return status(
            FAILED,
            "Some inquiries failed",
            "bad",
            "Salesforce refused some inquiries. Each says why; fix the cause and press Retry.",
            Action("Review failed inquiries", f"{card_url}?show=failed#inquiries"),
        )
    if owner is not None:
        return status(
            INHERITED,
            f"Inherited from {owner.name}",
            "info",
            f"Sending with the Salesforce connection and settings of {owner.name}.",
            Action(f"Open {owner.name}'s card", settings_url),
        )
    return status(
        SENDING,
        "Sending",
        "good",
        "New and changed inquiries are sent to Salesforce.",
        Action("Test with a sample inquiry", f"{card_url}#preview"),
    )


def card_status_of(*, source: Source) -> CardStatus:
    """The status of `source`'s card (the home page's pill)."""
    return card_status(effective=effective_salesforce_settings(source=source))


def source_status_for_home(source: Source) -> dict[str, str]:
    """The home page's pill for `source` (registered with `autorespond.hooks`)."""
    status = card_status_of(source=source)
    return {
        "name": "Salesforce",
        "label": status.label,
        "tone": status.tone,
        "url": reverse("salesforce:card", args=[source.slug]),
    }
