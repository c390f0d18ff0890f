"""Per-record results of writes, whichever way they were sent: sObject Collections (alone or
as a Composite subrequest), single-record Composite subrequests, SOAP; and the typed error of a
failed one. Salesforce's shapes are in SALESFORCE.md ("sObject Collections", "Composite").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from integrations.salesforce.api.errors import (
    SalesforceDuplicatesDetected,
    SalesforceError,
    SalesforceTransientError,
    duplicate_result_ids,
    duplicate_result_rule,
    error_from_code,
)
from integrations.salesforce.api.soap import SaveError, SaveResult, SObjectRecord


def save_error_from_json(error: dict[str, Any]) -> SaveError:
    code = str(error.get("statusCode") or error.get("errorCode") or "UNKNOWN")
    duplicate = error.get("duplicateResut") or error.get("duplicateResult")
    rule = duplicate_result_rule(duplicate)
    return SaveError(
        code,
        str(error.get("message", "")),
        list(error.get("fields") or []),
        duplicate_result_ids(duplicate),
        duplicate_rule=rule["duplicate_rule"],
        duplicate_allow_save=rule["allow_save"],
    )


def save_result_from_subrequest(item: dict[str, Any]) -> SaveResult:
    """The per-record result of a Composite create/update subrequest (its `compositeResponse`
    item): the new id, or the errors Salesforce gave (PROCESSING_HALTED for the subrequests an
    allOrNone rollback stopped)."""
    status = int(item.get("httpStatusCode") or 0)
    body = item.get("body")
    if 200 <= status < 300:
        record_id = body.get("id") if isinstance(body, dict) else None
        return SaveResult(record_id, True, [])
    errors = [e for e in body if isinstance(e, dict)] if isinstance(body, list) else []
    if not errors:
        errors = [{"errorCode": f"HTTP_{status}", "message": f"HTTP {status}"}]
    return SaveResult(None, False, [save_error_from_json(e) for e in errors])


def collection_body(operation: str, records: Sequence[SObjectRecord]) -> dict[str, Any]:
    """The body of an sObject Collections create or update (`allOrNone` false)."""
    payload_records = []
    for record in records:
        item: dict[str, Any] = {"attributes": {"type": record.sobject}, **record.fields}
        if operation == "update":
            item["id"] = record.id
        payload_records.append(item)
    return {"allOrNone": False, "records": payload_records}


def save_result_from_collection_item(item: dict[str, Any]) -> SaveResult:
    return SaveResult(
        item.get("id"),
        bool(item.get("success")),
        [save_error_from_json(error) for error in item.get("errors") or []],
    )


def save_results_from_collection(item: dict[str, Any], count: int) -> list[SaveResult]:
    """The per-record results of a Composite sObject Collections subrequest (its
    `compositeResponse` item) of `count` records, in their order. A subrequest refused as a
    whole (an error body) gives every record that error. An answer without one result per
    record raises SalesforceTransientError (INVALID_RESPONSE): no record can be told its own,
    and a create may have happened (the next attempt looks for it)."""
    body = item.get("body")
    status = int(item.get("httpStatusCode") or 0)
    if 200 <= status < 300:
        results = [save_result_from_collection_item(r) for r in body or [] if isinstance(r, dict)]
        if len(results) != count:
            raise SalesforceTransientError(
                "INVALID_RESPONSE",
                f"sObject Collections answered {len(results)} results for {count} records",
            )
        return results
    refused = save_result_from_subrequest(item)
    return [refused] * count


def error_from_save_result(result: SaveResult) -> SalesforceError:
    """The typed error for a failed per-record result (SOAP or sObject Collections)."""
    first = result.errors[0] if result.errors else SaveError("UNKNOWN", "Salesforce gave no reason")
    if first.status_code == "DUPLICATES_DETECTED":
        return SalesforceDuplicatesDetected(
            first.status_code,
            first.message,
            first.fields,
            match_ids=first.duplicate_match_ids,
            duplicate_rule=first.duplicate_rule,
            allow_save=first.duplicate_allow_save,
        )
    return error_from_code(first.status_code, first.message, first.fields, None)
