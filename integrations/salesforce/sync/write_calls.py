"""The write calls of a group of plans (one record type and header set): one sObject
Collections (or SOAP, or single-record) create or update, again without the fields Salesforce
refused (`degrade`); a Contact with its company's new Account; a batch's new Accounts.

See docs/architecture.md ("Writing", "Contacts and their company's Account").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from integrations.salesforce.api.client import SalesforceClient
from integrations.salesforce.api.errors import SalesforceDuplicatesDetected, SalesforceError
from integrations.salesforce.api.results import (
    error_from_save_result,
    save_result_from_subrequest,
)
from integrations.salesforce.api.soap import SObjectRecord
from integrations.salesforce.sync.claims import remember_account, remember_accounts
from integrations.salesforce.sync.degrade import WriteResult, write_degrading
from integrations.salesforce.sync.items import PlannedWrite
from integrations.salesforce.sync.mapping import (
    ACCOUNT,
    CONTACT,
    SalesforceFields,
    account_fields,
)
from integrations.salesforce.sync.matching import ACCOUNT_ID_PREFIX


def plan_groups(plans: Sequence[PlannedWrite]) -> dict[tuple[str, str], list[PlannedWrite]]:
    """Plans that can share one write call: same record type and same headers."""
    groups: dict[tuple[str, str], list[PlannedWrite]] = {}
    for plan in plans:
        key = (plan.sobject, plan.write_headers.to_option_string())
        groups.setdefault(key, []).append(plan)
    return groups


def write_group(
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


def write_once(
    client: SalesforceClient, operation: str, plans: Sequence[PlannedWrite]
) -> list[WriteResult]:
    """One write of `plans` (one group): a Contact create that needs its company's new Account
    goes with it (`_create_with_account`), the others in one call (`write_group`)."""
    if operation == "create" and len(plans) == 1 and plans[0].create_account:
        plan = plans[0]
        if not plan.account_id:
            return [_create_with_account(client, plan)]
        # The Account exists since an earlier round (SOAP): the Contact alone, joining it.
        plan.create_account = False
    return write_group(client, operation, plans)


def write_with_degrade(
    client: SalesforceClient,
    operation: str,
    plans: Sequence[PlannedWrite],
    first: Sequence[WriteResult] | None = None,
) -> list[WriteResult]:
    """`write_once`, and again without the fields Salesforce refused (`degrade`). `first`: the
    plans' first write was already made, in the batch's one Composite call (`write_together`);
    only the rounds again are left."""
    return write_degrading(
        client, operation, plans, write_once=write_once, group=plan_groups, first=first
    )


def account_error(error: SalesforceError, name: str) -> SalesforceError:
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
    error, fields) like `write_group`, with `plan.account_id` set once the Account exists.

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
            existing = account_named_by(error)
            if existing is None:
                return plan, None, account_error(error, name), merged
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


def create_accounts(
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
            existing = account_named_by(error)
            if existing is not None:  # a duplicate rule names the company's Account
                plan.account_id, plan.account_created = existing, False
                made[plan.item.account_key] = existing
                continue
            mapped = plan.item.fields_for(CONTACT, for_update=False)
            refused.append((plan, None, account_error(error, account.values["Name"]), mapped))
        remember_accounts(org_id, made)  # one statement, right after the call
    return refused


def account_named_by(error: SalesforceError) -> str | None:
    """The existing Account a duplicate rule matched when it blocked our Account, if any."""
    if isinstance(error, SalesforceDuplicatesDetected):
        for record_id in error.match_ids:
            if record_id.startswith(ACCOUNT_ID_PREFIX):
                return record_id
    return None


def _halted(result: Any) -> bool:
    return bool(result.errors) and all(e.status_code == "PROCESSING_HALTED" for e in result.errors)
