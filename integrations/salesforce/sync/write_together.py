"""A batch's first writes in ONE Composite call (allOrNone false): its creates and updates as
sObject Collections subrequests, each new Contact's Account with the Contact joining it by
reference, and followers' updates referencing their leaders' new records.

See docs/architecture.md ("Writing").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from integrations.salesforce.api.client import (
    MAX_COMPOSITE_COLLECTIONS,
    MAX_COMPOSITE_SUBREQUESTS,
    SalesforceClient,
)
from integrations.salesforce.api.errors import SalesforceError
from integrations.salesforce.api.results import (
    error_from_save_result,
    save_result_from_subrequest,
    save_results_from_collection,
)
from integrations.salesforce.api.soap import SObjectRecord
from integrations.salesforce.sync.claims import remember_accounts
from integrations.salesforce.sync.degrade import WriteResult
from integrations.salesforce.sync.items import PlannedWrite
from integrations.salesforce.sync.mapping import (
    ACCOUNT,
    CONTACT,
    SalesforceFields,
    account_fields,
)
from integrations.salesforce.sync.write_calls import (
    account_error,
    account_named_by,
    create_accounts,
    plan_groups,
)


@dataclasses.dataclass
class _Part:
    """Subrequests of the batch's one write call: "creates" or "updates" (one group, as sObject
    Collections, or as one record), "pair" (a new Account, then its Contact joining it by
    reference), "follows" (followers updating the records their leaders' creates just made,
    each record's id a reference to its leader's result)."""

    kind: str
    plans: list[PlannedWrite]

    def subrequests(self) -> int:
        return 2 if self.kind == "pair" else 1

    def collections(self) -> int:
        return 1 if self.kind != "pair" and len(self.plans) > 1 else 0


def together_parts(
    creates: Sequence[PlannedWrite],
    updates: Sequence[PlannedWrite],
    follows: Sequence[PlannedWrite],
) -> list[_Part]:
    """Which first writes of a batch go in ONE Composite call (allOrNone false), within
    Composite's limits (25 subrequests, of which 5 sObject Collections or queries); the others
    are written as before. Empty when that would not save a call (a lone create or update is
    written as before, and so is a lone Contact with its new Account: allOrNone, no orphan).
    SOAP writes (headers only SOAP carries) are never in it."""

    def rest(plan: PlannedWrite) -> bool:
        return not plan.write_headers.needs_soap

    pairs = [p for p in creates if rest(p) and p.create_account and not p.account_id]
    plain = [p for p in creates if rest(p) and not p.create_account]
    ups = [p for p in updates if rest(p)]
    followers = [
        f
        for f in follows
        if f.leader is not None
        and rest(f)
        and rest(f.leader)
        and not f.item.settings.only_new_leads
        and not (f.leader.create_account and f.leader.account_id)
    ]
    # The calls the separate writes would make (new Accounts: one call for a lone Contact with
    # its Account, else one for the Accounts and one for their Contacts).
    # Followers of an update (the same record updated twice): one call per rank.
    update_ranks = {f.follow_rank for f in followers if f.leader and f.leader.action == "update"}
    separate = (
        len(plan_groups(plain))
        + (2 if len(pairs) > 1 else len(pairs))
        + len({key for p in [*ups, *followers] for key in plan_groups([p])})
        + len(update_ranks)
    )
    if separate <= 1:
        return []
    parts: list[_Part] = []
    budget = [MAX_COMPOSITE_SUBREQUESTS, MAX_COMPOSITE_COLLECTIONS]

    def add(part: _Part, reserve: int = 0) -> bool:
        if part.subrequests() + reserve > budget[0] or part.collections() + reserve > budget[1]:
            return False
        parts.append(part)
        budget[0] -= part.subrequests()
        budget[1] -= part.collections()
        return True

    # Groups first (one subrequest for up to 200 records), then the Contacts with a new
    # Account (two each), keeping room for the followers' group; what does not fit is written
    # as before.
    for group in [*plan_groups(plain).values(), *plan_groups(ups).values()]:
        add(_Part("creates" if group[0].action == "create" else "updates", group))
    for plan in pairs:
        add(_Part("pair", [plan]), reserve=1 if followers else 0)
    included = {id(p) for part in parts for p in part.plans}
    led = [f for f in followers if f.leader is not None and id(f.leader) in included]
    # One group per rank (a record's second follower is updated after its first, and no
    # collection carries one record twice) and per the followers' headers and record type.
    for rank in sorted({f.follow_rank for f in led}):
        for group in plan_groups([f for f in led if f.follow_rank == rank]).values():
            add(_Part("follows", group))
    return parts if sum(len(part.plans) for part in parts) > 1 else []


def accounts_first_when_crowded(
    client: SalesforceClient,
    creates: Sequence[PlannedWrite],
    updates: Sequence[PlannedWrite],
    follows: Sequence[PlannedWrite],
) -> list[tuple[PlannedWrite, str | None, SalesforceError | None, SalesforceFields]]:
    """When the batch's new Contacts with new Accounts do not all fit in its one Composite
    call (two subrequests each, beside the batch's groups; a batch of a drain group mixes one
    card's Leads with another's Contacts), make all those Accounts first in one Collections
    call (`create_accounts`): their Contacts then join the Contact creates' one subrequest, and
    their followers stay in the call. One call more instead of the two (Accounts, Contacts) or
    three (their followers too) of what did not fit. Returns the outcomes of the plans whose
    Account was refused (not created; leave them out of the writes); the others now have
    their `account_id` and no Account to create."""
    parts = together_parts(creates, updates, follows)
    included = {id(plan) for part in parts for plan in part.plans}
    pairs = [
        p
        for p in creates
        if p.create_account and not p.account_id and not p.write_headers.needs_soap
    ]
    if not parts or all(id(p) in included for p in pairs):
        return []
    refused = create_accounts(client, pairs)
    for plan in pairs:
        if plan.account_id:
            plan.create_account = False
    return refused


def write_together(
    client: SalesforceClient, parts: Sequence[_Part]
) -> tuple[dict[int, WriteResult], dict[int, WriteResult]]:
    """Make the first writes of `parts` in ONE Composite call (allOrNone false: one refused
    record fails alone). Returns the first write's result per plan (`id(plan)`), like
    `write_group`'s, and per follower.

    A follower's record id is a reference to its leader's result (`@{creates0[3].id}`, or
    `@{create2.id}` for a single create), or the record its leader updates: if the leader's
    create failed, or a reference cannot be resolved, the follower's subrequest fails as a
    whole and each follower then waits or is updated as before (`write_plan`), so no record is
    written twice and none is lost. A Contact
    whose new Account a duplicate rule blocked in favour of an existing Account gets no result:
    it joins that Account (`plan.account_id`) and is created as before. The new Accounts are
    remembered in their companies' claims at once."""
    org_id = client.connection.org_id
    subrequests: list[dict[str, Any]] = []
    mapped: dict[int, SalesforceFields] = {}
    reference: dict[int, str] = {}  # id(leader) -> its new record's id, as a reference
    for n, part in enumerate(parts):
        if part.kind == "pair":
            plan = part.plans[0]
            fields_ = plan.item.fields_for(CONTACT, for_update=False)
            account = account_fields(company=plan.item.inquiry.company, schema=plan.item.schema)
            mapped[id(plan)] = dataclasses.replace(
                fields_, truncated=fields_.truncated + account.truncated
            )
            headers = plan.write_headers
            account_headers = dataclasses.replace(headers, assignment_rule=None, email=None)
            subrequests.append(
                client.create_subrequest(
                    f"account{n}", ACCOUNT, account.values, headers=account_headers
                )
            )
            subrequests.append(
                client.create_subrequest(
                    f"create{n}",
                    CONTACT,
                    {**fields_.values, "AccountId": f"@{{account{n}.id}}"},
                    headers=headers,
                )
            )
            reference[id(plan)] = f"@{{create{n}.id}}"
            continue
        operation = "create" if part.kind == "creates" else "update"
        records = []
        for index, plan in enumerate(part.plans):
            if part.kind == "follows":
                assert plan.leader is not None
                sobject, record_id = plan.leader.sobject, reference[id(plan.leader)]
            else:
                sobject, record_id = plan.sobject, plan.record_id
            fields_ = plan.item.fields_for(sobject, for_update=operation == "update")
            mapped[id(plan)] = fields_
            values = fields_.values
            if operation == "create" and plan.account_id:
                values = {**values, "AccountId": plan.account_id}
            records.append(SObjectRecord(sobject, values, record_id or None))
            if part.kind == "updates":
                reference[id(plan)] = plan.record_id  # its followers update the same record
            if operation == "create":
                many = len(part.plans) > 1
                reference[id(plan)] = (
                    f"@{{creates{n}[{index}].id}}" if many else f"@{{create{n}.id}}"
                )
        headers = part.plans[0].write_headers
        if len(records) > 1:
            subrequests.append(
                client.collection_subrequest(f"{part.kind}{n}", operation, records, headers=headers)
            )
        elif operation == "create":
            (record,) = records
            subrequests.append(
                client.create_subrequest(
                    f"create{n}", record.sobject, record.fields, headers=headers
                )
            )
        else:
            (record,) = records
            subrequests.append(
                client.update_subrequest(
                    f"update{n}", record.sobject, record.id or "", record.fields, headers=headers
                )
            )

    first: dict[int, WriteResult] = {}
    followed: dict[int, WriteResult] = {}
    try:
        answers = client.composite(subrequests, all_or_none=False)
    except SalesforceError as exc:
        for part in parts:
            target = followed if part.kind == "follows" else first
            for plan in part.plans:
                target[id(plan)] = (plan, None, exc, mapped[id(plan)])
        return first, followed

    made: dict[str, str] = {}
    position = 0
    for part in parts:
        target = followed if part.kind == "follows" else first
        if part.kind == "pair":
            plan = part.plans[0]
            account_item, contact_item = answers[position], answers[position + 1]
            position += 2
            account = save_result_from_subrequest(account_item)
            if account.success and account.id:
                plan.account_id, plan.account_created = account.id, True
                made[plan.item.account_key] = account.id
                results = [save_result_from_subrequest(contact_item)]
            else:
                error = error_from_save_result(account)
                existing = account_named_by(error)
                if existing is not None:  # a duplicate rule names the company's Account
                    plan.account_id, plan.account_created = existing, False
                    plan.create_account = False
                    made[plan.item.account_key] = existing
                else:
                    name = plan.item.account_name or plan.item.inquiry.company
                    first[id(plan)] = (plan, None, account_error(error, name), mapped[id(plan)])
                continue
        else:
            item = answers[position]
            position += 1
            try:
                if len(part.plans) > 1:
                    results = save_results_from_collection(item, len(part.plans))
                else:
                    results = [save_result_from_subrequest(item)]
            except SalesforceError as exc:
                for plan in part.plans:
                    target[id(plan)] = (plan, None, exc, mapped[id(plan)])
                continue
        for plan, result in zip(part.plans, results, strict=True):
            if result.success:
                target[id(plan)] = (plan, result.id or plan.record_id, None, mapped[id(plan)])
            else:
                target[id(plan)] = (plan, None, error_from_save_result(result), mapped[id(plan)])
    remember_accounts(org_id, made)  # one statement, right after the call
    return first, followed
