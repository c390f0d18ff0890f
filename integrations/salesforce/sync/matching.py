"""Finding the Salesforce record an inquiry belongs to: one record per person.

**Identity: an email is a person's identity, and we never overwrite another person's.** These are
the rules, in one place (README's "Matching" section says the same in plain words):

1. An inquiry already linked to a record in this org always updates that record, whatever the
   record type setting says now: no look-up at all (this is `sync`'s job; `match_inquiries`
   simply passes linked requests through).
2. Otherwise the person is looked up in Salesforce on email (case-insensitive) and on phone,
   among both Contacts and Leads.
3. **Same person** (`is_same_person`): a record is the inquiry's person when its email is the
   inquiry's email, or when its phone is the inquiry's phone and it has no email or the inquiry
   has none. A record found **by phone alone whose email is another, non-empty one** belongs to
   someone else who shares the line (a household, an office): it is not a match, and the
   inquiry gets a record of its own.
4. A converted Lead is never the match: the Contact it was converted into is (ConvertedContactId).
5. Several records found → one deterministic choice, the first by:
   a. an email match before a phone match (an email address is personal; a phone number may be a
      shared office or household line);
   b. a Contact before a Lead, so a customer who is already a Contact never gets a new Lead;
   c. the most recently modified (LastModifiedDate), the record people are working on;
   d. the lowest Id, so the choice is stable when everything else is equal.
6. **Duplicate rules.** When the org's duplicate rule refuses a create (DUPLICATES_DETECTED) and
   names records, those records are read (`duplicates.identify_named_records`, one call) and
   judged by rules 3-5. A named record that is the same person is the match (updated, or left
   alone with *Create only for new leads*). Otherwise the rule matched someone else (same name and
   company, say), and nothing is written to that record:
   - a rule that allows saving (`allowSave: true`, an "Allow" rule with an alert) → the record is
     created anyway with the duplicate-rule header (REST `Sforce-Duplicate-Rule-Header:
     allowSave=true`, SOAP `DuplicateRuleHeader`);
   - a rule that blocks → the sync stops with *Blocked by your Salesforce duplicate rule*, naming
     the rule and the records; it is not retried by itself (the org's rule would block it again),
     and a person can press Retry once the org's data or rule changed.

How the look-up is done, and why (one Composite call, SOQL LIKE on phone digits, not SOSL;
batching; Accounts in the same call): docs/architecture.md, "How the look-up is done".
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from simple_salesforce.format import format_soql

from integrations.salesforce.api.client import SalesforceClient
from integrations.salesforce.api.errors import error_from_code
from integrations.salesforce.sync.mapping import CONTACT, LEAD

# 100 people per query: 20 rows each fill one 2,000-row answer page exactly, and their emails and
# phone patterns (about 150 characters a person) stay within MAX_SOQL_CHARS, so a drain of 200
# is looked up in ONE Composite call (two queries per object plus the Account query).
PERSONS_PER_QUERY = 100
# A look-up query's length budget (characters of SOQL), well under Salesforce's 100,000.
MAX_SOQL_CHARS = 20_000
QUERIES_PER_COMPOSITE = 4
# Companies per Account query, and the rows it may return (oldest first).
ACCOUNT_NAMES_PER_QUERY = 50
ACCOUNT_ROWS = 200
# SalesforcePerson.match_key's length.
MAX_KEY_LENGTH = 300
# More rows than one person plausibly has; a LIKE pattern's false positives are filtered later.
ROWS_PER_PERSON = 20

PHONE_FIELDS: dict[str, tuple[str, ...]] = {
    LEAD: ("Phone", "MobilePhone"),
    CONTACT: ("Phone", "MobilePhone", "HomePhone"),
}
QUERY_FIELDS: dict[str, tuple[str, ...]] = {
    LEAD: ("Id", "Email", *PHONE_FIELDS[LEAD], "IsConverted", "ConvertedContactId",
           "LastModifiedDate", "CreatedDate"),
    CONTACT: ("Id", "Email", *PHONE_FIELDS[CONTACT], "LastModifiedDate", "CreatedDate"),
}  # fmt: skip

# The Id key prefixes of the two record types (Lead 00Q, Contact 003), and of Accounts.
_ID_PREFIXES = {"00Q": LEAD, "003": CONTACT}
ACCOUNT_ID_PREFIX = "001"


# --------------------------------------------------------------------------- normalising


def normalize_email(email: str) -> str:
    """The email as a match key: trimmed and lower-cased (Salesforce compares emails
    case-insensitively)."""
    return email.strip().lower()


@functools.lru_cache(maxsize=65536)
def normalize_phone(raw: str, *, region: str) -> str | None:
    """The number in E.164 (`+14155551212`), reading numbers without a country code as numbers
    of `region`; None when it is not a possible phone number.

    "Possible" rather than "valid": `phonenumbers`' validity metadata rejects some real numbers
    (new ranges, test exchanges such as 555), and a wrong rejection would lose a match.

    Cached: a drain compares every candidate's phones with its person's, and parsing is most of
    a drain's own CPU; the answer depends on the two strings only.
    """
    text = (raw or "").strip()
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, region or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def email_key(email: str) -> str:
    return f"email:{normalize_email(email)}"


def phone_key(e164: str) -> str:
    return f"phone:{e164}"


def sobject_of_id(record_id: str) -> str | None:
    """Lead or Contact, from the Id's key prefix; None for other objects."""
    return _ID_PREFIXES.get(record_id[:3])


def phone_like_pattern(e164: str) -> str:
    """The SOQL LIKE pattern that finds the number whatever its stored format.

    Built from the national significant number (no country code, no trunk prefix), so numbers
    stored with or without `+1`/`0` are found alike. Only digits and `%`: nothing to escape.
    """
    number = phonenumbers.parse(e164)
    digits = str(phonenumbers.national_significant_number(number))
    return "%" + "%".join(digits) + "%"


# --------------------------------------------------------------------------- what we look for


@dataclass(frozen=True)
class MatchRequest:
    """One person to find: `key` is the caller's (for example the inquiry id)."""

    key: Any
    email: str = ""  # normalised (lower case), or empty
    phone: str = ""  # E.164, or empty
    region: str = "US"  # how to read phone numbers stored without a country code

    @property
    def has_keys(self) -> bool:
        return bool(self.email or self.phone)


@dataclass(frozen=True)
class Candidate:
    """A Lead or Contact the look-up returned."""

    sobject: str
    id: str
    email: str = ""
    phones: tuple[str, ...] = ()
    last_modified: str = ""
    is_converted: bool = False
    converted_contact_id: str = ""
    created_date: str = ""


@dataclass(frozen=True)
class Match:
    """The record chosen for a person, and why."""

    sobject: str
    record_id: str
    reason: str  # "email" | "phone" | "duplicate_rule" | "linked" | "lost_create" | …
    converted_lead_id: str = ""  # set when the match is the Contact of a converted Lead
    # When the record was created (look-up matches only), to recognise a record that our own
    # earlier create made although its answer was lost.
    created_date: str = ""

    def as_detail(self) -> dict[str, str]:
        detail = {"sobject": self.sobject, "record_id": self.record_id, "reason": self.reason}
        if self.converted_lead_id:
            detail["converted_lead_id"] = self.converted_lead_id
        return detail


@dataclass(frozen=True)
class MatchResult:
    request: MatchRequest
    match: Match | None
    candidates: int = 0  # how many records the look-up returned for this person
    ambiguous: bool = False  # more than one distinct record matched


# --------------------------------------------------------------------------- choosing


def parse_salesforce_datetime(value: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%f%z")
    except (TypeError, ValueError):
        return dt.datetime.min.replace(tzinfo=dt.UTC)


def is_same_person(request: MatchRequest, candidate: Candidate) -> tuple[bool, bool]:
    """(by email, by phone): how `candidate` is `request`'s person by rule 3 of the module
    docstring; (False, False) when it is not. A phone match whose record carries another
    non-empty email is someone else sharing the line, so it is not a match."""
    by_email = bool(request.email) and normalize_email(candidate.email) == request.email
    by_phone = bool(request.phone) and any(
        normalize_phone(p, region=request.region) == request.phone for p in candidate.phones
    )
    if by_phone and not by_email and request.email and normalize_email(candidate.email):
        by_phone = False  # another person's email: never overwrite it
    return by_email, by_phone


def choose_match(request: MatchRequest, candidates: Iterable[Candidate]) -> MatchResult:
    """The record `request` belongs to among `candidates`, by the rules of the module docstring.

    Candidates that are not the same person (`is_same_person`: false positives of a shared
    query, or another person's record sharing the phone) are ignored.
    """
    # (email rank, type rank, -modified, id) -> Match; a converted Lead counts as its Contact.
    ranked: dict[tuple[str, str], tuple[tuple[Any, ...], Match]] = {}
    seen = 0
    for candidate in candidates:
        by_email, by_phone = is_same_person(request, candidate)
        if not (by_email or by_phone):
            continue
        seen += 1
        if candidate.sobject == LEAD and candidate.is_converted:
            if not candidate.converted_contact_id:
                continue  # converted without a Contact: nothing we may update
            match = Match(
                CONTACT,
                candidate.converted_contact_id,
                "email" if by_email else "phone",
                converted_lead_id=candidate.id,
            )
        else:
            match = Match(
                candidate.sobject,
                candidate.id,
                "email" if by_email else "phone",
                created_date=candidate.created_date,
            )
        modified = parse_salesforce_datetime(candidate.last_modified)
        rank = (
            0 if by_email else 1,
            0 if match.sobject == CONTACT else 1,
            -modified.timestamp(),
            match.record_id,
        )
        identity = (match.sobject, match.record_id)
        if identity not in ranked or rank < ranked[identity][0]:
            ranked[identity] = (rank, match)
    if not ranked:
        return MatchResult(request=request, match=None, candidates=seen)
    best = min(ranked.values(), key=lambda item: item[0])[1]
    return MatchResult(request=request, match=best, candidates=seen, ambiguous=len(ranked) > 1)


# --------------------------------------------------------------------------- querying


def lookup_soql(sobject: str, requests: Sequence[MatchRequest]) -> str:
    """One SOQL query that finds every person of `requests` among `sobject` records."""
    emails = sorted({r.email for r in requests if r.email})
    patterns = sorted({phone_like_pattern(r.phone) for r in requests if r.phone})
    conditions: list[str] = []
    if emails:
        conditions.append(format_soql("Email IN {}", emails))
    for pattern in patterns:
        # Digits and % only (see phone_like_pattern), so the literal needs no escaping.
        conditions.extend(f"{name} LIKE '{pattern}'" for name in PHONE_FIELDS[sobject])
    if not conditions:
        raise ValueError("lookup_soql needs at least one email or phone")
    # Values are quoted by format_soql or are digit-only patterns; the rest are our constants.
    return (
        f"SELECT {', '.join(QUERY_FIELDS[sobject])} FROM {sobject} "  # noqa: S608
        f"WHERE {' OR '.join(conditions)} "
        f"ORDER BY LastModifiedDate DESC LIMIT {ROWS_PER_PERSON * len(requests)}"
    )


def candidate_from_record(record: dict[str, Any]) -> Candidate:
    sobject = (record.get("attributes") or {}).get("type") or sobject_of_id(record["Id"]) or ""
    phones = tuple(str(record[name]) for name in PHONE_FIELDS.get(sobject, ()) if record.get(name))
    return Candidate(
        sobject=sobject,
        id=record["Id"],
        email=record.get("Email") or "",
        phones=phones,
        last_modified=record.get("LastModifiedDate") or "",
        is_converted=bool(record.get("IsConverted")),
        converted_contact_id=record.get("ConvertedContactId") or "",
        created_date=record.get("CreatedDate") or "",
    )


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _person_groups(requests: Sequence[MatchRequest]) -> list[Sequence[MatchRequest]]:
    """`requests` in groups that share one query per object: at most `PERSONS_PER_QUERY`
    people, and a query (the Contact one, the longer) of at most `MAX_SOQL_CHARS`, counted
    per person as the conditions they add."""
    groups: list[Sequence[MatchRequest]] = []
    current: list[MatchRequest] = []
    used = 0
    for request in requests:
        cost = len(request.email) + 4
        if request.phone:
            pattern = phone_like_pattern(request.phone)
            cost += sum(len(f"{name} LIKE '{pattern}' OR ") for name in PHONE_FIELDS[CONTACT])
        if current and (len(current) >= PERSONS_PER_QUERY or used + cost > MAX_SOQL_CHARS - 500):
            groups.append(current)
            current, used = [], 0
        current.append(request)
        used += cost
    if current:
        groups.append(current)
    return groups


def raise_subrequest_error(item: dict[str, Any]) -> None:
    body = item.get("body")
    first = body[0] if isinstance(body, list) and body and isinstance(body[0], dict) else {}
    status = int(item.get("httpStatusCode") or 500)
    raise error_from_code(
        first.get("errorCode") or f"HTTP_{status}",
        first.get("message") or f"A look-up subrequest failed with HTTP {status}",
        first.get("fields") or [],
        status,
    )


def account_key(name: str) -> str:
    """The claim and lock key of a company's Account: `account:<name, case-folded>` (SOQL `=`
    ignores case, so `Lee Bakery` and `LEE BAKERY` are one Account). `name` is already
    normalised by `mapping.account_name`; a name too long for the key column is hashed."""
    key = f"account:{name.casefold()}"
    if len(key) > MAX_KEY_LENGTH:
        key = "account:sha256:" + hashlib.sha256(name.casefold().encode()).hexdigest()
    return key


def account_lookup_soql(names: Sequence[str], *, limit: int = ACCOUNT_ROWS) -> str:
    """One SOQL query that finds the Accounts named like any of `names` (case-insensitively),
    oldest first."""
    return format_soql(
        "SELECT Id, Name, CreatedDate FROM Account WHERE Name IN {} "
        "ORDER BY CreatedDate ASC, Id ASC LIMIT {}",
        sorted(names),
        int(limit),
    )


def choose_account(name: str, records: Iterable[dict[str, Any]]) -> str | None:
    """The Account a company `name` belongs to among `records`: the oldest by CreatedDate, then
    the lowest Id (a stable choice when an org already has duplicate Accounts; the oldest is the
    one people have been using longest). None when no record has that Name."""
    wanted = name.casefold()
    found = [
        (parse_salesforce_datetime(r.get("CreatedDate") or ""), r["Id"])
        for r in records
        if (r.get("Name") or "").strip().casefold() == wanted
    ]
    return min(found)[1] if found else None


@dataclass
class Lookup:
    """What one look-up found: the people's records and the companies' Accounts."""

    candidates: list[Candidate] = field(default_factory=list)
    #: account_key(name) -> the chosen Account Id, for the names that have an Account.
    accounts: dict[str, str] = field(default_factory=dict)


def lookup_candidates(
    *,
    client: SalesforceClient,
    requests: Sequence[MatchRequest],
    account_names: Sequence[str] = (),
) -> Lookup:
    """Every Lead and Contact that may belong to one of `requests`, and the Account of every
    company in `account_names`, in as few Composite calls as the limits allow (one call for up
    to 200 people and 50 companies: the Account query takes Composite's fifth query slot)."""
    keyed = [r for r in requests if r.has_keys]
    person_queries: list[str] = []
    for group in _person_groups(keyed):
        person_queries.append(lookup_soql(CONTACT, group))
        person_queries.append(lookup_soql(LEAD, group))
    names = sorted({n for n in account_names if n})
    name_groups = _chunks(names, ACCOUNT_NAMES_PER_QUERY)
    batches: list[list[tuple[str, str]]] = [
        [("person", q) for q in batch] for batch in _chunks(person_queries, QUERIES_PER_COMPOSITE)
    ]
    for index, group in enumerate(name_groups):
        if index == len(batches):
            batches.append([])
        batches[index].append(("account", account_lookup_soql(group)))

    found = Lookup()
    account_records: list[dict[str, Any]] = []
    full_answers: list[Sequence[str]] = []
    for batch_index, batch in enumerate(batches):
        subrequests = [
            client.query_subrequest(f"lookup{index}", soql)
            for index, (_kind, soql) in enumerate(batch)
        ]
        results = client.composite(subrequests)
        for (kind, _soql), item in zip(batch, results, strict=True):
            if int(item.get("httpStatusCode") or 0) >= 300:
                raise_subrequest_error(item)
            records = (item.get("body") or {}).get("records") or []
            if kind == "person":
                found.candidates.extend(candidate_from_record(r) for r in records)
            else:
                account_records.extend(records)
                if len(records) >= ACCOUNT_ROWS:
                    full_answers.append(name_groups[batch_index])
    for name in names:
        account_id = choose_account(name, account_records)
        if account_id is None and any(name in group for group in full_answers):
            # The shared query hit its row limit (an org with many same-named Accounts): this
            # name's oldest Account may have been left out, so ask for it alone.
            account_id = choose_account(
                name, client.query(account_lookup_soql([name], limit=ACCOUNT_ROWS))
            )
        if account_id:
            found.accounts[account_key(name)] = account_id
    return found


def match_inquiries(
    *, client: SalesforceClient, requests: Sequence[MatchRequest]
) -> list[MatchResult]:
    """Find the record of every person in `requests` (one Composite call per up to 200 people).

    Requests without an email or a phone cannot be matched and get `match=None` without any
    call.
    """
    return lookup_people_and_accounts(client=client, requests=requests)[0]


def lookup_people_and_accounts(
    *,
    client: SalesforceClient,
    requests: Sequence[MatchRequest],
    account_names: Sequence[str] = (),
) -> tuple[list[MatchResult], dict[str, str]]:
    """`match_inquiries` plus the Accounts of `account_names` (companies of Contacts about to be
    created), found in the same Composite call: (match results, account_key -> Account Id).

    No call at all when there is neither a person with an email or phone nor a company.
    """
    if not any(r.has_keys for r in requests) and not any(account_names):
        return [MatchResult(request=r, match=None) for r in requests], {}
    found = lookup_candidates(client=client, requests=requests, account_names=account_names)
    results = [
        choose_match(r, found.candidates) if r.has_keys else MatchResult(r, None) for r in requests
    ]
    return results, found.accounts


@dataclass
class PersonKeys:
    """The match keys of one inquiry (`email:…`, `phone:…`), sorted for lock ordering."""

    email: str = ""
    phone: str = ""
    keys: list[str] = field(default_factory=list)


def person_keys(*, email: str, phone: str, region: str) -> PersonKeys:
    """Normalise an inquiry's email and phone into its match keys."""
    normalized_email = normalize_email(email) if email and "@" in email else ""
    normalized_phone = normalize_phone(phone, region=region) or ""
    keys = []
    if normalized_email:
        keys.append(email_key(normalized_email))
    if normalized_phone:
        keys.append(phone_key(normalized_phone))
    return PersonKeys(email=normalized_email, phone=normalized_phone, keys=sorted(keys))
