"""An org's health as the sync engine sees it: the per-org circuit breaker and the API budget.

Both live on the `SalesforceConnection` rows of the org (every connection with that `org_id`),
so every worker sees them and they survive a Redis restart: the row is the truth.

* **Breaker.** An outage answer (5xx, timeout, dropped connection, REQUEST_LIMIT_EXCEEDED) sets
  `unavailable_since`. From then on the org's drains send nothing: their syncs wait as
  `retrying` with `SALESFORCE_UNAVAILABLE`, until `breaker_probe_at`. One drain at a time wins
  the probe (a conditional UPDATE of that time) and runs its batch; success clears the breaker
  and releases every waiting sync of the org at once, failure pushes the next probe further
  (first after `SALESFORCE_BREAKER_FIRST_PROBE_SECONDS`, doubling up to `…_MAX_PROBE_SECONDS`).
* **Budget.** Usage comes from `Sforce-Limit-Info` (kept by the client, written to the row at most
  every `SALESFORCE_USAGE_WRITE_SECONDS`). At `SALESFORCE_BUDGET_WARN_SHARE` of the daily limit
  the owner gets one email (`budget_warned_at`); at `SALESFORCE_BUDGET_PAUSE_SHARE` the org's
  syncs wait as `waiting_budget` (`budget_paused_since`), and a probe every
  `SALESFORCE_BUDGET_RECHECK_SECONDS` reads `/limits` and resumes them when usage allows.

See docs/architecture.md ("Failures").
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from integrations.salesforce.api.client import SalesforceClient
from integrations.salesforce.api.errors import (
    SalesforceError,
    SalesforceRateLimited,
    SalesforceTransientError,
)
from integrations.salesforce.connections import card_link, connection_owner_emails
from integrations.salesforce.models import InquirySync, SalesforceConnection, SyncStatus
from integrations.salesforce.sync.drain_groups import inheriting_source_ids
from integrations.salesforce.sync.scheduling import schedule_next

logger = logging.getLogger(__name__)

UNAVAILABLE_CODE = "SALESFORCE_UNAVAILABLE"
BUDGET_CODE = "API_BUDGET"
BREAKER = "breaker"
BUDGET = "budget"
# Transport failures and Salesforce's "come back later" answers: the org, not one record.
_OUTAGE_CODES = frozenset({"TIMEOUT", "CONNECTION_ERROR", "SERVER_UNAVAILABLE"})
_BUDGET_SUBJECT = "email/salesforce_api_budget_subject.txt"
_BUDGET_TEXT = "email/salesforce_api_budget.txt"
_BUDGET_HTML = "email/salesforce_api_budget.html"


def is_outage(error: BaseException | None) -> bool:
    """Whether `error` says the org is unavailable (not that one record was refused)."""
    if isinstance(error, SalesforceRateLimited):
        return True
    if isinstance(error, SalesforceTransientError):
        return error.error_code in _OUTAGE_CODES or (error.status or 0) >= 500
    return False


@dataclass(frozen=True)
class Pause:
    """Why an org's syncs wait now, since when, and until when (the next probe)."""

    kind: str  # BREAKER | BUDGET
    since: dt.datetime
    until: dt.datetime

    @property
    def error(self) -> SalesforceError:
        when = timezone.localtime(self.since).strftime("%Y-%m-%d %H:%M %Z")
        if self.kind == BREAKER:
            return SalesforceTransientError(
                UNAVAILABLE_CODE,
                f"Salesforce unavailable since {when}; sent as soon as it answers again.",
            )
        return SalesforceRateLimited(
            BUDGET_CODE,
            f"Waiting for API budget since {when}: the org has used "
            f"{round(pause_share() * 100)}% or more of its daily API requests. Sent by itself "
            "when usage allows.",
        )

    @property
    def status(self) -> str:
        return SyncStatus.RETRYING if self.kind == BREAKER else SyncStatus.WAITING_BUDGET


def pause_share() -> float:
    return float(getattr(settings, "SALESFORCE_BUDGET_PAUSE_SHARE", 0.95))


def _warn_share() -> float:
    return float(getattr(settings, "SALESFORCE_BUDGET_WARN_SHARE", 0.80))


def _probe_interval(failed_probes: int) -> float:
    first = float(getattr(settings, "SALESFORCE_BREAKER_FIRST_PROBE_SECONDS", 5))
    cap = float(getattr(settings, "SALESFORCE_BREAKER_MAX_PROBE_SECONDS", 20))
    return min(cap, first * 2 ** max(0, failed_probes))


def _budget_recheck() -> float:
    return float(getattr(settings, "SALESFORCE_BUDGET_RECHECK_SECONDS", 300))


def _org(connection: SalesforceConnection):  # type: ignore[no-untyped-def]
    return SalesforceConnection.objects.filter(org_id=connection.org_id)


def org_gate(connection: SalesforceConnection) -> tuple[Pause | None, str]:
    """Before a drain calls the org: (the pause its syncs wait in, "") or (None, probe kind):
    "" when the org is healthy, BREAKER or BUDGET when this drain won the probe and its batch
    tests the org. Reads the org's row fresh."""
    row = _org(connection).order_by("pk").first()
    if row is None or (row.unavailable_since is None and row.budget_paused_since is None):
        return None, ""
    now = timezone.now()
    kind = BREAKER if row.unavailable_since is not None else BUDGET
    since = row.unavailable_since or row.budget_paused_since
    assert since is not None
    # Until the probe's own answer moves it: long enough that nobody else probes meanwhile.
    hold = now + dt.timedelta(seconds=settings.SALESFORCE_HTTP_TIMEOUT * 2 + 5)
    won = (
        _org(connection)
        .filter(Q(breaker_probe_at__isnull=True) | Q(breaker_probe_at__lte=now))
        .update(breaker_probe_at=hold)
    )
    if won:
        logger.info("salesforce org=%s probing (%s)", connection.org_id, kind)
        return None, kind
    until = row.breaker_probe_at or now
    return Pause(kind, since, max(until, now)), ""


def breaker_failed(
    connection: SalesforceConnection, error: SalesforceError, *, probe: bool
) -> None:
    """An outage answer: open the org's breaker, or (a failed probe) push the next probe on."""
    now = timezone.now()
    opened = (
        _org(connection)
        .filter(unavailable_since__isnull=True)
        .update(
            unavailable_since=now,
            breaker_failed_probes=0,
            breaker_probe_at=now + dt.timedelta(seconds=_probe_interval(0)),
        )
    )
    if opened:
        logger.warning(
            "salesforce org=%s unavailable (%s): pausing its syncs", connection.org_id,
            error.error_code,
        )  # fmt: skip
    elif probe:
        row = _org(connection).order_by("pk").first()
        failed = (row.breaker_failed_probes if row else 0) + 1
        _org(connection).update(
            breaker_failed_probes=F("breaker_failed_probes") + 1,
            breaker_probe_at=now + dt.timedelta(seconds=_probe_interval(failed)),
        )


def breaker_succeeded(connection: SalesforceConnection) -> int:
    """The probe got through: close the breaker and release every waiting sync of the org at
    once. Returns how many syncs were released."""
    closed = (
        _org(connection)
        .filter(unavailable_since__isnull=False)
        .update(unavailable_since=None, breaker_probe_at=None, breaker_failed_probes=0)
    )
    if not closed:
        return 0
    # Every retrying sync of the org: those that waited for the probe and those whose own call
    # met the outage (each on its own backoff until now).
    released = _release(connection, status=SyncStatus.RETRYING, code=None)
    logger.warning(
        "salesforce org=%s answers again: released %s sync(s)", connection.org_id, released
    )
    return released


def _org_source_ids(connection: SalesforceConnection) -> list[int]:
    owners = list(_org(connection).values_list("source_id", flat=True))
    return sorted(set(inheriting_source_ids(owners)))


def _release(connection: SalesforceConnection, *, status: str, code: str | None) -> int:
    """Make the org's syncs that wait in `status` (with error `code`, if given) due now and
    send their drains."""
    now = timezone.now()
    waiting = InquirySync.objects.filter(
        status=status,
        due_at__gt=now,
        inquiry__source_id__in=_org_source_ids(connection),
    )
    if code is not None:
        waiting = waiting.filter(error_code=code)
    rows = list(waiting.values_list("pk", "inquiry_id", "inquiry__source_id"))
    InquirySync.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(due_at=now)
    schedule_next((inquiry_id, source_id, 0.0) for _pk, inquiry_id, source_id in rows)
    return len(rows)


# --------------------------------------------------------------------------- API budget


def budget_check(client: SalesforceClient) -> bool:
    """The budget probe: read the org's usage from `/limits` (one call). Returns whether the
    org may be called again. A refused `/limits` (the user lacks "View Setup and
    Configuration") counts as allowed: the batch's own answers then report the usage."""
    try:
        limits = client.limits()
    except SalesforceError as exc:
        if is_outage(exc):
            raise
        return True
    daily = limits.get("DailyApiRequests") or {}
    limit, remaining = int(daily.get("Max") or 0), int(daily.get("Remaining") or 0)
    if limit <= 0:
        return True
    return (limit - remaining) / limit < pause_share()


def budget_note(
    connection: SalesforceConnection, usage: tuple[int, int] | None, *, probed: bool = False
) -> None:
    """After a batch: warn once at 80 %, pause at the pause share, resume below it."""
    now = timezone.now()
    if usage is None or usage[1] <= 0:
        if probed:  # the probe could not tell: resume and let the answers tell
            _budget_resume(connection)
        return
    used, limit = usage
    share = used / limit
    if share >= _warn_share():
        warned = _org(connection).filter(budget_warned_at__isnull=True).update(budget_warned_at=now)
        if warned:
            connection_id = connection.pk
            transaction.on_commit(
                lambda: budget_warning_email_send(connection_id=connection_id, usage=usage)
            )
    elif share < _warn_share() - 0.1:
        _org(connection).filter(budget_warned_at__isnull=False).update(budget_warned_at=None)
    if share >= pause_share():
        paused = (
            _org(connection)
            .filter(budget_paused_since__isnull=True)
            .update(
                budget_paused_since=now,
                breaker_probe_at=now + dt.timedelta(seconds=_budget_recheck()),
            )
        )
        if paused:
            logger.warning(
                "salesforce org=%s used %s of %s API requests: pausing its syncs",
                connection.org_id, used, limit,
            )  # fmt: skip
    else:
        _budget_resume(connection)


def budget_still_exhausted(connection: SalesforceConnection) -> None:
    """The budget probe says usage is still too high: check again later."""
    _org(connection).update(
        breaker_probe_at=timezone.now() + dt.timedelta(seconds=_budget_recheck())
    )


def _budget_resume(connection: SalesforceConnection) -> None:
    resumed = (
        _org(connection)
        .filter(budget_paused_since__isnull=False)
        .update(budget_paused_since=None, breaker_probe_at=None)
    )
    if resumed:
        released = _release(connection, status=SyncStatus.WAITING_BUDGET, code=BUDGET_CODE)
        logger.warning(
            "salesforce org=%s has API budget again: released %s sync(s)",
            connection.org_id, released,
        )  # fmt: skip


def budget_warning_email_send(*, connection_id: int, usage: tuple[int, int]) -> int:
    """Email the business's owners that the org passed the warn share of its daily API
    requests. Returns how many were emailed; a mail failure is logged, not raised."""
    connection = (
        SalesforceConnection.objects.select_related("source").filter(pk=connection_id).first()
    )
    if connection is None:
        return 0
    recipients = connection_owner_emails(connection=connection)
    if not recipients:
        return 0
    used, limit = usage
    context = {
        "source": connection.source,
        "used": used,
        "limit": limit,
        "percent": round(used * 100 / limit),
        "pause_percent": round(pause_share() * 100),
        "card_url": card_link(connection=connection),
    }
    message = EmailMultiAlternatives(
        subject=" ".join(render_to_string(_BUDGET_SUBJECT, context).split()),
        body=render_to_string(_BUDGET_TEXT, context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
    )
    message.attach_alternative(render_to_string(_BUDGET_HTML, context), "text/html")
    try:
        message.send()
    except Exception:  # any mail failure: the card and console still show the usage
        logger.exception("salesforce: could not email the API budget warning")
        return 0
    return len(recipients)
