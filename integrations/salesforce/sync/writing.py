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
    SalesforceClient,
)
from integrations.salesforce.api.errors import (
    SalesforceDuplicatesDetected,
    SalesforceError,
    SalesforceTransientError,
)
from integrations.salesforce.api.headers import SoapHeaders
from integrations.salesforce.models import (
    InquirySync,
    SalesforcePerson,
    SyncStatus,
)
from integrations.salesforce.sync.claims import (
    mark_pending_create,
    release_claims,
)
from integrations.salesforce.sync.degrade import WriteResult
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
    CONTACT,
    LEAD,
    SalesforceFields,
)
from integrations.salesforce.sync.matching import (
    Match,
)
from integrations.salesforce.sync.scheduling import LOCK_BUSY_RETRY_SECONDS
from integrations.salesforce.sync.write_calls import (
    create_accounts,
    plan_groups,
    write_with_degrade,
)
from integrations.salesforce.sync.write_together import (
    accounts_first_when_crowded,
    together_parts,
    write_together,
)

logger = logging.getLogger(__name__)

# Errors of an update that mean the linked record is gone from Salesforce.
_RECORD_GONE = frozenset({"ENTITY_IS_DELETED", "NOT_FOUND", "INVALID_CROSS_REFERENCE_KEY"})


def _created(plan: PlannedWrite, record_id: str, detail: dict[str, Any]) -> WriteOutcome:
    """The outcome of a create Salesforce accepted (first try, or again under the allow-save
    header): the record is the inquiry's own."""
    return WriteOutcome(
        plan.item, SyncStatus.CREATED, plan.sobject, record_id, LINK_CREATED, detail=detail
    )


def _update_follower_outcome(plan: PlannedWrite, sent: WriteResult | None) -> WriteOutcome:
    """A later inquiry's update of a record its batch updates first (`planning`'s one update
    per record): written after the first in the batch's one call, or, when it was not in that
    call or failed there, back in a moment on its own (its own error, if any, is then
    recorded by that pass)."""
    if sent is not None and sent[2] is None:
        mapped = sent[3]
        lost_create = plan.match is not None and plan.match.reason == "lost_create"
        return WriteOutcome(
            plan.item,
            SyncStatus.CREATED if lost_create else SyncStatus.UPDATED,
            plan.sobject,
            plan.record_id,
            plan.link,
            detail=_update_detail(plan, mapped, plan.match),
        )
    return WriteOutcome(
        plan.item,
        SyncStatus.RETRYING,
        retry_in=LOCK_BUSY_RETRY_SECONDS if plan.retry_in is None else plan.retry_in,
        error=PersonBusy("PERSON_BUSY", plan.busy_message or "Another sync holds this person."),
    )


def _update_detail(
    plan: PlannedWrite, mapped: SalesforceFields, match: Match | None
) -> dict[str, Any]:
    """The stored detail of an update: the API used, what was truncated or left out, and the
    match that chose the record."""
    return {
        "action": "update",
        "api": _api_of(plan.item.headers),
        "truncated": mapped.truncation_detail(),
        "left_out": mapped.left_out_detail(),
        "match": match.as_detail() if match else {},
    }


def _api_of(headers: SoapHeaders) -> str:
    return "soap" if headers.needs_soap else "rest"


def _converted_contact_id(client: SalesforceClient, lead_id: str) -> str:
    records = client.query(
        format_soql("SELECT ConvertedContactId FROM Lead WHERE Id = {} LIMIT 1", lead_id)
    )
    return (records[0].get("ConvertedContactId") or "") if records else ""


def write_plan(*, client: SalesforceClient, plans: Sequence[PlannedWrite]) -> list[WriteOutcome]:
    """Carry out the plans: the first writes together in one Composite call where that saves
    calls (`together_parts`), the rest (SOAP, what did not fit, what is written again) in one
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
                error=PersonBusy(
                    "PERSON_BUSY",
                    plan.busy_message or "Another sync is creating this person's record.",
                ),
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
    created.extend(accounts_first_when_crowded(client, creates, updates, follows))
    if created:
        refused = {id(plan) for plan, *_ in created}
        creates = [p for p in creates if id(p) not in refused]
    first, followed = (
        write_together(client, parts)
        if (parts := together_parts(creates, updates, follows))
        else ({}, {})
    )
    together = [p for p in creates if id(p) in first]
    if together:
        created.extend(
            write_with_degrade(client, "create", together, [first[id(p)] for p in together])
        )
    with_account = [p for p in creates if p.create_account and id(p) not in first]
    alone = [p for p in creates if not p.create_account and id(p) not in first]
    if len(with_account) > 1:
        # A batch: the new Accounts in one call, then their Contacts with the other creates.
        refused = create_accounts(client, with_account)
        created.extend(refused)
        done = {id(plan) for plan, *_ in refused}
        alone.extend(p for p in with_account if id(p) not in done)
        with_account = []
    for group in plan_groups(alone).values():
        created.extend(write_with_degrade(client, "create", group))
    for plan in with_account:
        created.extend(write_with_degrade(client, "create", [plan]))
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
                retry, record_id, error, mapped = write_with_degrade(
                    client, "create", [resolution]
                )[0]
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
        if plan.leader is not None and plan.leader.action == "update":
            outcomes[index] = _update_follower_outcome(plan, followed.get(id(plan)))
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
                detail=_update_detail(plan, mapped, match),
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
        for group in plan_groups(batch).values():
            sent = [p for p in group if id(p) in first]  # first written in the one call
            written = (
                write_with_degrade(client, "update", sent, [first[id(p)] for p in sent])
                if sent
                else []
            )
            unsent = [p for p in group if id(p) not in first]
            if unsent:
                written.extend(write_with_degrade(client, "update", unsent))
            for plan, _record_id, error, mapped in written:
                index = index_of[id(plan)]
                detail = _update_detail(plan, mapped, plan.match)
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
