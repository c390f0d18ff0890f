"""Writing the plans to Salesforce: a batch's first writes in one Composite call (else one call
per group of creates and of updates), every item with its own outcome; Contacts with their
company's Account; followers; converted and deleted records.

See docs/architecture.md ("Writing").
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from simple_salesforce.format import format_soql

from integrations.salesforce.api.client import (
    MAX_COMPOSITE_COLLECTIONS,
    MAX_COMPOSITE_SUBREQUESTS,
    SalesforceClient,
    error_from_save_result,
    save_result_from_subrequest,
    save_results_from_collection,
)
from integrations.salesforce.api.errors import (
    SalesforceDuplicatesDetected,
    SalesforceError,
    SalesforceTransientError,
)
from integrations.salesforce.api.headers import SoapHeaders
from integrations.salesforce.api.soap import SObjectRecord
from integrations.salesforce.models import (
    InquirySync,
    SalesforcePerson,
    SyncStatus,
)
from integrations.salesforce.sync.claims import (
    mark_pending_create,
    release_claims,
    remember_account,
    remember_accounts,
)
from integrations.salesforce.sync.degrade import WriteResult, write_degrading
from integrations.salesforce.sync.duplicates import (
    blocked_error,
    duplicate_detail,
    resolve_duplicate,
)
from integrations.salesforce.sync.items import (
    LINK_CREATED,
    LINK_MATCHED,
    LINK_SKIPPED,
    PersonBusy,
    PlannedWrite,
    WriteOutcome,
)
from integrations.salesforce.sync.mapping import (
    ACCOUNT,
    CONTACT,
    LEAD,
    SalesforceFields,
    account_fields,
)
from integrations.salesforce.sync.matching import (
    ACCOUNT_ID_PREFIX,
    Match,
)
from integrations.salesforce.sync.scheduling import LOCK_BUSY_RETRY_SECONDS

logger = logging.getLogger(__name__)

# Errors of an update that mean the linked record is gone from Salesforce.
_RECORD_GONE = frozenset({"ENTITY_IS_DELETED", "NOT_FOUND", "INVALID_CROSS_REFERENCE_KEY"})


def _created(plan: PlannedWrite, record_id: str, detail: dict[str, Any]) -> WriteOutcome:
    """The outcome of a create Salesforce accepted (first try, or again under the allow-save
    header): the record is the inquiry's own."""
    return WriteOutcome(
        plan.item, SyncStatus.CREATED, plan.sobject, record_id, LINK_CREATED, detail=detail
    )


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


def _write_once(
    client: SalesforceClient, operation: str, plans: Sequence[PlannedWrite]
) -> list[WriteResult]:
    """One write of `plans` (one group): a Contact create that needs its company's new Account
    goes with it (`_create_with_account`), the others in one call (`_write_group`)."""
    if operation == "create" and len(plans) == 1 and plans[0].create_account:
        plan = plans[0]
        if not plan.account_id:
            return [_create_with_account(client, plan)]
        # The Account exists since an earlier round (SOAP): the Contact alone, joining it.
        plan.create_account = False
    return _write_group(client, operation, plans)


def _write_degrading(
    client: SalesforceClient, operation: str, plans: Sequence[PlannedWrite]
) -> list[WriteResult]:
    """`_write_once`, and again without the fields Salesforce refused (`degrade`)."""
    return write_degrading(client, operation, plans, write_once=_write_once, group=_group)


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
                remember_account(org_id, item.account_key, account_result.id)
        if not plan.account_id:
            # Salesforce refused the Account. A duplicate rule that blocks it names the
            # company's Account under another spelling ("Acme, Inc." for "ACME", which the
            # look-up by Name cannot find): the Contact joins that Account, one call more.
            error = error_from_save_result(account_result)
            existing = _account_named_by(error)
            if existing is None:
                return plan, None, _account_error(error, name), merged
            plan.account_id, plan.account_created = existing, False
            remember_account(org_id, item.account_key, existing)
        (contact_result,) = client.create_many(
            [SObjectRecord(CONTACT, {**mapped.values, "AccountId": plan.account_id})],
            headers=headers,
        )
    except SalesforceError as exc:
        return plan, None, exc, merged
    if contact_result.success and contact_result.id:
        return plan, contact_result.id, None, merged
    return plan, None, error_from_save_result(contact_result), merged


def _create_accounts(
    client: SalesforceClient, plans: Sequence[PlannedWrite]
) -> list[tuple[PlannedWrite, str | None, SalesforceError | None, SalesforceFields]]:
    """The new Accounts of a batch's Contacts in one create call per header set (sObject
    Collections, `allOrNone` false, up to 200), each remembered in its company's claim at once;
    sets `plan.account_id` on the plans whose Account exists now. Returns the outcomes of the
    plans whose Account was refused (they are not created).

    Unlike a lone Contact's allOrNone Composite call, a Contact refused after this leaves its
    Account; the company's claim points at it, so the next attempt joins it (as on the SOAP
    path). One call for all Accounts instead of one Composite call per Contact.
    """
    org_id = client.connection.org_id
    refused: list[tuple[PlannedWrite, str | None, SalesforceError | None, SalesforceFields]] = []
    groups: dict[str, list[PlannedWrite]] = {}
    for plan in plans:
        headers = dataclasses.replace(plan.item.headers, assignment_rule=None, email=None)
        groups.setdefault(headers.to_option_string(), []).append(plan)
    for group in groups.values():
        headers = dataclasses.replace(group[0].item.headers, assignment_rule=None, email=None)
        accounts = [account_fields(company=p.item.inquiry.company) for p in group]
        try:
            results = client.create_many(
                [SObjectRecord(ACCOUNT, a.values) for a in accounts], headers=headers
            )
        except SalesforceError as exc:
            refused.extend(
                (p, None, exc, p.item.fields_for(CONTACT, for_update=False)) for p in group
            )
            continue
        made: dict[str, str] = {}
        for plan, account, result in zip(group, accounts, results, strict=True):
            if result.success and result.id:
                plan.account_id, plan.account_created = result.id, True
                made[plan.item.account_key] = result.id
                continue
            error = error_from_save_result(result)
            existing = _account_named_by(error)
            if existing is not None:  # a duplicate rule names the company's Account
                plan.account_id, plan.account_created = existing, False
                made[plan.item.account_key] = existing
                continue
            mapped = plan.item.fields_for(CONTACT, for_update=False)
            refused.append((plan, None, _account_error(error, account.values["Name"]), mapped))
        remember_accounts(org_id, made)  # one statement, right after the call
    return refused


# --------------------------------------------------------------------------- one call for all


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


def _together_parts(
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
    separate = (
        len(_group(plain))
        + (2 if len(pairs) > 1 else len(pairs))
        + len({key for p in [*ups, *followers] for key in _group([p])})
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
    for group in [*_group(plain).values(), *_group(ups).values()]:
        add(_Part("creates" if group[0].action == "create" else "updates", group))
    for plan in pairs:
        add(_Part("pair", [plan]), reserve=1 if followers else 0)
    included = {id(p) for part in parts for p in part.plans if part.kind != "updates"}
    led = [f for f in followers if f.leader is not None and id(f.leader) in included]
    # One group per rank (a record's second follower is updated after its first, and no
    # collection carries one record twice) and per the followers' headers and record type.
    for rank in sorted({f.follow_rank for f in led}):
        for group in _group([f for f in led if f.follow_rank == rank]).values():
            add(_Part("follows", group))
    return parts if sum(len(part.plans) for part in parts) > 1 else []


def _write_together(
    client: SalesforceClient, parts: Sequence[_Part]
) -> tuple[dict[int, WriteResult], dict[int, WriteResult]]:
    """Make the first writes of `parts` in ONE Composite call (allOrNone false: one refused
    record fails alone). Returns the first write's result per plan (`id(plan)`), like
    `_write_group`'s, and per follower.

    A follower's record id is a reference to its leader's result (`@{creates0[3].id}`, or
    `@{create2.id}` for a single create): if the leader's create failed, or a reference cannot
    be resolved, the follower's subrequest fails as a whole and each follower then waits or is
    updated as before (`write_plan`), so no record is written twice and none is lost. A Contact
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
                existing = _account_named_by(error)
                if existing is not None:  # a duplicate rule names the company's Account
                    plan.account_id, plan.account_created = existing, False
                    plan.create_account = False
                    made[plan.item.account_key] = existing
                else:
                    name = plan.item.account_name or plan.item.inquiry.company
                    first[id(plan)] = (plan, None, _account_error(error, name), mapped[id(plan)])
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


def _account_named_by(error: SalesforceError) -> str | None:
    """The existing Account a duplicate rule matched when it blocked our Account, if any."""
    if isinstance(error, SalesforceDuplicatesDetected):
        for record_id in error.match_ids:
            if record_id.startswith(ACCOUNT_ID_PREFIX):
                return record_id
    return None


def _halted(result: Any) -> bool:
    return bool(result.errors) and all(e.status_code == "PROCESSING_HALTED" for e in result.errors)


def _converted_contact_id(client: SalesforceClient, lead_id: str) -> str:
    records = client.query(
        format_soql("SELECT ConvertedContactId FROM Lead WHERE Id = {} LIMIT 1", lead_id)
    )
    return (records[0].get("ConvertedContactId") or "") if records else ""


def write_plan(*, client: SalesforceClient, plans: Sequence[PlannedWrite]) -> list[WriteOutcome]:
    """Carry out the plans: the first writes together in one Composite call where that saves
    calls (`_together_parts`), the rest (SOAP, what did not fit, what is written again) in one
    sObject Collections (or SOAP) call per group of creates and of updates, a single
    create/update for one record. Never raises a SalesforceError: every item gets its own
    outcome."""
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
                retry_in=LOCK_BUSY_RETRY_SECONDS if plan.retry_in is None else plan.retry_in,
                error=PersonBusy("PERSON_BUSY", "Another sync is creating this person's record."),
            )

    creates = [p for p in plans if p.action == "create"]
    updates = [p for p in plans if p.action == "update"]
    follow_up: list[PlannedWrite] = []

    if creates:
        # Map first: the pending-create mark says the create is on its way, so nothing slow (the
        # first use of the email and phone checks in a fresh worker) may stand between the mark
        # and the call; a worker killed in that gap would leave a mark for a create never sent.
        for plan in creates:
            plan.item.fields_for(plan.sobject, for_update=False)
        mark_pending_create(creates)
    created: list[tuple[PlannedWrite, str | None, SalesforceError | None, SalesforceFields]] = []
    # The batch's first writes together in one Composite call where that saves calls; what
    # Salesforce refuses in it is written again as before (`degrade`, duplicate rules).
    follows = [p for p in plans if p.action == "follow"]
    first, followed = (
        _write_together(client, parts)
        if (parts := _together_parts(creates, updates, follows))
        else ({}, {})
    )
    together = [p for p in creates if id(p) in first]
    if together:
        created.extend(
            write_degrading(
                client,
                "create",
                together,
                write_once=_write_once,
                group=_group,
                first=[first[id(p)] for p in together],
            )
        )
    with_account = [p for p in creates if p.create_account and id(p) not in first]
    alone = [p for p in creates if not p.create_account and id(p) not in first]
    if len(with_account) > 1:
        # A batch: the new Accounts in one call, then their Contacts with the other creates.
        refused = _create_accounts(client, with_account)
        created.extend(refused)
        done = {id(plan) for plan, *_ in refused}
        alone.extend(p for p in with_account if id(p) not in done)
        with_account = []
    for group in _group(alone).values():
        created.extend(_write_degrading(client, "create", group))
    for plan in with_account:
        created.extend(_write_degrading(client, "create", [plan]))
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
            outcomes[index] = _created(plan, record_id, detail)
            continue
        status = ""
        if isinstance(error, SalesforceDuplicatesDetected) and not plan.allow_duplicate:
            # A duplicate rule named existing records: the match only when one of them is the
            # same person (`matching`, rule 6); else create anyway or stop, as the rule says.
            try:
                resolution = resolve_duplicate(client, plan, error)
            except SalesforceError as exc:
                resolution, error = None, exc
            if isinstance(resolution, PlannedWrite):
                # An "Allow" rule flagged someone else: create with the allow-save header.
                flagged = error
                retry, record_id, error, mapped = _write_degrading(client, "create", [resolution])[
                    0
                ]
                detail["truncated"] = mapped.truncation_detail()
                detail["left_out"] = mapped.left_out_detail()
                detail["duplicate"] = duplicate_detail(flagged, saved_anyway=True)
                if retry.account_id:
                    detail["account"] = {"id": retry.account_id, "created": retry.account_created}
                if error is None and record_id:
                    outcomes[index] = _created(plan, record_id, detail)
                    continue
            elif resolution == "blocked":
                status = SyncStatus.BLOCKED_DUPLICATE
                detail["duplicate"] = duplicate_detail(error, saved_anyway=False)
                error = blocked_error(error)
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
            release_claims(client.connection.org_id, claims)
            plan.item.sync.detail.pop("pending_create", None)
            InquirySync.objects.filter(pk=plan.item.sync.pk).update(detail=plan.item.sync.detail)

    # The same person's second inquiry of this batch: it updates the record its leader just
    # created, with the other updates (no extra call); if that create did not happen, it waits
    # for a later pass, as it did before it could follow.
    resent: set[int] = set()  # leaders one of whose followers is sent again below
    for index, plan in enumerate(plans):
        if plan.action != "follow":
            continue
        made = outcomes.get(index_of[id(plan.leader)]) if plan.leader is not None else None
        busy = WriteOutcome(
            plan.item,
            SyncStatus.RETRYING,
            retry_in=LOCK_BUSY_RETRY_SECONDS if plan.retry_in is None else plan.retry_in,
            error=PersonBusy("PERSON_BUSY", "Another sync is creating this person's record."),
        )
        if made is None or made.status != SyncStatus.CREATED or not made.record_id:
            outcomes[index] = busy
            continue
        match = Match(made.sobject, made.record_id, "claimed")
        sent = followed.get(id(plan))
        if sent is not None and sent[2] is None:  # updated in the batch's one call
            _follower, _record_id, _error, mapped = sent
            outcomes[index] = WriteOutcome(
                plan.item,
                SyncStatus.UPDATED,
                made.sobject,
                made.record_id,
                LINK_MATCHED,
                detail={
                    "action": "update",
                    "api": _api_of(plan.item.headers),
                    "truncated": mapped.truncation_detail(),
                    "left_out": mapped.left_out_detail(),
                    "match": match.as_detail(),
                },
            )
            continue
        if plan.item.settings.only_new_leads:
            outcomes[index] = WriteOutcome(
                plan.item,
                SyncStatus.SKIPPED_EXISTING,
                made.sobject,
                made.record_id,
                LINK_SKIPPED,
                detail={"action": "skip", "match": match.as_detail()},
            )
            continue
        if id(plan.leader) in resent:  # one update of a record per write call
            outcomes[index] = busy
            continue
        resent.add(id(plan.leader))
        follow = PlannedWrite(
            plan.item, "update", made.sobject, made.record_id, match, link=LINK_MATCHED
        )
        index_of[id(follow)] = index
        follow_up.append(follow)

    def run_updates(batch: Sequence[PlannedWrite]) -> list[PlannedWrite]:
        again: list[PlannedWrite] = []
        for group in _group(batch).values():
            sent = [p for p in group if id(p) in first]  # first written in the one call
            written = (
                write_degrading(
                    client,
                    "update",
                    sent,
                    write_once=_write_once,
                    group=_group,
                    first=[first[id(p)] for p in sent],
                )
                if sent
                else []
            )
            unsent = [p for p in group if id(p) not in first]
            if unsent:
                written.extend(_write_degrading(client, "update", unsent))
            for plan, _record_id, error, mapped in written:
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
