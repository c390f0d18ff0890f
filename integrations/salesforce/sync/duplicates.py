"""What to do when the org's duplicate rule refuses our create: read the records it names and
judge them by the identity rules, then update the person's own record, create anyway with the
allow-save header, or stop as *Blocked by your Salesforce duplicate rule*.

The rules themselves are written in one place: `matching`'s docstring (rule 6) and README.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from simple_salesforce.format import format_soql

from integrations.salesforce.api.client import SalesforceClient
from integrations.salesforce.api.errors import (
    SalesforceDuplicatesDetected,
)
from integrations.salesforce.sync.items import PlannedWrite
from integrations.salesforce.sync.matching import (
    QUERY_FIELDS,
    Candidate,
    Match,
    MatchRequest,
    MatchResult,
    candidate_from_record,
    choose_match,
    raise_subrequest_error,
    sobject_of_id,
)


def named_records_soql(sobject: str, record_ids: Sequence[str]) -> str:
    """One SOQL query that reads the records a duplicate rule named (their emails and phones)."""
    return format_soql(
        f"SELECT {', '.join(QUERY_FIELDS[sobject])} FROM {sobject} WHERE Id IN {{}}",  # noqa: S608
        sorted(record_ids),
    )


def identify_named_records(
    *, client: SalesforceClient, request: MatchRequest, record_ids: Sequence[str]
) -> MatchResult:
    """Which of the Leads and Contacts a duplicate rule named (`record_ids`) is `request`'s
    person, by the rules of the module docstring (rule 6): the records are read in ONE Composite
    call (a query per record type) and judged like look-up candidates. `match` is None when none
    of them is the same person; other ids (Accounts) are ignored."""
    by_sobject: dict[str, list[str]] = {}
    for record_id in record_ids:
        sobject = sobject_of_id(record_id)
        if sobject and record_id not in by_sobject.get(sobject, []):
            by_sobject.setdefault(sobject, []).append(record_id)
    if not by_sobject or not request.has_keys:
        return MatchResult(request=request, match=None)
    batch = sorted(by_sobject.items())
    subrequests = [
        client.query_subrequest(f"named{index}", named_records_soql(sobject, ids))
        for index, (sobject, ids) in enumerate(batch)
    ]
    results = client.composite(subrequests)
    candidates: list[Candidate] = []
    for item in results:
        if int(item.get("httpStatusCode") or 0) >= 300:
            raise_subrequest_error(item)
        records = (item.get("body") or {}).get("records") or []
        candidates.extend(candidate_from_record(r) for r in records)
    return choose_match(request, candidates)


def resolve_duplicate(
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


def duplicate_detail(error: SalesforceDuplicatesDetected, *, saved_anyway: bool) -> dict[str, Any]:
    """What the rule said, for the attempt's detail and the card: the rule's API name, the
    records it named (ids only: never another person's data) and whether we saved anyway."""
    return {
        "rule": error.duplicate_rule,
        "records": [i for i in error.match_ids if sobject_of_id(i)],
        "saved_anyway": saved_anyway,
    }


def blocked_error(error: SalesforceDuplicatesDetected) -> SalesforceDuplicatesDetected:
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
