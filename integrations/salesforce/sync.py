"""Sending inquiries to Salesforce: every inquiry becomes exactly one Lead or Contact.

The need to sync is a database row (`InquirySync`), never only a broker message:

* `request_sync` bumps the row's `requested_version`, sets `due_at` and enqueues the task after
  the transaction commits (ids only). If the broker is down the row still says "due".
* `sync_inquiry_run` (the task's body) takes a **lease** on the row (`lease_expires_at`), so a
  task delivered twice, or re-enqueued by the sweeper, runs once at a time; it syncs the version
  it read and, if the inquiry changed meanwhile (`requested_version` moved on), asks for another
  pass.
* `syncs_sweep` (every `SYNC_SWEEP_SECONDS`, from Celery beat) re-enqueues rows that are due and
  not leased: a lost message, a Redis outage or a killed worker delays a sync but never loses it.

Gates, in the issue's order, each recorded as the row's status and as a `SyncAttempt`:
effective settings (inheritance) → **Enable** off: `disabled` → no usable connection:
`waiting_reconnect` (re-requested by `sync_resume_waiting` after a reconnect) → **Create customer
only when contact info is captured** on and no phone or email: `waiting_contact_info` (the next
update of the inquiry requests a sync again).

One record per person (see `matching` for the rules): a linked inquiry updates its record; the
others are looked up (one Composite call) and then created, updated or, with **Create only for
new leads**, left alone (`skipped_existing`, the record's id kept). Look-up and create happen
under a lock per org and match key (`locks`), and a create first claims the person's keys in
`SalesforcePerson` (unique per org and key), so two workers never both create one person. A
create whose answer was lost (timeout, dropped connection) leaves a `pending_create` mark; the
next attempt re-matches before it creates again.

Contacts and their company's Account (Leads keep Company as a field and make no Account): a
Contact **created** for an inquiry with a company joins the Account of that Name, looked up in
the same Composite call as the person (oldest CreatedDate, then lowest Id, when several share the
name; `matching.choose_account`), or a new Account (Name = the company, cut to 255) created with
it in ONE Composite call, allOrNone, the Contact's AccountId a `@{refAccount.id}` reference, so a
refused Contact leaves no orphan Account. A new person therefore still costs two calls (look-up,
create). When the source's headers need SOAP, the Account and then the Contact are two SOAP/REST
calls (Composite cannot carry EmailHeader); a Contact refused after that leaves the Account,
which the next attempt finds by name. The Account gets no assignment rule and no EmailHeader (it
is owned by the connected user). Without a company, no Account: the Contact is a private contact
(visible to its owner and admins), as Salesforce makes any Contact without an Account. **Updates
never change a Contact's AccountId**: which account a person belongs to is the sales team's
business once the record exists. Two new people of one new company: the company has a lock key
`account:<name, case-folded>` next to the person keys, and a claim of that key in
`SalesforcePerson` (like a person's), so only one of them creates the Account; an Account whose
create answer was lost is found by the next attempt's look-up before anything is created again.
The look-up matches the Name exactly (case aside); when the org's Account duplicate rule blocks
the new Account because it knows the company under another spelling ("Lee Bakery, Inc."), the
Contact joins the Account the rule names, and the company's claim remembers it.

Matching and writing are separate steps over a list (`plan_writes`, `write_plan`), so a batch of
inquiries costs one look-up and one sObject Collections write; today each task passes one.

Failures are typed (`errors`): transient ones (5xx, timeouts, dropped connections,
UNABLE_TO_LOCK_ROW, a busy person lock) and rate limits are retried with capped exponential
backoff and jitter; validation errors fail with Salesforce's code, message and fields, until a
person presses Retry (`sync_retry`); auth errors wait for a reconnect.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from simple_salesforce.format import format_soql

from autorespond.models import Inquiry, Source
from autorespond.selectors import source_descendant_ids
from integrations.salesforce.errors import (
    SalesforceAuthError,
    SalesforceDuplicatesDetected,
    SalesforceError,
    SalesforceRateLimited,
    SalesforceReconnectRequired,
    SalesforceTransientError,
    SalesforceValidationError,
)
from integrations.salesforce.headers import (
    DuplicateRuleHeader,
    HeaderOptionError,
    SoapHeaders,
    parse_header_options,
)
from integrations.salesforce.locks import LockBusy, lock_ttl_seconds, person_lock
from integrations.salesforce.mapping import (
    ACCOUNT,
    CONTACT,
    LEAD,
    PLACEHOLDER,
    LeftOut,
    SalesforceFields,
    account_fields,
    account_name,
    salesforce_fields,
)
from integrations.salesforce.matching import (
    ACCOUNT_ID_PREFIX,
    Match,
    MatchRequest,
    PersonKeys,
    account_key,
    identify_named_records,
    lookup_people_and_accounts,
    parse_salesforce_datetime,
    person_keys,
    sobject_of_id,
)
from integrations.salesforce.models import (
    InquirySync,
    SalesforceConnection,
    SalesforcePerson,
    SalesforceSettings,
    SyncAttempt,
    SyncStatus,
)
from integrations.salesforce.org_schema import OrgSchema, org_schema_for
from integrations.salesforce.selectors import effective_salesforce_settings

if TYPE_CHECKING:
    from integrations.salesforce.client import SalesforceClient

logger = logging.getLogger(__name__)

# Retry delays: base * 2^(attempt-1), capped, with "equal jitter" (a random half of the delay is
# dropped) so many syncs failing together do not come back together. The cap stays far below
# CELERY_VISIBILITY_TIMEOUT: Redis redelivers an unacknowledged message after that timeout, so a
# countdown longer than it would be delivered twice (the lease would still make it harmless).
RETRY_BASE_SECONDS = 5
RETRY_CAP_SECONDS = 15 * 60
RATE_LIMIT_BASE_SECONDS = 60
# A person lock held by another worker: come back soon, not with the growing backoff.
LOCK_BUSY_RETRY_SECONDS = 3
# Transient failures are retried this many times (about 5 hours with the cap) before the sync is
# marked failed; a person can still press Retry. Rate limits are not counted: the org's daily
# allowance comes back by itself.
MAX_TRANSIENT_ATTEMPTS = 25
# Up to this many due syncs are re-enqueued per sweep.
SWEEP_BATCH = 1000

SUCCESS_STATUSES = (SyncStatus.CREATED, SyncStatus.UPDATED, SyncStatus.SKIPPED_EXISTING)
# How an inquiry relates to its record (InquirySync.detail["link"]): a created or matched record is
# the inquiry's own and is always updated; a skipped one was left alone and is matched again next
# time, so "Create only for new leads" keeps leaving it alone.
LINK_CREATED = "created"
LINK_MATCHED = "matched"
LINK_SKIPPED = "skipped"
# Errors of an update that mean the linked record is gone from Salesforce.
_RECORD_GONE = frozenset({"ENTITY_IS_DELETED", "NOT_FOUND", "INVALID_CROSS_REFERENCE_KEY"})


def lease_seconds() -> int:
    """How long a worker owns a sync: a little longer than a task may run (Celery kills a task
    at its hard time limit), so a lease never ends under a live worker."""
    return lock_ttl_seconds() + 5


def retry_cap_seconds() -> int:
    return min(RETRY_CAP_SECONDS, max(60, settings.CELERY_VISIBILITY_TIMEOUT // 2))


def retry_delay(attempt: int, *, base: float = RETRY_BASE_SECONDS) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, …): capped exponential backoff
    with equal jitter."""
    delay = min(retry_cap_seconds(), base * 2 ** max(0, attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)


# --------------------------------------------------------------------------- requesting


def _enqueue(inquiry_id: int, countdown: float | None = None) -> None:
    """Send the task; a broker failure is logged, not raised: the row is still due and the
    sweeper will send it."""
    from integrations.salesforce.tasks import sync_inquiry

    try:
        sync_inquiry.apply_async(
            (inquiry_id,),
            countdown=countdown,
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0.2, "interval_step": 0.5},
        )
    except Exception:  # broker down: kombu raises a variety of connection errors
        logger.warning("could not enqueue sync of inquiry %s; the sweeper will", inquiry_id)


def request_sync(*, inquiry: Inquiry) -> InquirySync:
    """Mark the inquiry as due for a sync and enqueue it after commit (ids only)."""
    sync, _ = InquirySync.objects.get_or_create(inquiry=inquiry)
    InquirySync.objects.filter(pk=sync.pk).update(
        requested_version=F("requested_version") + 1,
        due_at=timezone.now(),
        status=SyncStatus.PENDING,
    )
    sync.refresh_from_db()
    inquiry_id = inquiry.pk
    transaction.on_commit(lambda: _enqueue(inquiry_id))
    return sync


def inquiry_sync_status(inquiry: Inquiry) -> dict[str, Any] | None:
    """The inquiry's sync status as the ingestion API shows it (`sync` in README), or None
    before its first sync was requested. Registered with `autorespond.hooks`."""
    sync = InquirySync.objects.filter(inquiry=inquiry).first()
    if sync is None:
        return None
    return {
        "status": sync.status,
        "status_label": sync.get_status_display(),
        "salesforce_object": sync.sobject,
        "salesforce_id": sync.record_id,
        "error_code": sync.error_code,
        "error_message": sync.error_message,
        "failed_attempts": sync.attempt_count,
        "last_attempt_at": sync.last_attempt_at,
        "next_attempt_at": sync.due_at if sync.status == SyncStatus.RETRYING else None,
        "synced_at": sync.synced_at,
    }


def on_inquiry_changed(inquiry: Inquiry) -> None:
    """`autorespond.hooks` handler: an inquiry was created or changed, so sync it."""
    request_sync(inquiry=inquiry)


def sync_retry(*, sync: InquirySync) -> InquirySync:
    """A person's Retry (the card's button): forget the failure count and sync again now."""
    InquirySync.objects.filter(pk=sync.pk).update(attempt_count=0)
    return request_sync(inquiry=sync.inquiry)


def sync_resume_waiting(*, connection: SalesforceConnection) -> int:
    """Request again every sync that waits for a reconnect and now uses `connection` (the
    connection's own source and the sources that inherit it). Returns how many."""
    resumed = 0
    uses_connection: dict[int, bool] = {}
    waiting = InquirySync.objects.filter(status=SyncStatus.WAITING_RECONNECT).select_related(
        "inquiry__source"
    )
    for sync in waiting.iterator():
        source = sync.inquiry.source
        if source.pk not in uses_connection:
            effective = effective_salesforce_settings(source=source)
            uses_connection[source.pk] = (
                effective.connection is not None and effective.connection.pk == connection.pk
            )
        if uses_connection[source.pk]:
            request_sync(inquiry=sync.inquiry)
            resumed += 1
    return resumed


def sync_resume_waiting_for_contact_info(*, source: Source) -> int:
    """After a settings change of `source`: request again the syncs of `source`, and of the
    sources below it, that wait for contact info, so that turning "Create customer only when
    contact info is captured" off sends them now. Where the gate still applies, the sync just
    records the wait again (no API call). Returns how many."""
    source_ids = source_descendant_ids(root_ids=[source.pk])
    waiting = InquirySync.objects.filter(
        status=SyncStatus.WAITING_CONTACT_INFO, inquiry__source_id__in=source_ids
    ).select_related("inquiry")
    resumed = 0
    for sync in waiting.iterator():
        request_sync(inquiry=sync.inquiry)
        resumed += 1
    return resumed


def syncs_sweep(*, limit: int = SWEEP_BATCH) -> int:
    """Re-enqueue syncs that are due and not leased by a running worker. Returns how many."""
    now = timezone.now()
    due = (
        InquirySync.objects.filter(due_at__isnull=False, due_at__lte=now)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .order_by("due_at")
        .values_list("inquiry_id", flat=True)[:limit]
    )
    count = 0
    for inquiry_id in due:
        _enqueue(inquiry_id)
        count += 1
    if count:
        logger.info("sweeper re-enqueued %s due sync(s)", count)
    return count


# --------------------------------------------------------------------------- plan and write


@dataclass
class SyncItem:
    """One inquiry that passed the gates, with what applies to it."""

    sync: InquirySync
    inquiry: Inquiry
    settings: SalesforceSettings
    headers: SoapHeaders
    keys: PersonKeys
    source_name: str
    region: str
    # A Contact's company: its Account's Name and claim/lock key ("" for Leads and for
    # inquiries without a company).
    account_name: str = ""
    account_key: str = ""
    # The org's schema (describe), read once per connection (`org_schema`).
    schema: OrgSchema | None = None
    # Fields Salesforce refused on an earlier write of this attempt, written again without.
    refused: dict[str, LeftOut] = field(default_factory=dict)

    def fields_for(self, sobject: str, *, for_update: bool) -> SalesforceFields:
        return salesforce_fields(
            inquiry=self.inquiry,
            sobject=sobject,
            for_update=for_update,
            source_name=self.source_name,
            phone_region=self.region,
            send_job_description=self.settings.send_job_description,
            include_source_name=self.settings.include_source_name,
            schema=self.schema,
            lead_source=self.settings.lead_source,
            lead_status=self.settings.lead_status,
            refused=self.refused,
        )


@dataclass
class PlannedWrite:
    """What to do for one item: create, update, skip, or wait (a busy person claim)."""

    item: SyncItem
    action: str  # "create" | "update" | "skip" | "busy"
    sobject: str
    record_id: str = ""
    match: Match | None = None
    link: str = ""  # the link the record will have once written (LINK_*)
    # Contact creates with a company: the Account found (or, once created, made) for it, and
    # whether it must be created with the Contact.
    account_id: str = ""
    create_account: bool = False
    account_created: bool = False
    # A create the org's duplicate rule flagged against another person's record, sent again
    # with the duplicate-rule header because the rule allows saving (see `matching`, rule 6).
    allow_duplicate: bool = False

    @property
    def write_headers(self) -> SoapHeaders:
        """The source's headers, plus DuplicateRuleHeader allowSave=true for `allow_duplicate`."""
        headers = self.item.headers
        if not self.allow_duplicate:
            return headers
        rule = headers.duplicate_rule or DuplicateRuleHeader()
        return dataclasses.replace(
            headers, duplicate_rule=dataclasses.replace(rule, allow_save=True)
        )


@dataclass
class WriteOutcome:
    """How one item ended; `error` is set when it did not succeed."""

    item: SyncItem
    status: str
    sobject: str = ""
    record_id: str = ""
    link: str = ""
    error: SalesforceError | None = None
    retry_in: float | None = None  # a retry with a fixed delay (no backoff)
    detail: dict[str, Any] = field(default_factory=dict)


class PersonBusy(SalesforceTransientError):
    """Another worker claimed this person's key for a create moments ago and has not finished."""


def _is_linked(sync: InquirySync, org_id: str) -> bool:
    return (
        bool(sync.record_id)
        and sync.org_id == org_id
        and sync.detail.get("link", LINK_CREATED) != LINK_SKIPPED
    )


def _find_lost_create(client: SalesforceClient, item: SyncItem) -> Match | None:
    """A record our earlier create made although its answer was lost, for an inquiry without
    email or phone: a record of that type with the same name (and company), created since the
    create was sent."""
    pending = item.sync.detail.get("pending_create") or {}
    sobject = pending.get("sobject")
    if sobject not in (LEAD, CONTACT) or not pending.get("sent_at"):
        return None
    since = dt.datetime.fromisoformat(pending["sent_at"]) - dt.timedelta(minutes=1)
    values = item.fields_for(sobject, for_update=False).values
    conditions = [
        format_soql("LastName = {}", values.get("LastName", PLACEHOLDER)),
        # A datetime literal is unquoted in SOQL.
        "CreatedDate >= " + since.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    ]
    if sobject == LEAD:
        conditions.append(format_soql("Company = {}", values.get("Company", PLACEHOLDER)))
    soql = f"SELECT Id FROM {sobject} WHERE {' AND '.join(conditions)} ORDER BY CreatedDate LIMIT 1"  # noqa: S608
    records = client.query(soql)
    if not records:
        return None
    return Match(sobject, records[0]["Id"], "lost_create")


def _made_by_lost_create(match: Match, pending: dict[str, Any]) -> bool:
    """Whether the matched record may be the one our earlier create made although its answer
    was lost: created after that create was sent. It is then updated (our values win) and the
    sync counts as a create."""
    if not (match.created_date and pending.get("sent_at")):
        return False
    sent_at = dt.datetime.fromisoformat(pending["sent_at"]) - dt.timedelta(minutes=1)
    return parse_salesforce_datetime(match.created_date) >= sent_at


def _claim(org_id: str, key: str, *, ours: bool, who: str) -> tuple[bool, str]:
    """Claim one key (a person's email or phone, or a company's name) for a create: the unique
    row (org, key) is what keeps two workers from both creating a record, even if the lock was
    lost. Returns (made here, record id another worker created under the key moments ago, which
    the look-up did not see yet). Raises PersonBusy while another worker's create is under way.
    A stale claim, or our own whose create answer was lost and which the look-up did not find,
    is taken over, unless another worker took it over first."""
    try:
        with transaction.atomic():
            SalesforcePerson.objects.create(org_id=org_id, match_key=key)
        return True, ""
    except IntegrityError:
        pass
    row = SalesforcePerson.objects.filter(org_id=org_id, match_key=key).first()
    if row is None:
        raise PersonBusy("PERSON_BUSY", f"The {who}'s claim changed while we read it.")
    fresh_after = timezone.now() - dt.timedelta(seconds=lock_ttl_seconds())
    if row.created_at >= fresh_after:
        if row.record_id:
            return False, row.record_id
        if not ours:
            raise PersonBusy(
                "PERSON_BUSY", f"Another sync is creating the {who}'s record right now."
            )
    taken = SalesforcePerson.objects.filter(pk=row.pk, created_at=row.created_at).update(
        created_at=timezone.now(), sobject="", record_id=""
    )
    if not taken:
        raise PersonBusy("PERSON_BUSY", f"Another sync claimed the {who} at once.")
    return False, ""


def _claim_keys(org_id: str, item: SyncItem) -> Match | None:
    """Claim the person's keys for a create. Returns a match instead when another worker
    created this person moments ago; raises PersonBusy when its create is still under way
    (keys claimed here are released)."""
    ours = item.sync.detail.get("pending_create", {}).get("keys") == item.keys.keys
    created: list[str] = []
    try:
        for key in item.keys.keys:
            made, record_id = _claim(org_id, key, ours=ours, who="person")
            if made:
                created.append(key)
            elif record_id and key.startswith("phone:") and item.keys.email:
                # A line someone else created a record under: with an email of our own, only
                # the email says whose record it is (`matching`, rule 3), and the email's claim
                # (sorted first) was ours. Not our record; the create goes on.
                continue
            elif sobject := sobject_of_id(record_id):
                _release_claims(org_id, created)
                return Match(sobject, record_id, "claimed")
    except PersonBusy:
        _release_claims(org_id, created)
        raise
    return None


def _claim_account(org_id: str, item: SyncItem) -> str | None:
    """Claim the company's Account key (`account:<name>`) for a create, as `_claim_keys` claims
    a person's. Returns the Account id another worker created moments ago, if any."""
    key = item.account_key
    ours = item.sync.detail.get("pending_create", {}).get("account_key") == key
    return _claim(org_id, key, ours=ours, who="company")[1] or None


def _remember_account(org_id: str, key: str, account_id: str) -> None:
    """Point the company's claim at its new Account, so other workers use it."""
    SalesforcePerson.objects.update_or_create(
        org_id=org_id, match_key=key, defaults={"sobject": ACCOUNT, "record_id": account_id}
    )


def _release_claims(org_id: str, keys: Sequence[str]) -> None:
    """Drop claims that never got a record (the create was refused, or never sent)."""
    if keys:
        SalesforcePerson.objects.filter(org_id=org_id, match_key__in=keys, record_id="").delete()


def plan_writes(
    *, client: SalesforceClient, org_id: str, items: Sequence[SyncItem]
) -> list[PlannedWrite]:
    """Decide, for every item, which record it writes: its linked record, the match found in
    Salesforce (or skip it, with Create only for new leads), or a new record. The caller holds
    the person locks of every item."""
    plans: dict[int, PlannedWrite] = {}
    to_match: list[SyncItem] = []
    for index, item in enumerate(items):
        if _is_linked(item.sync, org_id):
            plans[index] = PlannedWrite(
                item,
                "update",
                item.sync.sobject,
                item.sync.record_id,
                Match(item.sync.sobject, item.sync.record_id, "linked"),
                link=item.sync.detail.get("link", LINK_CREATED),
            )
        else:
            to_match.append(item)

    requests = [
        MatchRequest(key=id(item), email=item.keys.email, phone=item.keys.phone, region=item.region)
        for item in to_match
    ]
    # The Accounts of the companies of Contacts we may create, in the same look-up call.
    account_names = [
        item.account_name
        for item in to_match
        if item.account_name and item.settings.record_type == CONTACT
    ]
    match_results, accounts = lookup_people_and_accounts(
        client=client, requests=requests, account_names=account_names
    )
    results = {r.request.key: r for r in match_results}

    claimed_keys: set[str] = set()
    for index, item in enumerate(items):
        if index in plans:
            continue
        result = results[id(item)]
        match = result.match
        pending = item.sync.detail.get("pending_create")
        if match is None and not item.keys.keys and pending:
            match = _find_lost_create(client, item)
        elif match is not None and pending and _made_by_lost_create(match, pending):
            match = dataclasses.replace(match, reason="lost_create")
        if match is None:
            if claimed_keys & set(item.keys.keys):
                # Two items of one batch for the same new person: the second waits for the first
                # one's record, and a later pass matches it.
                plans[index] = PlannedWrite(item, "busy", item.settings.record_type)
                continue
            try:
                match = _claim_keys(org_id, item)
            except PersonBusy:
                plans[index] = PlannedWrite(item, "busy", item.settings.record_type)
                continue
            claimed_keys.update(item.keys.keys)
        if match is None:
            plan = PlannedWrite(item, "create", item.settings.record_type, link=LINK_CREATED)
            if plan.sobject == CONTACT and item.account_key:
                try:
                    _plan_account(org_id, plan, accounts, claimed_keys)
                except PersonBusy:
                    _release_claims(org_id, item.keys.keys)
                    plan = PlannedWrite(item, "busy", item.settings.record_type)
            plans[index] = plan
        elif match.reason == "lost_create":
            # Our earlier create did write the record: make sure it has our values.
            plans[index] = PlannedWrite(
                item, "update", match.sobject, match.record_id, match, link=LINK_CREATED
            )
        elif item.settings.only_new_leads:
            plans[index] = PlannedWrite(
                item, "skip", match.sobject, match.record_id, match, link=LINK_SKIPPED
            )
        else:
            plans[index] = PlannedWrite(
                item, "update", match.sobject, match.record_id, match, link=LINK_MATCHED
            )
    return [plans[index] for index in range(len(items))]


def _plan_account(
    org_id: str, plan: PlannedWrite, accounts: dict[str, str], claimed_keys: set[str]
) -> None:
    """The Account of a Contact create: the one the look-up found, the one another worker
    created moments ago, or a new one (the company's key claimed first)."""
    key = plan.item.account_key
    found = accounts.get(key)
    if found:
        plan.account_id = found
        return
    if key in claimed_keys:
        # Two new people of one new company in one batch: the second waits for the Account.
        raise PersonBusy("PERSON_BUSY", "Another item of this batch creates the Account.")
    claimed = _claim_account(org_id, plan.item)
    if claimed:
        plan.account_id = claimed
        return
    claimed_keys.add(key)
    plan.create_account = True


def _mark_pending_create(plans: Sequence[PlannedWrite]) -> None:
    """Remember, committed before the call, that a create is being sent: if its answer is lost,
    the next attempt knows to look for the record before creating again."""
    sent_at = timezone.now().isoformat()
    for plan in plans:
        detail = dict(plan.item.sync.detail)
        detail["pending_create"] = {
            "sobject": plan.sobject,
            "sent_at": sent_at,
            "keys": plan.item.keys.keys,
            "account_key": plan.item.account_key if plan.create_account else "",
        }
        plan.item.sync.detail = detail
        InquirySync.objects.filter(pk=plan.item.sync.pk).update(detail=detail)


def _api_of(headers: SoapHeaders) -> str:
    return "soap" if headers.needs_soap else "rest"


def _group(plans: Sequence[PlannedWrite]) -> dict[tuple[str, str], list[PlannedWrite]]:
    """Plans that can share one write call: same record type and same headers."""
    groups: dict[tuple[str, str], list[PlannedWrite]] = {}
    for plan in plans:
        key = (plan.sobject, plan.write_headers.to_option_string())
        groups.setdefault(key, []).append(plan)
    return groups


def _write_group(
    client: SalesforceClient, operation: str, plans: Sequence[PlannedWrite]
) -> list[tuple[PlannedWrite, str | None, SalesforceError | None, SalesforceFields]]:
    """One create or update call for plans of one group; returns (plan, id, error, fields)."""
    from integrations.salesforce.client import error_from_save_result
    from integrations.salesforce.soap import SObjectRecord

    mapped = [p.item.fields_for(p.sobject, for_update=operation == "update") for p in plans]
    records = [
        SObjectRecord(
            p.sobject,
            # Only a create links a Contact to its company's Account; an update never changes
            # a Contact's AccountId (see the module docstring).
            {**m.values, "AccountId": p.account_id}
            if operation == "create" and p.account_id
            else m.values,
            p.record_id or None,
        )
        for p, m in zip(plans, mapped, strict=True)
    ]
    headers = plans[0].write_headers
    try:
        if operation == "create":
            results = client.create_many(records, headers=headers)
        else:
            # Updates never re-run assignment rules: an owner must not change silently.
            results = client.update_many(records, headers=headers, reassign=False)
    except SalesforceError as exc:
        return [(p, None, exc, m) for p, m in zip(plans, mapped, strict=True)]
    out = []
    for plan, result, fields_ in zip(plans, results, mapped, strict=True):
        if result.success:
            out.append((plan, result.id or plan.record_id, None, fields_))
        else:
            out.append((plan, None, error_from_save_result(result), fields_))
    return out


def _account_error(error: SalesforceError, name: str) -> SalesforceError:
    """The Account's refusal, said to be the Account's (its fields are not the Contact's)."""
    return type(error)(
        error.error_code,
        f"Salesforce refused the Account {name!r} for this Contact: {error.message}",
        list(error.fields),
    )


def _create_with_account(
    client: SalesforceClient, plan: PlannedWrite
) -> tuple[PlannedWrite, str | None, SalesforceError | None, SalesforceFields]:
    """Create a Contact together with its company's new Account; returns (plan, Contact id,
    error, fields) like `_write_group`, with `plan.account_id` set once the Account exists.

    Over REST: ONE Composite call, allOrNone, the Contact's AccountId a reference to the Account
    subrequest (`@{refAccount.id}`), so a refused Contact leaves no orphan Account. When the
    source's headers need SOAP (EmailHeader & co., which Composite cannot carry): two calls,
    the Account then the Contact; a Contact refused after that leaves the Account, which is
    the company's Account next time (it is recorded in the company's claim at once).

    The Account is created without the source's assignment rule (that rule is the person
    record's; a Lead rule id would be refused on an Account) and without EmailHeader: it is
    owned by the connected user. An Account a duplicate rule blocks is replaced by the Account
    the rule names, and the Contact is then created alone (one call more).
    """
    from integrations.salesforce.client import error_from_save_result, save_result_from_subrequest
    from integrations.salesforce.soap import SObjectRecord

    item = plan.item
    mapped = item.fields_for(CONTACT, for_update=False)
    account = account_fields(company=item.inquiry.company, schema=item.schema)
    merged = dataclasses.replace(mapped, truncated=mapped.truncated + account.truncated)
    name = account.values["Name"]
    headers = plan.write_headers
    account_headers = dataclasses.replace(headers, assignment_rule=None, email=None)
    org_id = client.connection.org_id
    try:
        if not headers.needs_soap:
            subrequests = [
                client.create_subrequest(
                    "refAccount", ACCOUNT, account.values, headers=account_headers
                ),
                client.create_subrequest(
                    "refContact",
                    CONTACT,
                    {**mapped.values, "AccountId": "@{refAccount.id}"},
                    headers=headers,
                ),
            ]
            items = client.composite(subrequests, all_or_none=True)
            if len(items) != 2:
                raise SalesforceTransientError(
                    "INVALID_RESPONSE", f"Composite answered {len(items)} results for 2 creates"
                )
            account_result, contact_result = (save_result_from_subrequest(i) for i in items)
            if account_result.success and contact_result.success and contact_result.id:
                plan.account_id, plan.account_created = account_result.id or "", True
                return plan, contact_result.id, None, merged
            # allOrNone: the subrequest that failed carries the reason, the other one says
            # PROCESSING_HALTED.
            if account_result.success or _halted(account_result):
                return plan, None, error_from_save_result(contact_result), merged
        else:
            (account_result,) = client.create_many(
                [SObjectRecord(ACCOUNT, account.values)], headers=account_headers
            )
            if account_result.success and account_result.id:
                plan.account_id, plan.account_created = account_result.id, True
                _remember_account(org_id, item.account_key, account_result.id)
        if not plan.account_id:
            # Salesforce refused the Account. A duplicate rule that blocks it names the
            # company's Account under another spelling ("Acme, Inc." for "ACME", which the
            # look-up by Name cannot find): the Contact joins that Account, one call more.
            error = error_from_save_result(account_result)
            existing = _account_named_by(error)
            if existing is None:
                return plan, None, _account_error(error, name), merged
            plan.account_id, plan.account_created = existing, False
            _remember_account(org_id, item.account_key, existing)
        (contact_result,) = client.create_many(
            [SObjectRecord(CONTACT, {**mapped.values, "AccountId": plan.account_id})],
            headers=headers,
        )
    except SalesforceError as exc:
        return plan, None, exc, merged
    if contact_result.success and contact_result.id:
        return plan, contact_result.id, None, merged
    return plan, None, error_from_save_result(contact_result), merged


def _account_named_by(error: SalesforceError) -> str | None:
    """The existing Account a duplicate rule matched when it blocked our Account, if any."""
    if isinstance(error, SalesforceDuplicatesDetected):
        for record_id in error.match_ids:
            if record_id.startswith(ACCOUNT_ID_PREFIX):
                return record_id
    return None


def _resolve_duplicate(
    client: SalesforceClient, plan: PlannedWrite, error: SalesforceDuplicatesDetected
) -> Match | PlannedWrite | str | None:
    """What to do when the org's duplicate rule refused our create (`matching`, rule 6): the
    Match when a named Lead or Contact is the inquiry's person; the plan again with the
    allow-save header when the rule allows saving; "blocked" when it blocks; None when the rule
    named no Lead or Contact (the error then stands). Costs one call (reading the named
    records) when it named any. Raises SalesforceError when that read fails."""
    named = [i for i in error.match_ids if sobject_of_id(i)]
    if not named:
        return None
    item = plan.item
    request = MatchRequest(
        key=id(item), email=item.keys.email, phone=item.keys.phone, region=item.region
    )
    same = identify_named_records(client=client, request=request, record_ids=named).match
    if same is not None:
        return dataclasses.replace(same, reason="duplicate_rule")
    if error.allow_save:
        return dataclasses.replace(plan, allow_duplicate=True)
    return "blocked"


def _duplicate_detail(error: SalesforceDuplicatesDetected, *, saved_anyway: bool) -> dict[str, Any]:
    """What the rule said, for the attempt's detail and the card: the rule's API name, the
    records it named (ids only: never another person's data) and whether we saved anyway."""
    return {
        "rule": error.duplicate_rule,
        "records": [i for i in error.match_ids if sobject_of_id(i)],
        "saved_anyway": saved_anyway,
    }


def _blocked_error(error: SalesforceDuplicatesDetected) -> SalesforceDuplicatesDetected:
    """The error stored with BLOCKED_DUPLICATE: Salesforce's code, and in plain words which rule
    blocked us, which record it named and why we did not write to it."""
    named = [i for i in error.match_ids if sobject_of_id(i)]
    records = ", ".join(f"{sobject_of_id(i)} {i}" for i in named)
    rule = error.duplicate_rule or "a duplicate rule"
    message = (
        f"Salesforce's duplicate rule {rule} blocks this new record because it looks like "
        f"{records}. That record has another email address (or neither the email nor the phone "
        "of this inquiry), so it is another person and was left unchanged. Nothing was written; "
        "press Retry once the rule or the record has changed. "
        f"Salesforce said: {error.message}"
    )
    return SalesforceDuplicatesDetected(
        error.error_code,
        message,
        list(error.fields),
        status=error.status,
        match_ids=list(error.match_ids),
        duplicate_rule=error.duplicate_rule,
        allow_save=error.allow_save,
    )


def _halted(result: Any) -> bool:
    return bool(result.errors) and all(e.status_code == "PROCESSING_HALTED" for e in result.errors)


def _converted_contact_id(client: SalesforceClient, lead_id: str) -> str:
    records = client.query(
        format_soql("SELECT ConvertedContactId FROM Lead WHERE Id = {} LIMIT 1", lead_id)
    )
    return (records[0].get("ConvertedContactId") or "") if records else ""


def write_plan(*, client: SalesforceClient, plans: Sequence[PlannedWrite]) -> list[WriteOutcome]:
    """Carry out the plans: one sObject Collections (or SOAP) call per group of creates and of
    updates, a single create/update for one record. Never raises a SalesforceError: every item
    gets its own outcome."""
    outcomes: dict[int, WriteOutcome] = {}
    index_of = {id(plan): index for index, plan in enumerate(plans)}

    for index, plan in enumerate(plans):
        if plan.action == "skip":
            outcomes[index] = WriteOutcome(
                plan.item,
                SyncStatus.SKIPPED_EXISTING,
                plan.sobject,
                plan.record_id,
                plan.link,
                detail={"action": "skip", "match": plan.match.as_detail() if plan.match else {}},
            )
        elif plan.action == "busy":
            outcomes[index] = WriteOutcome(
                plan.item,
                SyncStatus.RETRYING,
                retry_in=LOCK_BUSY_RETRY_SECONDS,
                error=PersonBusy("PERSON_BUSY", "Another sync is creating this person's record."),
            )

    creates = [p for p in plans if p.action == "create"]
    updates = [p for p in plans if p.action == "update"]
    follow_up: list[PlannedWrite] = []

    if creates:
        _mark_pending_create(creates)
    created: list[tuple[PlannedWrite, str | None, SalesforceError | None, SalesforceFields]] = []
    for group in _group([p for p in creates if not p.create_account]).values():
        created.extend(_write_group(client, "create", group))
    created.extend(_create_with_account(client, p) for p in creates if p.create_account)
    for plan, record_id, error, mapped in created:
        index = index_of[id(plan)]
        detail: dict[str, Any] = {
            "action": "create",
            "api": _api_of(plan.item.headers),
            "truncated": mapped.truncation_detail(),
            "left_out": mapped.left_out_detail(),
        }
        if plan.account_id:
            detail["account"] = {"id": plan.account_id, "created": plan.account_created}
        if error is None and record_id:
            outcomes[index] = WriteOutcome(
                plan.item,
                SyncStatus.CREATED,
                plan.sobject,
                record_id,
                LINK_CREATED,
                detail=detail,
            )
            continue
        status = ""
        if isinstance(error, SalesforceDuplicatesDetected) and not plan.allow_duplicate:
            # A duplicate rule named existing records: the match only when one of them is the
            # same person (`matching`, rule 6); else create anyway or stop, as the rule says.
            try:
                resolution = _resolve_duplicate(client, plan, error)
            except SalesforceError as exc:
                resolution, error = None, exc
            if isinstance(resolution, PlannedWrite):
                # An "Allow" rule flagged someone else: create with the allow-save header.
                flagged = error
                retry, record_id, error, mapped = (
                    _create_with_account(client, resolution)
                    if resolution.create_account
                    else _write_group(client, "create", [resolution])[0]
                )
                detail["truncated"] = mapped.truncation_detail()
                detail["left_out"] = mapped.left_out_detail()
                detail["duplicate"] = _duplicate_detail(flagged, saved_anyway=True)
                if retry.account_id:
                    detail["account"] = {"id": retry.account_id, "created": retry.account_created}
                if error is None and record_id:
                    outcomes[index] = WriteOutcome(
                        plan.item,
                        SyncStatus.CREATED,
                        plan.sobject,
                        record_id,
                        LINK_CREATED,
                        detail=detail,
                    )
                    continue
            elif resolution == "blocked":
                status = SyncStatus.BLOCKED_DUPLICATE
                detail["duplicate"] = _duplicate_detail(error, saved_anyway=False)
                error = _blocked_error(error)
            elif isinstance(resolution, Match):
                match = resolution
                link = LINK_SKIPPED if plan.item.settings.only_new_leads else LINK_MATCHED
                action = "skip" if plan.item.settings.only_new_leads else "update"
                resolved = PlannedWrite(
                    plan.item, action, match.sobject, match.record_id, match, link=link
                )
                index_of[id(resolved)] = index
                if action == "skip":
                    outcomes[index] = WriteOutcome(
                        plan.item,
                        SyncStatus.SKIPPED_EXISTING,
                        match.sobject,
                        match.record_id,
                        LINK_SKIPPED,
                        detail={**detail, "match": match.as_detail()},
                    )
                else:
                    follow_up.append(resolved)
                continue
        outcomes[index] = WriteOutcome(plan.item, status, plan.sobject, error=error, detail=detail)
        if not isinstance(error, SalesforceTransientError):
            # Refused before anything was written (validation, auth, rate limit): no record
            # can exist (over SOAP a new Account may, but its claim points at it and stays), so
            # the claims and the pending-create mark go.
            claims = [*plan.item.keys.keys]
            if plan.create_account:
                claims.append(plan.item.account_key)
            _release_claims(client.connection.org_id, claims)
            plan.item.sync.detail.pop("pending_create", None)
            InquirySync.objects.filter(pk=plan.item.sync.pk).update(detail=plan.item.sync.detail)

    def run_updates(batch: Sequence[PlannedWrite]) -> list[PlannedWrite]:
        again: list[PlannedWrite] = []
        for group in _group(batch).values():
            for plan, _record_id, error, mapped in _write_group(client, "update", group):
                index = index_of[id(plan)]
                detail = {
                    "action": "update",
                    "api": _api_of(plan.item.headers),
                    "truncated": mapped.truncation_detail(),
                    "left_out": mapped.left_out_detail(),
                    "match": plan.match.as_detail() if plan.match else {},
                }
                if error is None:
                    lost_create = plan.match is not None and plan.match.reason == "lost_create"
                    outcomes[index] = WriteOutcome(
                        plan.item,
                        SyncStatus.CREATED if lost_create else SyncStatus.UPDATED,
                        plan.sobject,
                        plan.record_id,
                        plan.link,
                        detail=detail,
                    )
                    continue
                if error.error_code == "CANNOT_UPDATE_CONVERTED_LEAD" and plan.sobject == LEAD:
                    # The Lead was converted since we linked it: its Contact is the record now.
                    try:
                        contact_id = _converted_contact_id(client, plan.record_id)
                    except SalesforceError as exc:
                        error = exc
                    else:
                        if contact_id:
                            moved = dataclasses.replace(
                                plan,
                                sobject=CONTACT,
                                record_id=contact_id,
                                match=Match(
                                    CONTACT,
                                    contact_id,
                                    "converted",
                                    converted_lead_id=plan.record_id,
                                ),
                            )
                            index_of[id(moved)] = index
                            again.append(moved)
                            continue
                if error.error_code in _RECORD_GONE:
                    # The record was deleted in Salesforce: forget it (link and person claims)
                    # and match again at once; the look-up no longer finds it.
                    SalesforcePerson.objects.filter(
                        org_id=client.connection.org_id, record_id=plan.record_id
                    ).delete()
                    outcomes[index] = WriteOutcome(
                        plan.item,
                        SyncStatus.RETRYING,
                        error=error,
                        retry_in=0,
                        detail={**detail, "unlink": True},
                    )
                    continue
                outcomes[index] = WriteOutcome(
                    plan.item, "", plan.sobject, error=error, detail=detail
                )
        return again

    pending = [*updates, *follow_up]
    for _round in range(2):  # the second round only follows converted Leads to their Contact
        if not pending:
            break
        pending = run_updates(pending)
    return [outcomes[index] for index in range(len(plans))]


# --------------------------------------------------------------------------- one inquiry


@dataclass
class AttemptResult:
    """The outcome of one attempt, before it is stored."""

    status: str
    api_calls: int = 0
    sobject: str = ""
    record_id: str = ""
    org_id: str = ""
    link: str = ""
    error: SalesforceError | None = None
    retry_in: float | None = None
    unlink: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


def _client_for(connection: SalesforceConnection) -> SalesforceClient:
    from integrations.salesforce.client import SalesforceClient

    return SalesforceClient(connection)


def _gates(sync: InquirySync) -> tuple[AttemptResult | None, SyncItem | None, Any]:
    """The gates in the issue's order; returns (result, None, None) when a gate stops the
    sync, else (None, item, connection)."""
    inquiry = sync.inquiry
    effective = effective_salesforce_settings(source=inquiry.source)
    own = effective.settings
    detail: dict[str, Any] = {"settings_from": effective.owner.slug}
    if not own.enabled:
        return AttemptResult(SyncStatus.DISABLED, detail=detail), None, None
    connection = effective.usable_connection
    if connection is None:
        return AttemptResult(SyncStatus.WAITING_RECONNECT, detail=detail), None, None
    linked = _is_linked(sync, connection.org_id)
    if own.only_with_contact_info and not inquiry.has_contact_info and not linked:
        return AttemptResult(SyncStatus.WAITING_CONTACT_INFO, detail=detail), None, None
    try:
        headers = parse_header_options(own.header_options)
    except HeaderOptionError as exc:
        error = SalesforceValidationError("INVALID_HEADER_OPTIONS", exc.error, ["header_options"])
        return AttemptResult(SyncStatus.FAILED, error=error, detail=detail), None, None
    region = inquiry.source.phone_region or "US"
    item = SyncItem(
        sync=sync,
        inquiry=inquiry,
        settings=own,
        headers=headers,
        keys=person_keys(email=inquiry.email, phone=inquiry.phone, region=region),
        source_name=inquiry.source.name,
        region=region,
    )
    if own.record_type == CONTACT and account_name(inquiry.company or ""):
        item.account_name = account_fields(company=inquiry.company).values["Name"]
        item.account_key = account_key(item.account_name)
    return None, item, connection


def _attempt(sync: InquirySync) -> AttemptResult:
    stopped, item, connection = _gates(sync)
    if stopped is not None:
        return stopped
    assert item is not None and connection is not None
    client = _client_for(connection)
    org_id = connection.org_id
    result = AttemptResult(SyncStatus.PENDING, org_id=org_id)
    try:
        lock_keys: list[str] = []
        if not _is_linked(sync, org_id):
            # A Contact of a company also locks the company, so two new people of one new
            # company never both create its Account.
            lock_keys = [*item.keys.keys, *([item.account_key] if item.account_key else [])]
        item.schema = org_schema_for(client=client)
        with person_lock(org_id=org_id, keys=lock_keys, wait=min(30.0, lock_ttl_seconds() / 2)):
            plans = plan_writes(client=client, org_id=org_id, items=[item])
            (outcome,) = write_plan(client=client, plans=plans)
            if outcome.error is None and outcome.status in SUCCESS_STATUSES:
                _remember_person(org_id, item, outcome)
    except LockBusy:
        result.status = SyncStatus.RETRYING
        result.error = SalesforceTransientError("PERSON_BUSY", "Another sync holds this person.")
        result.retry_in = LOCK_BUSY_RETRY_SECONDS
        result.api_calls = client.api_calls
        return result
    except SalesforceError as exc:
        result.error = exc
        result.api_calls = client.api_calls
        if isinstance(exc, SalesforceAuthError):
            _connection_needs_reconnect(connection, exc)
        return result
    result.api_calls = client.api_calls
    if isinstance(outcome.error, SalesforceAuthError):
        _connection_needs_reconnect(connection, outcome.error)
    result.status = outcome.status
    result.sobject = outcome.sobject
    result.record_id = outcome.record_id
    result.link = outcome.link
    result.error = outcome.error
    result.retry_in = outcome.retry_in
    result.unlink = bool(outcome.detail.pop("unlink", False))
    result.detail = outcome.detail
    return result


def _connection_needs_reconnect(connection: SalesforceConnection, error: SalesforceError) -> None:
    """Stop every sync of this connection until the owner reconnects (a refused refresh has
    already said so; other auth errors, such as an API-disabled org, are marked here)."""
    from integrations.salesforce.connections import connection_mark_needs_reconnect

    if isinstance(error, SalesforceReconnectRequired):
        return
    connection_mark_needs_reconnect(
        connection=connection,
        reason=f"Salesforce refused this connection ({error.error_code}: {error.message}).",
    )


def _remember_person(org_id: str, item: SyncItem, outcome: WriteOutcome) -> None:
    """Point the person's keys at the record (and the company's key at a new Account), so a
    claim by another worker finds them."""
    account = outcome.detail.get("account") or {}
    if item.account_key and account.get("created") and account.get("id"):
        _remember_account(org_id, item.account_key, account["id"])
    for key in item.keys.keys:
        SalesforcePerson.objects.update_or_create(
            org_id=org_id,
            match_key=key,
            defaults={"sobject": outcome.sobject, "record_id": outcome.record_id},
        )


def _classify(result: AttemptResult, attempt_number: int) -> None:
    """Turn an error into a status and, for retries, a delay."""
    error = result.error
    if error is None or result.status in SUCCESS_STATUSES:
        return
    if isinstance(error, SalesforceAuthError):
        result.status = SyncStatus.WAITING_RECONNECT
    elif isinstance(error, SalesforceRateLimited):
        result.status = SyncStatus.RETRYING
        result.retry_in = retry_delay(attempt_number, base=RATE_LIMIT_BASE_SECONDS)
    elif isinstance(error, SalesforceTransientError):
        if result.retry_in is None and attempt_number >= MAX_TRANSIENT_ATTEMPTS:
            result.status = SyncStatus.FAILED
        else:
            result.status = SyncStatus.RETRYING
            if result.retry_in is None:
                result.retry_in = retry_delay(attempt_number)
    elif result.status not in (SyncStatus.RETRYING, SyncStatus.BLOCKED_DUPLICATE):
        result.status = SyncStatus.FAILED


def _take_lease(inquiry_id: int) -> dt.datetime | None:
    now = timezone.now()
    lease_until = now + dt.timedelta(seconds=lease_seconds())
    taken = (
        InquirySync.objects.filter(inquiry_id=inquiry_id, due_at__isnull=False)
        # A second early: the countdown of a retry is timed by the worker's clock.
        .filter(due_at__lte=now + dt.timedelta(seconds=1))
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .update(lease_expires_at=lease_until)
    )
    return lease_until if taken else None


def sync_inquiry_run(*, inquiry_id: int) -> AttemptResult | None:
    """Sync one inquiry if it is due and no other worker is on it (the task's body).

    Returns the attempt's result, or None when there was nothing to do (not due, already
    synced, leased by another worker, or deleted). Safe to run twice.
    """
    if _take_lease(inquiry_id) is None:
        return None
    sync = (
        InquirySync.objects.select_related("inquiry__source").filter(inquiry_id=inquiry_id).first()
    )
    if sync is None:  # the inquiry was deleted meanwhile
        return None
    version = sync.requested_version
    started = timezone.now()
    attempt_number = sync.attempt_count + 1
    try:
        result = _attempt(sync)
    except SoftTimeLimitExceeded:
        result = AttemptResult(
            SyncStatus.RETRYING,
            error=SalesforceTransientError("TIME_LIMIT", "The sync took too long and stopped."),
        )
    except Exception as exc:
        # A bug of ours: keep the row failed and visible rather than retrying it forever.
        logger.exception("sync of inquiry %s crashed", inquiry_id)
        result = AttemptResult(
            SyncStatus.FAILED,
            error=SalesforceError("INTERNAL_ERROR", f"The sync stopped unexpectedly ({exc})."),
        )
    _classify(result, attempt_number)
    _finish(sync, version, started, attempt_number, result)
    return result


def _keep(detail: dict[str, Any], attempt_detail: dict[str, Any], key: str) -> None:
    """Carry `key` of the attempt's detail onto the row's (the card reads the row), or drop the
    row's stale value when the attempt has none."""
    if attempt_detail.get(key):
        detail[key] = attempt_detail[key]
    else:
        detail.pop(key, None)


def _finish(
    sync: InquirySync,
    version: int,
    started: dt.datetime,
    attempt_number: int,
    result: AttemptResult,
) -> None:
    """Store the attempt and the row's new state; enqueue the next pass when one is due."""
    now = timezone.now()
    error = result.error
    with transaction.atomic():
        row = InquirySync.objects.select_for_update().get(pk=sync.pk)
        detail = dict(row.detail)
        attempt_detail = dict(result.detail)
        row.status = result.status
        row.last_attempt_at = started
        row.lease_expires_at = None
        row.error_code = error.error_code if error else ""
        row.error_message = error.message if error else ""
        row.error_fields = list(error.fields) if error else []
        next_in: float | None = None
        if result.status in SUCCESS_STATUSES:
            row.synced_version = version
            row.synced_at = now
            row.attempt_count = 0
            row.org_id, row.sobject, row.record_id = (
                result.org_id,
                result.sobject,
                result.record_id,
            )
            detail["link"] = result.link
            detail.pop("pending_create", None)
            detail["truncated"] = attempt_detail.get("truncated", [])
            _keep(detail, attempt_detail, "duplicate")
            _keep(detail, attempt_detail, "left_out")
        elif result.status == SyncStatus.RETRYING:
            row.attempt_count = attempt_number
            if result.unlink:
                row.record_id, row.sobject = "", ""
                detail.pop("link", None)
            next_in = result.retry_in if result.retry_in is not None else 0
        else:
            row.attempt_count = attempt_number if result.status == SyncStatus.FAILED else 0
            if result.status == SyncStatus.BLOCKED_DUPLICATE:
                _keep(detail, attempt_detail, "duplicate")
        again = row.requested_version > version
        if next_in is None and again:
            next_in = 0
        row.due_at = now + dt.timedelta(seconds=next_in) if next_in is not None else None
        row.detail = detail
        row.save()
        SyncAttempt.objects.create(
            sync=row,
            started_at=started,
            finished_at=now,
            api_calls=result.api_calls,
            outcome=result.status,
            error_code=row.error_code,
            error_message=row.error_message,
            error_fields=row.error_fields,
            detail={**attempt_detail, "version": version},
        )
        if next_in is not None:
            inquiry_id = row.inquiry_id
            countdown = next_in or None
            transaction.on_commit(lambda: _enqueue(inquiry_id, countdown))
    logger.info(
        "salesforce sync inquiry=%s status=%s calls=%s%s",
        sync.inquiry_id,
        result.status,
        result.api_calls,
        f" error={error.error_code}" if error else "",
    )
