"""Claims: the database rows (`SalesforcePerson`, unique per org and key) that make "one record
per person" (and one Account per company) hold even when two workers race past the lock.

See docs/architecture.md ("One record per person").
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction
from django.utils import timezone

from autorespond.db import bulk_update_values
from integrations.salesforce.models import (
    InquirySync,
    SalesforcePerson,
)
from integrations.salesforce.sync.items import PersonBusy, PlannedWrite, SyncItem, WriteOutcome
from integrations.salesforce.sync.locks import lock_ttl_seconds
from integrations.salesforce.sync.mapping import (
    ACCOUNT,
)
from integrations.salesforce.sync.matching import (
    Match,
    sobject_of_id,
)

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)


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


def claim_person_keys(org_id: str, item: SyncItem) -> Match | None:
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
                release_claims(org_id, created)
                return Match(sobject, record_id, "claimed")
    except PersonBusy:
        release_claims(org_id, created)
        raise
    return None


def claim_account(org_id: str, item: SyncItem) -> str | None:
    """Claim the company's Account key (`account:<name>`) for a create, as `claim_person_keys`
    claims a person's. Returns the Account id another worker created moments ago, if any."""
    key = item.account_key
    ours = item.sync.detail.get("pending_create", {}).get("account_key") == key
    return _claim(org_id, key, ours=ours, who="company")[1] or None


def remember_account(org_id: str, key: str, account_id: str) -> None:
    """Point the company's claim at its new Account, so other workers use it."""
    remember_accounts(org_id, {key: account_id})


def remember_accounts(org_id: str, accounts: dict[str, str]) -> None:
    """`remember_account` for a batch's companies (key -> Account id) in one statement (an
    upsert on the unique (org, key))."""
    if accounts:
        SalesforcePerson.objects.bulk_create(
            [
                SalesforcePerson(
                    org_id=org_id, match_key=key, sobject=ACCOUNT, record_id=account_id
                )
                for key, account_id in accounts.items()
            ],
            update_conflicts=True,
            unique_fields=["org_id", "match_key"],
            update_fields=["sobject", "record_id"],
        )


def release_claims(org_id: str, keys: Sequence[str]) -> None:
    """Drop claims that never got a record (the create was refused, or never sent)."""
    if keys:
        SalesforcePerson.objects.filter(org_id=org_id, match_key__in=keys, record_id="").delete()


def remember_person(org_id: str, item: SyncItem, outcome: WriteOutcome) -> None:
    """Point the person's keys at the record (and the company's key at a new Account), so a
    claim by another worker finds them."""
    remember_people(org_id, [(item, outcome)])


def remember_people(org_id: str, done: Sequence[tuple[SyncItem, WriteOutcome]]) -> None:
    """`remember_person` for a whole batch in one statement (an upsert on the unique
    (org, key)); a key of two items of the batch points at the last one's record."""
    rows: dict[str, SalesforcePerson] = {}
    for item, outcome in done:
        account = outcome.detail.get("account") or {}
        if item.account_key and account.get("created") and account.get("id"):
            rows[item.account_key] = SalesforcePerson(
                org_id=org_id, match_key=item.account_key, sobject=ACCOUNT, record_id=account["id"]
            )
        for key in item.keys.keys:
            rows[key] = SalesforcePerson(
                org_id=org_id, match_key=key, sobject=outcome.sobject, record_id=outcome.record_id
            )
    if rows:
        SalesforcePerson.objects.bulk_create(
            list(rows.values()),
            update_conflicts=True,
            unique_fields=["org_id", "match_key"],
            update_fields=["sobject", "record_id"],
        )


# What `claim_people` answers per item: None (its keys are claimed for a create), a Match (the
# record another worker created moments ago), or BUSY (wait and come back).
BUSY = "busy"
# Another item of the same batch claims the key: its record exists once the batch is written,
# so this one can come back at once.
BUSY_IN_BATCH = "busy-in-batch"


def claim_people(org_id: str, items: Sequence[SyncItem]) -> dict[int, Match | str | None]:
    """`claim_person_keys` for a batch, keyed by `id(item)`, in a few statements instead of a
    few per key: the existing claims are read at once, the new ones inserted at once. The caller
    holds the person locks of every item, so no other worker claims these keys meanwhile; if one
    did anyway (a lock lost), the insert fails and every item of the batch waits (BUSY) rather
    than risk a second record. Two items of the batch with a key in common: the second is BUSY
    (it is matched to the first one's record on its next pass)."""
    keys = {key for item in items for key in item.keys.keys}
    existing = {
        row.match_key: row
        for row in SalesforcePerson.objects.filter(org_id=org_id, match_key__in=keys)
    }
    fresh_after = timezone.now() - dt.timedelta(seconds=lock_ttl_seconds())
    answers: dict[int, Match | str | None] = {}
    batch_keys: set[str] = set()
    to_insert: list[SalesforcePerson] = []
    for item in items:
        if batch_keys & set(item.keys.keys):
            answers[id(item)] = BUSY_IN_BATCH
            continue
        ours = item.sync.detail.get("pending_create", {}).get("keys") == item.keys.keys
        answer: Match | str | None = None
        stale: list[SalesforcePerson] = []
        for key in item.keys.keys:
            row = existing.get(key)
            if row is None:
                continue
            if row.record_id and key.startswith("phone:") and item.keys.email:
                continue  # a line someone else has a record under (`matching`, rule 3)
            if row.created_at >= fresh_after:
                if row.record_id:
                    sobject = sobject_of_id(row.record_id)
                    if sobject:
                        answer = Match(sobject, row.record_id, "claimed")
                        break
                    continue
                if not ours:
                    answer = BUSY
                    break
            stale.append(row)
        if answer is None:
            for row in stale:  # a dead worker's claim, or our own lost create's: take it over
                taken = SalesforcePerson.objects.filter(
                    pk=row.pk, created_at=row.created_at
                ).update(created_at=timezone.now(), sobject="", record_id="")
                if not taken:
                    answer = BUSY
                    break
        answers[id(item)] = answer
        if answer is None:
            batch_keys.update(item.keys.keys)
            to_insert.extend(
                SalesforcePerson(org_id=org_id, match_key=key)
                for key in item.keys.keys
                if key not in existing
            )
    if to_insert:
        try:
            with transaction.atomic():
                SalesforcePerson.objects.bulk_create(to_insert)
        except IntegrityError:
            logger.warning("claims raced despite the person locks; the batch waits a moment")
            return {key: (BUSY if value is None else value) for key, value in answers.items()}
    return answers


def mark_pending_create(plans: Sequence[PlannedWrite]) -> None:
    """Remember, committed before the call, that a create is being sent: if its answer is lost,
    the next attempt knows to look for the record before creating again."""
    sent_at = timezone.now().isoformat()
    rows = []
    for plan in plans:
        detail = dict(plan.item.sync.detail)
        detail["pending_create"] = {
            "sobject": plan.sobject,
            "sent_at": sent_at,
            "keys": plan.item.keys.keys,
            "account_key": plan.item.account_key if plan.create_account else "",
        }
        plan.item.sync.detail = detail
        rows.append(plan.item.sync)
    # One statement for the batch (autocommit: committed before the call goes out).
    bulk_update_values(InquirySync, rows, {"detail": "jsonb"})
