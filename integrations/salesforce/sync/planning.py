"""Planning: for each item, which record it writes (linked, matched, skipped or new).

See docs/architecture.md ("One record per person") and `matching` for the matching rules.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from simple_salesforce.format import format_soql

from integrations.salesforce.api.client import SalesforceClient
from integrations.salesforce.sync.claims import (
    BUSY,
    BUSY_IN_BATCH,
    claim_account,
    claim_people,
    release_claims,
)
from integrations.salesforce.sync.items import (
    LINK_CREATED,
    LINK_MATCHED,
    LINK_SKIPPED,
    PersonBusy,
    PlannedWrite,
    SyncItem,
    is_linked,
)
from integrations.salesforce.sync.mapping import (
    CONTACT,
    LEAD,
    PLACEHOLDER,
)
from integrations.salesforce.sync.matching import (
    Match,
    MatchRequest,
    lookup_people_and_accounts,
    parse_salesforce_datetime,
)
from integrations.salesforce.sync.org_schema import org_schema_for

logger = logging.getLogger(__name__)

# An item that waits for another item of its own batch (the same new person) comes back right
# after the batch is written; the look-up then finds the record.
BATCH_BUSY_RETRY_SECONDS = 0.5
# Items of one batch that may follow one new person's create (the others wait a pass): each
# rank's updates are one more subrequest of the batch's write call.
MAX_FOLLOWERS = 3
SAME_RECORD_FIRST = "Another inquiry of this person is written to the same record first."


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


def plan_writes(
    *, client: SalesforceClient, org_id: str, items: Sequence[SyncItem]
) -> list[PlannedWrite]:
    """Decide, for every item, which record it writes: its linked record, the match found in
    Salesforce (or skip it, with Create only for new leads), or a new record. The caller holds
    the person locks of every item. Every item gets the org's schema (`org_schema`: stored,
    else read now in one call), which its fields are mapped with."""
    schema = org_schema_for(client=client)
    for item in items:
        item.schema = item.schema or schema
    plans: dict[int, PlannedWrite] = {}
    to_match: list[SyncItem] = []
    for index, item in enumerate(items):
        if is_linked(item.sync, org_id):
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

    matches: dict[int, Match | None] = {}
    for index, item in enumerate(items):
        if index in plans:
            continue
        match = results[id(item)].match
        pending = item.sync.detail.get("pending_create")
        if match is None and not item.keys.keys and pending:
            match = _find_lost_create(client, item)
        elif match is not None and pending and _made_by_lost_create(match, pending):
            match = dataclasses.replace(match, reason="lost_create")
        matches[index] = match

    # The people to create claim their keys, all at once. Two items of one batch for the same
    # new person: the first creates the record and the second follows it, updating that record
    # right after the creates of this pass (`write_plan`), rather than wait for a later pass.
    needing = [items[index] for index, match in matches.items() if match is None]
    claims = claim_people(org_id, needing)
    claimed_keys = {key for item in needing if claims[id(item)] is None for key in item.keys.keys}
    creator_of: dict[str, int] = {}  # a claimed key → the index of the item creating it
    followed: dict[int, int] = {}  # a leader's index → how many items follow it
    for index, match in matches.items():
        item = items[index]
        if match is None:
            answer = claims[id(item)]
            if answer == BUSY_IN_BATCH:
                leader, rank = _leader_of(item, creator_of, plans, followed)
                if leader is not None:
                    plans[index] = PlannedWrite(
                        item,
                        "follow",
                        leader.sobject,
                        link=LINK_MATCHED,
                        leader=leader,
                        follow_rank=rank,
                        retry_in=BATCH_BUSY_RETRY_SECONDS,  # if the leader's create fails
                    )
                    continue
            if answer in (BUSY, BUSY_IN_BATCH):
                plans[index] = PlannedWrite(
                    item,
                    "busy",
                    item.settings.record_type,
                    retry_in=BATCH_BUSY_RETRY_SECONDS if answer == BUSY_IN_BATCH else None,
                )
                continue
            match = answer if isinstance(answer, Match) else None
        if match is None:
            plan = PlannedWrite(item, "create", item.settings.record_type, link=LINK_CREATED)
            if plan.sobject == CONTACT and item.account_key:
                try:
                    _plan_account(org_id, plan, accounts, claimed_keys)
                except PersonBusy:
                    release_claims(org_id, item.keys.keys)
                    in_batch = item.account_key in claimed_keys  # the company's other person
                    plan = PlannedWrite(
                        item,
                        "busy",
                        item.settings.record_type,
                        retry_in=BATCH_BUSY_RETRY_SECONDS if in_batch else None,
                    )
            plans[index] = plan
            if plan.action == "create":
                creator_of.update((key, index) for key in item.keys.keys)
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
    return _one_update_per_record([plans[index] for index in range(len(items))])


def _one_update_per_record(plans: list[PlannedWrite]) -> list[PlannedWrite]:
    """Two items of one batch that update the same existing record: the first (due first)
    updates it, and each later one follows it (`follow`, up to `MAX_FOLLOWERS`): its update
    goes after the first one's, in the same write call where the batch has one, so the record
    ends with the later inquiry's values; else, and past the limit, it waits a pass. Why: a
    batch's updates go in one sObject Collections request, and one request must not name a
    record twice (Apex's DML refuses a list with a duplicate id, "Duplicate id in list"), which
    could refuse the whole batch's updates."""
    first_of: dict[str, PlannedWrite] = {}
    ranks: dict[str, int] = {}
    kept = []
    for plan in plans:
        if plan.action == "update" and plan.record_id in first_of:
            rank = ranks[plan.record_id] = ranks.get(plan.record_id, 0) + 1
            plan = dataclasses.replace(
                plan,
                action="follow" if rank <= MAX_FOLLOWERS else "busy",
                leader=first_of[plan.record_id] if rank <= MAX_FOLLOWERS else None,
                follow_rank=rank,
                retry_in=BATCH_BUSY_RETRY_SECONDS,
                busy_message=SAME_RECORD_FIRST,
            )
        elif plan.action == "update":
            first_of[plan.record_id] = plan
        kept.append(plan)
    return kept


def _leader_of(
    item: SyncItem,
    creator_of: dict[str, int],
    plans: dict[int, PlannedWrite],
    followed: dict[int, int],
) -> tuple[PlannedWrite | None, int]:
    """The create earlier in the batch that `item` follows, and `item`'s place among its
    followers (1, 2, …; their updates are sent in that order): the one item creating a record
    that shares a key with `item` and that the next pass's look-up would match to `item` (the
    same person by `matching`'s rule 3: a shared phone with two different emails is two
    people). (None, 0): the item waits for a later pass instead, as before."""
    leaders = {creator_of[key] for key in item.keys.keys if key in creator_of}
    if len(leaders) != 1:
        return None, 0
    (index,) = leaders
    leader = plans[index]
    keys = leader.item.keys
    by_email = bool(item.keys.email) and item.keys.email == keys.email
    by_phone = bool(item.keys.phone) and item.keys.phone == keys.phone
    if by_phone and not by_email and item.keys.email and keys.email:
        by_phone = False  # another person's email on that line
    if not (by_email or by_phone) or followed.get(index, 0) >= MAX_FOLLOWERS:
        return None, 0
    followed[index] = followed.get(index, 0) + 1
    return leader, followed[index]


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
    claimed = claim_account(org_id, plan.item)
    if claimed:
        plan.account_id = claimed
        return
    claimed_keys.add(key)
    plan.create_account = True
