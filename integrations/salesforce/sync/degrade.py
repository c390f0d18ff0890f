"""Degrade per field, never per record: which fields to leave out when Salesforce refuses one.

The mapping already leaves out what it can tell the org refuses (an email Salesforce's rules
reject, a state the org's picklist lacks, a value a restricted picklist does not list). The org
can still refuse a field we could not foresee: an EAI-less org and a non-ASCII email, a picklist
changed since we read the schema, a length counted otherwise. For these codes the record is
written again without the fields Salesforce named (`refused_fields`), and `detail["left_out"]`
says what was left out and why, in plain words and never with the value:

* INVALID_EMAIL_ADDRESS (fields: Email);
* FIELD_INTEGRITY_EXCEPTION on an address field (State/Country and their code fields, Mailing…
  on Contacts): the State and Country/Territory picklists refused the state or the country; a
  refused country takes the state with it (a state needs its country);
* INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST (the picklist field);
* STRING_TOO_LONG (the field).

Any other refusal fails the record as before (Salesforce's code and message, Retry). Each write
is retried at most `MAX_FIELD_ROUNDS` times, so a record never loops.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from integrations.salesforce.api.client import SalesforceClient
from integrations.salesforce.api.errors import SalesforceError, SalesforceValidationError
from integrations.salesforce.sync.items import PlannedWrite
from integrations.salesforce.sync.mapping import LeftOut, SalesforceFields
from integrations.salesforce.sync.org_schema import SCHEMA_ERRORS, org_schema_mark_stale

WriteResult = tuple[PlannedWrite, str | None, SalesforceError | None, SalesforceFields]

#: Writes of one record after the first, each without the fields refused so far.
MAX_FIELD_ROUNDS = 3

_ADDRESS_PARTS = ("State", "Country", "StateCode", "CountryCode")
_PREFIXES = ("", "Mailing")

_REASONS = {
    "INVALID_EMAIL_ADDRESS": "Salesforce refused the email address as invalid for your org, so "
    "the record was saved without it.",
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": "The value is not one of your org's {field} "
    "picklist values, so the record was saved without it.",
    "STRING_TOO_LONG": "The value is longer than your org allows for {field}, so the record was "
    "saved without it.",
}
_ADDRESS_REASON = (
    "Your org's State and Country/Territory picklists did not accept the {part}, so the record "
    "was saved without it."
)


def _address_field(name: str) -> tuple[str, str] | None:
    """(prefix, part) of an address field name (`MailingStateCode` → ("Mailing", "StateCode"))."""
    for prefix in _PREFIXES:
        for part in _ADDRESS_PARTS:
            if name == prefix + part:
                return prefix, part
    return None


def refused_fields(error: SalesforceError | None, sent: Iterable[str]) -> dict[str, LeftOut]:
    """The fields of `sent` to leave out after `error`, each with why; empty when the error is
    not about single fields we sent (the record then fails as a whole)."""
    if not isinstance(error, SalesforceValidationError):
        return {}
    sent = set(sent)
    code = error.error_code
    named = [name for name in error.fields if name in sent]
    if code == "INVALID_EMAIL_ADDRESS" and not error.fields and "Email" in sent:
        named = ["Email"]  # a refusal that names no field: Email is the one email we send
    if code == "FIELD_INTEGRITY_EXCEPTION":
        return _address_refusal(error, sent)
    if code not in _REASONS or not named:
        return {}
    return {name: LeftOut(name, code, _REASONS[code].format(field=name)) for name in named}


def _address_refusal(error: SalesforceError, sent: set[str]) -> dict[str, LeftOut]:
    """The address fields a FIELD_INTEGRITY_EXCEPTION refused: the fields it names, else those
    its message speaks of ("There's a problem with this state…", "A country/territory must be
    specified…"). A country takes the state with it."""
    named = [_address_field(name) for name in error.fields]
    parts: set[tuple[str, str]] = {found for found in named if found}
    if not parts and not error.fields:
        text = error.message.casefold()
        for prefix in _PREFIXES:
            if "country" in text:
                parts.add((prefix, "Country"))
            if "state" in text:
                parts.add((prefix, "State"))
    refused: dict[str, LeftOut] = {}
    for prefix, part in parts:
        kinds = ["state"] if part.startswith("State") else ["country", "state"]
        for kind in kinds:
            noun = "state" if kind == "state" else "country/territory"
            for suffix in ("", "Code"):
                name = f"{prefix}{kind.capitalize()}{suffix}"
                if name in sent:
                    reason = _ADDRESS_REASON.format(part=noun)
                    refused[name] = LeftOut(name, "FIELD_INTEGRITY_EXCEPTION", reason)
    return refused


def write_degrading(
    client: SalesforceClient,
    operation: str,
    plans: Sequence[PlannedWrite],
    *,
    write_once: Callable[[SalesforceClient, str, Sequence[PlannedWrite]], list[WriteResult]],
    group: Callable[[Sequence[PlannedWrite]], dict[tuple[str, str], list[PlannedWrite]]],
    first: Sequence[WriteResult] | None = None,
) -> list[WriteResult]:
    """Write `plans` with `write_once` (the writing step's one call) and, when Salesforce refuses
    single fields of a record, write that record again without them, up to MAX_FIELD_ROUNDS
    times (`group` regroups the records to write again). `first`: the plans' first write was
    already made (in a Composite call with other writes); only the rounds again are left. A
    refusal that says our copy of the org's schema is out of date marks it stale for the next
    sync."""
    results = list(first) if first is not None else write_once(client, operation, plans)
    for _round in range(MAX_FIELD_ROUNDS):
        again: list[PlannedWrite] = []
        for plan, _record_id, error, mapped in results:
            if error is not None and (
                error.error_code in SCHEMA_ERRORS or error.error_code == "FIELD_INTEGRITY_EXCEPTION"
            ):
                org_schema_mark_stale(connection=client.connection)
            refused = refused_fields(error, mapped.values)
            if refused and not refused.keys() <= plan.item.refused.keys():
                plan.item.refused.update(refused)
                again.append(plan)
        if not again:
            break
        redone: dict[int, WriteResult] = {}
        for plans_of_group in group(again).values():
            # A Contact with its company's Account is its own call; the others share one.
            batches = [[p] for p in plans_of_group if p.create_account]
            batches.append([p for p in plans_of_group if not p.create_account])
            for batch in filter(None, batches):
                redone.update((id(r[0]), r) for r in write_once(client, operation, batch))
        results = [redone.get(id(r[0]), r) for r in results]
    return results
