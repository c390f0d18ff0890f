"""Shared core of the Salesforce emulator: orgs, records, rules, emails, tokens, faults.

REST (``rest.py``) and SOAP (``soap.py``) are thin transports over this module. Everything that
Salesforce does to a record on write (validation, duplicate rules, assignment rules, auto-response
and notification emails) lives here so both APIs behave the same way. Facts come from
../shared/SALESFORCE.md and the seeds; behaviour that file marks UNCONFIRMED is a named constant
below so it is easy to change.

Thread safety: one re-entrant lock per ``EmulatorState`` guards all data; every public method takes
it. Nothing sleeps while holding it (injected latency happens after the lock is released).
"""

from __future__ import annotations

import copy
import datetime as dt
import random
import re
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from . import addresses, matching, picklists, schema, strings
from .errors import DuplicatesDetected
from .ids import KEY_PREFIXES, is_valid_id, new_id, to_18
from .picklists import SchemaConfig
from .schema import FieldDef, SObjectDef
from .soql import run_query, run_search
from .values import SalesforceError, record_url

DEFAULT_API_VERSION = "59.0"
# The DailyApiRequests sample in SALESFORCE.md shows 15000 (a Developer Edition value).
DEFAULT_DAILY_API_LIMIT = 15000
# Seed 002: "5,000 external emails per 24 hours in most editions".
DEFAULT_DAILY_EMAIL_LIMIT = 5000
# SALESFORCE.md section 1: code lifetime claims of 5 and 15 minutes exist (UNCONFIRMED).
DEFAULT_AUTH_CODE_TTL_SECONDS = 15 * 60

# UNCONFIRMED: the standard duplicate rules "Allow" with an alert, so allowSave is true in the
# DuplicateResult; the DuplicateRuleHeader only lets a save through for such rules.
DEFAULT_DUPLICATE_RULE_ALLOWS_SAVE = True
# UNCONFIRMED: duplicate rules are configured here to run on create only unless asked.
DEFAULT_DUPLICATE_RULE_ON_EDIT = False
# UNCONFIRMED: sender and subjects of the owner-assignment notification Salesforce sends.
ASSIGNMENT_NOTIFICATION_FROM = "noreply@salesforce.com"
ASSIGNMENT_NOTIFICATION_SUBJECTS = {
    "Lead": "Lead transferred to you.",
    "Case": "Case #{!Case.CaseNumber} has been assigned to you.",
    "Account": "Account transferred to you.",
}
# UNCONFIRMED: whether a token without the "api" scope may call REST/SOAP (Salesforce refuses).
API_SCOPES = frozenset({"api", "full"})
# UNCONFIRMED (SALESFORCE.md table): UNABLE_TO_LOCK_ROW is a 400 in REST captures.
UNABLE_TO_LOCK_ROW_STATUS = 400
# Object permissions: a create by a user whose profile lacks "Create" on the object. Public
# reports of real orgs show REST answering 400 CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY with "entity
# type cannot be inserted: Contact", and the same text from the SOAP API for a custom object after
# its create permission was revoked. UNCONFIRMED: no Salesforce documentation states it.
NO_CREATE_PERMISSION_STATUS = 400
NO_CREATE_PERMISSION_CODE = "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"
NO_CREATE_PERMISSION_MESSAGE = "entity type cannot be inserted: {label}"
# UNCONFIRMED: requests to the OAuth token and revoke endpoints are not counted as API requests.
# Salesforce's allocation page scopes the daily allocation to the SOAP and REST APIs, and token
# responses carry no Sforce-Limit-Info header; no page says so outright.
OAUTH_CALLS_COUNT_AGAINST_API_LIMIT = False
# Memory bounds for long benchmark runs: the oldest call-log entries and query locators go first.
MAX_CALL_LOG_ENTRIES = 20000
MAX_QUERY_CURSORS = 200

# Objects whose records assignment rules and auto-response rules apply to.
ASSIGNABLE_SOBJECTS = ("Lead", "Case", "Account")
AUTO_RESPONSE_SOBJECTS = ("Lead", "Case")

FAULT_KINDS = (
    "latency",  # add latency_ms to every matching call, then serve it normally
    "slow_response",  # process the call, then wait latency_ms before answering
    "server_unavailable",  # 503 SERVER_UNAVAILABLE
    "unable_to_lock_row",  # UNABLE_TO_LOCK_ROW
    "drop_connection",  # close the socket without a response (before processing)
    "drop_after_processing",  # process the call (records are written), then close the socket
    "request_limit_exceeded",  # 403 REQUEST_LIMIT_EXCEEDED regardless of usage
)

_MERGE_FIELD_RE = re.compile(r"\{!(\w+)\.(\w+)\}")
# Headers worth keeping in the call log; everything else is noise (and Authorization is secret).
LOGGED_HEADERS = (
    "Sforce-Auto-Assign",
    "Sforce-Duplicate-Rule-Header",
    "Sforce-Call-Options",
    "Sforce-Query-Options",
    "Content-Type",
    "SOAPAction",
    "User-Agent",
)


# --------------------------------------------------------------------------- errors

# SalesforceError lives in values.py and DuplicatesDetected in errors.py (rule modules raise
# them too); the transports import them from here.


class DropConnection(ConnectionError):
    """Raised to make the transport close the socket without writing any response.

    It subclasses ConnectionError because werkzeug's request handler treats that as "the client
    went away" and writes nothing; the server's handler then shuts the socket down.
    """


def not_found() -> SalesforceError:
    return SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")


def invalid_session() -> SalesforceError:
    return SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")


# --------------------------------------------------------------------------- plain data


@dataclass
class WriteOptions:
    """How a write was requested: which API and which headers came with it."""

    api: str = "rest"  # "rest" | "soap"
    assignment: str | None = None  # None = no rule; "default"; or an AssignmentRule id (01Q...)
    trigger_auto_response: bool = False
    trigger_user_email: bool = False
    trigger_other_email: bool = False
    duplicate_allow_save: bool = False
    allow_field_truncation: bool = False
    # Added beyond the agreed names, all optional: who writes (default owner) and which API
    # version the caller speaks (record URLs inside a DuplicateResult).
    user_id: str | None = None
    api_version: str = DEFAULT_API_VERSION


@dataclass
class User:
    id: str
    org_id: str
    username: str
    first_name: str
    last_name: str
    email: str
    active: bool = True
    # Objects this user's profile may not create (an admin took away the "Create" permission).
    cannot_create: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass
class Queue:
    id: str
    org_id: str
    name: str
    developer_name: str
    email: str | None = None
    member_ids: list[str] = field(default_factory=list)
    sobjects: list[str] = field(default_factory=lambda: ["Lead", "Case"])


@dataclass
class AssignmentEntry:
    """One rule entry: criteria are field equality (case-insensitive; a list means any of)."""

    assign_to: str
    criteria: dict[str, Any] = field(default_factory=dict)
    email_template: str | None = None


@dataclass
class AssignmentRule:
    id: str
    sobject: str
    name: str
    active: bool
    entries: list[AssignmentEntry]


@dataclass
class AutoResponseEntry:
    template: str
    from_address: str
    criteria: dict[str, Any] = field(default_factory=dict)
    reply_to: str | None = None
    sender_name: str | None = None
    subject: str | None = None
    body: str | None = None


@dataclass
class AutoResponseRule:
    id: str
    sobject: str
    name: str
    active: bool
    entries: list[AutoResponseEntry]


@dataclass
class DuplicateRule:
    """A duplicate rule with its matching rule folded in: which fields make two records match."""

    sobject: str
    name: str
    match_rule: str
    match_fields: list[str] = field(default_factory=lambda: ["Email"])
    compare_sobjects: list[str] = field(default_factory=list)
    allow_save: bool = DEFAULT_DUPLICATE_RULE_ALLOWS_SAVE
    on_create: bool = True
    on_edit: bool = DEFAULT_DUPLICATE_RULE_ON_EDIT
    active: bool = True
    error_message: str = "Use one of these records?"


@dataclass
class Fault:
    """A scripted failure or delay for one org's API calls."""

    id: str
    kind: str
    count: int | None = None  # None: every matching call; N: the next N matching calls
    probability: float | None = None  # chance per matching call (after count)
    latency_ms: int = 0
    api: str | None = None  # "rest" | "soap" | None for both
    method: str | None = None
    path_contains: str | None = None
    fired: int = 0

    def matches(self, api: str, method: str, path: str) -> bool:
        if self.api and self.api != api:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        return not (self.path_contains and self.path_contains not in path)


@dataclass
class ConnectedApp:
    client_id: str
    client_secret: str
    callback_urls: list[str]
    name: str = "Auto-Respond Lead Sync"
    refresh_token_rotation: bool = False
    require_secret_for_refresh: bool = True


@dataclass
class AuthCode:
    code: str
    client_id: str
    redirect_uri: str
    org_id: str
    user_id: str
    scopes: list[str]
    login_kind: str
    code_challenge: str | None
    expires_at: float
    used: bool = False


@dataclass
class RefreshToken:
    token: str
    client_id: str
    org_id: str
    user_id: str
    scopes: list[str]
    login_kind: str
    revoked: bool = False


@dataclass
class AccessToken:
    token: str
    client_id: str
    org_id: str
    user_id: str
    scopes: list[str]
    login_kind: str
    issued_at: float
    refresh_token: str | None = None
    expires_at: float | None = None
    revoked: bool = False
    expired: bool = False

    def valid(self, now: float) -> bool:
        if self.revoked or self.expired:
            return False
        return self.expires_at is None or now < self.expires_at


# --------------------------------------------------------------------------- helpers


def sf_datetime(moment: dt.datetime | None = None) -> str:
    """Salesforce's REST datetime format, e.g. 2024-05-01T10:00:00.000+0000."""
    moment = moment or dt.datetime.now(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _values_equal(record_value: Any, wanted: Any) -> bool:
    if isinstance(wanted, list | tuple):
        return any(_values_equal(record_value, w) for w in wanted)
    if isinstance(record_value, str) and isinstance(wanted, str):
        return record_value.casefold() == wanted.casefold()
    return record_value == wanted


def criteria_match(record: Mapping[str, Any], criteria: Mapping[str, Any]) -> bool:
    """Rule-entry criteria: every field equals (case-insensitively) the wanted value."""
    lower = {k.lower(): v for k, v in record.items()}
    return all(_values_equal(lower.get(k.lower()), v) for k, v in criteria.items())


def render_merge_fields(text: str, sobject: str, record: Mapping[str, Any]) -> str:
    """Replace {!Lead.FirstName}-style merge fields with the record's values."""
    lower = {k.lower(): v for k, v in record.items()}

    def repl(match: re.Match[str]) -> str:
        if match.group(1).lower() != sobject.lower():
            return ""
        value = lower.get(match.group(2).lower())
        return "" if value is None else str(value)

    return _MERGE_FIELD_RE.sub(repl, text)


def with_attributes(
    sobject: str,
    record: Mapping[str, Any],
    version: str,
    fields: Iterable[str] | None = None,
) -> dict[str, Any]:
    """A record as the REST API returns it: attributes first, then the fields."""
    out: dict[str, Any] = {
        "attributes": {"type": sobject, "url": record_url(sobject, record["Id"], version)}
    }
    if fields is None:
        out.update(record)
    else:
        for name in fields:
            out[name] = record.get(name)
    return out


# --------------------------------------------------------------------------- call context


@dataclass
class CallContext:
    """One authenticated API call in progress (see ``EmulatorState.begin_call``)."""

    org: Org
    user: User
    entry: dict[str, Any]
    access_token: AccessToken
    _started: float = field(default_factory=time.monotonic)
    _after_delay_s: float = 0.0
    _drop_after: bool = False
    _limit: tuple[int, int] = (0, 0)

    @property
    def limit_info(self) -> tuple[int, int]:
        """(used, max) of the org's daily API requests after counting this call."""
        return self._limit

    def note(self, **details: Any) -> None:
        """Add transport details to the call-log entry (e.g. SOAP operation and headers)."""
        with self.org.lock:
            self.entry.update(details)

    def apply_after_faults(self) -> None:
        """Run faults that act after processing: a slow answer, or a drop once data is written.

        Call it when the response is ready, before writing it. May raise DropConnection.
        """
        if self._after_delay_s:
            time.sleep(self._after_delay_s)
        if self._drop_after:
            self.finish(0)
            raise DropConnection("injected fault: drop_after_processing")

    def finish(self, status_code: int) -> None:
        """Complete the call-log entry (0 = connection dropped)."""
        with self.org.lock:
            if "status" not in self.entry or self.entry["status"] is None:
                self.entry["status"] = status_code
                self.entry["duration_ms"] = round((time.monotonic() - self._started) * 1000, 1)


# --------------------------------------------------------------------------- org


class Org:
    """One org's data: users, queues, records, rules, emails, API usage, call log, faults."""

    def __init__(
        self,
        state: EmulatorState,
        *,
        name: str,
        kind: str = "production",
        daily_api_limit: int = DEFAULT_DAILY_API_LIMIT,
        daily_email_limit: int = DEFAULT_DAILY_EMAIL_LIMIT,
    ) -> None:
        if kind not in ("production", "sandbox"):
            raise ValueError("kind must be 'production' or 'sandbox'")
        self.state = state
        self.lock = state.lock
        self.id = new_id(KEY_PREFIXES["Organization"])
        self.name = name
        self.kind = kind
        self.daily_api_limit = daily_api_limit
        self.daily_email_limit = daily_email_limit
        self.refresh_token_rotation = False
        self.auto_approve = False
        self.session_timeout_seconds: float | None = None
        self.default_lead_status = schema.DEFAULT_LEAD_STATUS
        # Real orgs' configurations (docs/salesforce-facts.md section 3a); each is a setting.
        self.state_country_picklists = False
        self.default_country: str | None = None
        self.picklist_values: dict[str, list[str]] = {}
        self.restricted_picklists: list[str] = []
        self.email_address_internationalization = False
        self.email_stored_lowercase = strings.EMAIL_STORED_LOWERCASE
        self.count_utf16_code_units = strings.COUNT_UTF16_CODE_UNITS
        self.users: dict[str, User] = {}
        self.queues: dict[str, Queue] = {}
        self.records: dict[str, dict[str, dict[str, Any]]] = {
            name: {} for name, d in schema.SOBJECTS.items() if d.writable
        }
        self.assignment_rules: dict[str, AssignmentRule] = {}
        self.auto_response_rules: dict[str, AutoResponseRule] = {}
        self.duplicate_rules: dict[str, DuplicateRule] = {}
        self.faults: list[Fault] = []
        self.emails: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.api_used = 0
        self._usage_day = dt.datetime.now(dt.UTC).date()
        self._emails_today = 0
        self._case_number = 1000

    # ---------------------------------------------------------------- people

    def add_user(
        self,
        username: str,
        *,
        first_name: str = "",
        last_name: str = "User",
        email: str | None = None,
        active: bool = True,
        cannot_create: Iterable[str] = (),
    ) -> User:
        with self.lock:
            if self.state.find_user_by_username(username):
                raise ValueError(f"username {username!r} already exists")
            user = User(
                id=new_id(KEY_PREFIXES["User"]),
                org_id=self.id,
                username=username,
                first_name=first_name,
                last_name=last_name,
                email=email or username,
                active=active,
            )
            self.users[user.id] = user
            if cannot_create:
                self.set_user_permissions(user.id, cannot_create=cannot_create)
            return user

    def add_queue(
        self,
        name: str,
        *,
        email: str | None = None,
        member_ids: list[str] | None = None,
        sobjects: list[str] | None = None,
    ) -> Queue:
        with self.lock:
            for member in member_ids or []:
                if member not in self.users:
                    raise ValueError(f"unknown user {member}")
            queue = Queue(
                id=new_id(KEY_PREFIXES["Group"]),
                org_id=self.id,
                name=name,
                developer_name=re.sub(r"\W+", "_", name).strip("_"),
                email=email,
                member_ids=list(member_ids or []),
                sobjects=list(sobjects or ["Lead", "Case"]),
            )
            self.queues[queue.id] = queue
            return queue

    @property
    def admin(self) -> User:
        """The org's first user: default owner, and who an auto-approved login signs in as."""
        return next(iter(self.users.values()))

    def set_user_permissions(self, user_id: str, *, cannot_create: Iterable[str]) -> User:
        """Replace the list of objects a user may not create (their profile's object
        permissions); describe then says ``createable: false`` and API creates are refused."""
        with self.lock:
            user = self.users.get(to_18(user_id) if is_valid_id(user_id) else user_id)
            if user is None:
                raise KeyError(user_id)
            names = []
            for sobject in cannot_create:
                definition = schema.sobject_def(sobject)
                if definition is None or not definition.writable:
                    raise ValueError(f"{sobject} is not an object users create")
                names.append(definition.name)
            user.cannot_create = sorted(set(names))
            return user

    def can_create(self, user_id: str | None, sobject: str) -> bool:
        """Whether the user may create records of the object (no user: a seed, always)."""
        with self.lock:
            user = self.users.get(user_id or "")
            return user is None or sobject not in user.cannot_create

    # ---------------------------------------------------------------- rules

    def set_assignment_rule(
        self,
        sobject: str,
        name: str,
        entries: list[AssignmentEntry],
        *,
        active: bool = True,
    ) -> AssignmentRule:
        """Add a rule; an active one becomes the default and deactivates the others."""
        with self.lock:
            sobject = self._assignable(sobject)
            for entry in entries:
                if entry.assign_to not in self.users and entry.assign_to not in self.queues:
                    raise ValueError(f"assign_to {entry.assign_to} is not a user or queue")
            if active:
                for rule in self.assignment_rules.values():
                    if rule.sobject == sobject:
                        rule.active = False
            rule = AssignmentRule(
                new_id(KEY_PREFIXES["AssignmentRule"]), sobject, name, active, list(entries)
            )
            self.assignment_rules[rule.id] = rule
            return rule

    def set_auto_response_rule(
        self,
        sobject: str,
        name: str,
        entries: list[AutoResponseEntry],
        *,
        active: bool = True,
    ) -> AutoResponseRule:
        """Seed 002: one active rule per org (and object); activating one deactivates others."""
        with self.lock:
            if sobject not in AUTO_RESPONSE_SOBJECTS:
                raise ValueError("auto-response rules exist for Lead and Case only")
            if active:
                for rule in self.auto_response_rules.values():
                    if rule.sobject == sobject:
                        rule.active = False
            rule = AutoResponseRule(
                new_id(KEY_PREFIXES["AutoResponseRule"]), sobject, name, active, list(entries)
            )
            self.auto_response_rules[rule.id] = rule
            return rule

    def set_duplicate_rule(self, rule: DuplicateRule | None, sobject: str | None = None) -> None:
        """Install (or with ``None`` remove) the duplicate rule for an object."""
        with self.lock:
            if rule is None:
                self.duplicate_rules.pop(sobject or "", None)
                return
            for name in rule.match_fields:
                if name not in matching.MATCH_FIELDS:
                    raise ValueError(f"match_fields may contain {', '.join(matching.MATCH_FIELDS)}")
                if name == "Name" and rule.sobject != "Account":
                    raise ValueError("a Name match is the Account matching rule's (company name)")
                if name == "NameAndCompany" and rule.sobject not in ("Lead", "Contact"):
                    raise ValueError("NameAndCompany is the Lead and Contact matching rules'")
            self.duplicate_rules[rule.sobject] = rule

    def _assignable(self, sobject: str) -> str:
        definition = schema.sobject_def(sobject)
        if definition is None or definition.name not in ASSIGNABLE_SOBJECTS:
            raise ValueError("assignment rules exist for Lead, Case and Account")
        return definition.name

    # ---------------------------------------------------------------- faults

    def add_fault(self, **kwargs: Any) -> Fault:
        with self.lock:
            if kwargs.get("kind") not in FAULT_KINDS:
                raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
            fault = Fault(id=secrets.token_hex(4), **kwargs)
            self.faults.append(fault)
            return fault

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def _pick_faults(self, api: str, method: str, path: str) -> list[Fault]:
        """Faults that fire for this call; consumes counted ones."""
        fired: list[Fault] = []
        for fault in list(self.faults):
            if not fault.matches(api, method, path):
                continue
            if fault.probability is not None and random.random() >= fault.probability:
                continue
            fault.fired += 1
            fired.append(fault)
            if fault.count is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
            if fault.kind not in ("latency", "slow_response"):
                break  # one failure per call is enough
        return fired

    # ---------------------------------------------------------------- usage

    def _roll_day(self) -> None:
        """Daily counters reset at UTC midnight (Salesforce uses a rolling 24 h window)."""
        today = dt.datetime.now(dt.UTC).date()
        if today != self._usage_day:
            self._usage_day = today
            self.api_used = 0
            self._emails_today = 0

    def api_usage(self) -> dict[str, int]:
        with self.lock:
            self._roll_day()
            return {
                "used": self.api_used,
                "max": self.daily_api_limit,
                "remaining": max(self.daily_api_limit - self.api_used, 0),
            }

    def email_usage(self) -> dict[str, int]:
        with self.lock:
            self._roll_day()
            return {
                "used": self._emails_today,
                "max": self.daily_email_limit,
                "remaining": max(self.daily_email_limit - self._emails_today, 0),
            }

    # ---------------------------------------------------------------- reads

    def rows(self, sobject: str, *, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        """Every row of an object, in insertion order (synthesised for User/Group/rules)."""
        name = schema.sobject_def(sobject).name  # type: ignore[union-attr]
        if name == "User":
            for u in self.users.values():
                yield {
                    "Id": u.id,
                    "Username": u.username,
                    "FirstName": u.first_name,
                    "LastName": u.last_name,
                    "Name": u.name,
                    "Email": u.email,
                    "IsActive": u.active,
                }
        elif name == "Group":
            for q in self.queues.values():
                yield {
                    "Id": q.id,
                    "Name": q.name,
                    "DeveloperName": q.developer_name,
                    "Type": "Queue",
                    "Email": q.email,
                }
        elif name == "AssignmentRule":
            for r in self.assignment_rules.values():
                yield {"Id": r.id, "Name": r.name, "SobjectType": r.sobject, "Active": r.active}
        else:
            for rec in self.records[name].values():
                if include_deleted or not rec.get("IsDeleted"):
                    yield rec

    def get(self, sobject: str, record_id: str) -> dict[str, Any]:
        """A copy of one live record; NOT_FOUND / ENTITY_IS_DELETED as REST reports them."""
        with self.lock:
            rec = self._lookup(sobject, record_id)
            return dict(rec)

    def _lookup(self, sobject: str, record_id: str) -> dict[str, Any]:
        definition = schema.sobject_def(sobject)
        if definition is None or not definition.writable:
            raise not_found()
        if not is_valid_id(record_id or "") or not record_id.startswith(definition.key_prefix):
            raise not_found()
        rec = self.records[definition.name].get(to_18(record_id))
        if rec is None:
            raise not_found()
        if rec.get("IsDeleted"):
            raise SalesforceError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
        return rec

    def owner_name(self, owner_id: str | None) -> tuple[str, str] | None:
        """(type, name) of a user or queue owner."""
        if owner_id in self.users:
            return "User", self.users[owner_id].name
        if owner_id in self.queues:
            return "Group", self.queues[owner_id].name
        return None

    def query(self, soql: str, version: str = DEFAULT_API_VERSION) -> dict[str, Any]:
        """Run a SOQL query; returns the REST body with every record (no paging)."""
        with self.lock:
            return run_query(self, soql, version)

    def search(self, sosl: str, version: str = DEFAULT_API_VERSION) -> list[dict[str, Any]]:
        """Run a SOSL search; returns the found records with attributes."""
        with self.lock:
            return run_search(self, sosl, version)

    # ---------------------------------------------------------------- writes

    def create(self, sobject: str, fields: dict[str, Any], options: WriteOptions) -> str:
        """Insert a record as the API would: validate, check duplicates, assign, send emails."""
        with self.lock:
            definition = self._writable(sobject, "create")
            if not self.can_create(options.user_id, definition.name):
                # Checked before any field: without the object permission nothing else matters.
                raise SalesforceError(
                    NO_CREATE_PERMISSION_STATUS,
                    NO_CREATE_PERMISSION_CODE,
                    NO_CREATE_PERMISSION_MESSAGE.format(label=definition.label),
                )
            values = self._validate(definition, fields, options, creating=True)
            self._apply_org_rules(definition, values, {}, creating=True)
            missing = [
                f.name for f in definition.fields if f.required and values.get(f.name) in (None, "")
            ]
            if missing:
                raise SalesforceError(
                    400,
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(missing)}]",
                    missing,
                )
            record = self._new_record(definition, values, options)
            self._check_duplicates(definition, record, options, editing=False)
            self._check_assignment(definition.name, options)
            self.records[definition.name][record["Id"]] = record
            self._after_save(definition, record, options, created=True, old_owner=None)
            return record["Id"]

    def update(
        self, sobject: str, record_id: str, fields: dict[str, Any], options: WriteOptions
    ) -> None:
        """Update a record as the API would; converted leads cannot be updated."""
        with self.lock:
            definition = self._writable(sobject, "update")
            record = self._lookup(definition.name, record_id)
            fields = dict(fields)
            body_id = fields.pop("Id", None) or fields.pop("id", None)
            if body_id is not None and to_18(str(body_id)) != record["Id"]:
                raise SalesforceError(
                    400,
                    "INVALID_FIELD",
                    "The Id field should not be specified in the sobject data.",
                )
            if definition.name == "Lead" and record.get("IsConverted"):
                raise SalesforceError(
                    400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead"
                )
            values = self._validate(definition, fields, options, creating=False)
            self._apply_org_rules(definition, values, record, creating=False)
            cleared = [
                name
                for name, value in values.items()
                if value is None and definition.field(name).required  # type: ignore[union-attr]
            ]
            if cleared:
                raise SalesforceError(
                    400,
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(cleared)}]",
                    cleared,
                )
            merged = {**record, **values}
            self._check_duplicates(definition, merged, options, editing=True)
            self._check_assignment(definition.name, options)
            old_owner = record.get("OwnerId")
            record.update(values)
            self._derive(definition, record)
            record["LastModifiedDate"] = sf_datetime()
            self._after_save(definition, record, options, created=False, old_owner=old_owner)

    def delete(self, sobject: str, record_id: str) -> None:
        """Move a record to the recycle bin (later reads get ENTITY_IS_DELETED)."""
        with self.lock:
            definition = self._writable(sobject, "delete")
            record = self._lookup(definition.name, record_id)
            record["IsDeleted"] = True
            record["LastModifiedDate"] = sf_datetime()

    def insert_record(
        self, sobject: str, fields: dict[str, Any], *, converted: bool = False
    ) -> str:
        """Seed a record directly (as a person in the UI would): no rules, no API count.

        Values are stored as given apart from system fields; ``converted`` creates a converted
        Lead with its Contact and Account.
        """
        with self.lock:
            definition = self._writable(sobject, "create")
            values: dict[str, Any] = {}
            for name, value in fields.items():
                f = definition.field(name)
                if f is None or f.name == "Id":
                    raise ValueError(f"No such column '{name}' on sobject of type {sobject}")
                values[f.name] = value
            record = self._new_record(definition, values, WriteOptions(api="seed"))
            for name, value in values.items():  # seeding may set read-only fields too
                record[name] = value
            self._derive(definition, record)
            self.records[definition.name][record["Id"]] = record
            if converted:
                if definition.name != "Lead":
                    raise ValueError("only Leads can be converted")
                self.convert_lead(record["Id"])
            return record["Id"]

    def convert_lead(self, lead_id: str, account_id: str | None = None) -> tuple[str, str]:
        """Convert a Lead into a Contact (and an Account unless one is given).

        Returns (contact id, account id). The Lead keeps its data with IsConverted = true and
        ConvertedContactId / ConvertedAccountId set.
        """
        with self.lock:
            lead = self._lookup("Lead", lead_id)
            if lead.get("IsConverted"):
                raise SalesforceError(
                    400, "CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead"
                )
            owner = lead.get("OwnerId") if lead.get("OwnerId") in self.users else None
            seed = WriteOptions(api="seed", user_id=owner)
            if account_id is None:
                account = self._new_record(
                    schema.SOBJECTS["Account"],
                    {
                        "Name": lead.get("Company") or lead.get("LastName"),
                        "Phone": lead.get("Phone"),
                    },
                    seed,
                )
                self.records["Account"][account["Id"]] = account
                account_id = account["Id"]
            contact_values = {
                "FirstName": lead.get("FirstName"),
                "LastName": lead.get("LastName"),
                "Title": lead.get("Title"),
                "Email": lead.get("Email"),
                "Phone": lead.get("Phone"),
                "MobilePhone": lead.get("MobilePhone"),
                "MailingStreet": lead.get("Street"),
                "MailingCity": lead.get("City"),
                "MailingState": lead.get("State"),
                "MailingPostalCode": lead.get("PostalCode"),
                "MailingCountry": lead.get("Country"),
                "Description": lead.get("Description"),
                "LeadSource": lead.get("LeadSource"),
                "AccountId": account_id,
            }
            contact = self._new_record(schema.SOBJECTS["Contact"], contact_values, seed)
            self.records["Contact"][contact["Id"]] = contact
            lead.update(
                IsConverted=True,
                ConvertedContactId=contact["Id"],
                ConvertedAccountId=account_id,
                ConvertedDate=sf_datetime(),
                Status="Closed - Converted",
                LastModifiedDate=sf_datetime(),
            )
            return contact["Id"], account_id

    def snapshot(self) -> Any:
        """Everything a rolled-back transaction must restore (records, emails, counters)."""
        with self.lock:
            return (copy.deepcopy(self.records), len(self.emails), self._emails_today)

    def restore(self, snap: Any) -> None:
        with self.lock:
            records, email_count, emails_today = snap
            self.records = records
            del self.emails[email_count:]
            self._emails_today = emails_today

    # ---------------------------------------------------------------- write internals

    def _writable(self, sobject: str, operation: str) -> SObjectDef:
        definition = schema.sobject_def(sobject)
        if definition is None:
            raise SalesforceError(
                404 if operation != "seed" else 400,
                "NOT_FOUND",
                "The requested resource does not exist",
            )
        if not definition.writable:
            raise SalesforceError(
                400,
                "INVALID_TYPE_FOR_OPERATION",
                f"entity type {definition.name} does not support {operation}",
            )
        return definition

    def _apply_org_rules(
        self,
        definition: SObjectDef,
        values: dict[str, Any],
        existing: Mapping[str, Any],
        *,
        creating: bool,
    ) -> None:
        """Rules of this org's configuration: restricted picklists, State/Country picklists."""
        config = self.schema_config()
        picklists.check_restricted(config, definition, values)
        if config.state_country_picklists:
            addresses.apply(
                definition.name,
                values,
                existing,
                creating=creating,
                default_country=config.default_country,
            )

    def _validate(
        self,
        definition: SObjectDef,
        fields: Mapping[str, Any],
        options: WriteOptions,
        *,
        creating: bool,
    ) -> dict[str, Any]:
        """Check and coerce the given values; returns {canonical field name: value}."""
        values: dict[str, Any] = {}
        config = self.schema_config()
        for name, raw in fields.items():
            if name == "attributes":
                continue
            f = definition.field(name)
            if f is None or not config.has(f):
                raise SalesforceError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{name}' on sobject of type {definition.name}",
                    [name],
                )
            if f.name == "Id":
                raise SalesforceError(
                    400,
                    "INVALID_FIELD",
                    "The Id field should not be specified in the sobject data.",
                )
            if not (f.createable if creating else f.updateable):
                raise SalesforceError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {f.name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    [f.name],
                )
            values[f.name] = self._coerce(f, raw, options)
        return values

    def _coerce(self, f: FieldDef, raw: Any, options: WriteOptions) -> Any:
        if raw is None or raw == "":
            return None  # Salesforce stores an empty string as null
        if f.type == "boolean":
            if isinstance(raw, bool):
                return raw
            if options.api == "soap" and str(raw).lower() in ("true", "false"):
                return str(raw).lower() == "true"
            raise self._type_error(f, raw)
        if not isinstance(raw, str):
            raise self._type_error(f, raw)
        if f.type == "reference":
            return self._reference(f, raw)
        value = raw
        utf16 = bool(self.count_utf16_code_units)
        if f.length and strings.length(value, utf16=utf16) > f.length:
            if options.allow_field_truncation:
                value = strings.truncate(value, f.length, utf16=utf16)
            else:
                raise SalesforceError(
                    400,
                    "STRING_TOO_LONG",
                    f"{f.label}: data value too large: {value} (max length={f.length})",
                    [f.name],
                )
        international = bool(self.email_address_internationalization)
        if f.type == "email" and strings.email_problem(value, international=international):
            # SALESFORCE.md table: INVALID_EMAIL_ADDRESS, text UNCONFIRMED; the rules are in
            # strings.py (docs/salesforce-facts.md section 3, "Email").
            raise SalesforceError(
                400, "INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {value}", [f.name]
            )
        if f.type == "email" and self.email_stored_lowercase:
            value = value.lower()
        return value

    def _type_error(self, f: FieldDef, raw: Any) -> SalesforceError:
        kind = type(raw).__name__.upper()
        return SalesforceError(
            400,
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of {f.type} from {kind} value {raw!r} or request may "
            "be missing a required field",
        )

    def _reference(self, f: FieldDef, raw: str) -> str:
        if not is_valid_id(raw):
            raise SalesforceError(
                400, "MALFORMED_ID", f"{f.label}: id value of incorrect type: {raw}", [f.name]
            )
        value = to_18(raw)
        targets = {
            "User": self.users,
            "Group": self.queues,
            **{name: self.records.get(name, {}) for name in ("Account", "Contact", "Lead")},
        }
        if not any(value in targets.get(target, {}) for target in f.reference_to):
            raise SalesforceError(
                400,
                "INVALID_CROSS_REFERENCE_KEY",
                f"{f.label}: id value of incorrect type: {raw}"
                if not any(value.startswith(KEY_PREFIXES[t]) for t in f.reference_to)
                else "invalid cross reference id",
                [f.name],
            )
        return value

    def _new_record(
        self, definition: SObjectDef, values: dict[str, Any], options: WriteOptions
    ) -> dict[str, Any]:
        now = sf_datetime()
        record: dict[str, Any] = {"Id": new_id(definition.key_prefix)}
        config = self.schema_config()
        for f in definition.fields:
            if f.name != "Id" and config.has(f):
                record[f.name] = False if f.type == "boolean" else None
        record.update({k: v for k, v in values.items() if v is not None})
        for f in definition.fields:
            if f.picklist_default and record.get(f.name) is None:
                record[f.name] = f.picklist_default
        if definition.name == "Lead" and values.get("Status") is None:
            # SALESFORCE.md section 3: Status is defaulted from the org's default LeadStatus.
            record["Status"] = self.default_lead_status
        if "OwnerId" in record and record["OwnerId"] is None:
            writer = options.user_id if options.user_id in self.users else None
            record["OwnerId"] = writer or (self.admin.id if self.users else None)
        if definition.name == "Case":
            self._case_number += 1
            record["CaseNumber"] = f"{self._case_number:08d}"
        record["CreatedDate"] = now
        record["LastModifiedDate"] = now
        self._derive(definition, record)
        return record

    def _derive(self, definition: SObjectDef, record: dict[str, Any]) -> None:
        if definition.name in ("Lead", "Contact"):
            parts = [record.get("FirstName"), record.get("LastName")]
            record["Name"] = " ".join(p for p in parts if p) or None

    def _check_duplicates(
        self,
        definition: SObjectDef,
        record: Mapping[str, Any],
        options: WriteOptions,
        *,
        editing: bool,
    ) -> None:
        rule = self.duplicate_rules.get(definition.name)
        if rule is None or not rule.active or not (rule.on_edit if editing else rule.on_create):
            return
        if options.duplicate_allow_save and rule.allow_save:
            return  # the header only lets "Allow" (alert) rules through
        match_results = []
        for target in rule.compare_sobjects or [definition.name]:
            matches = [
                other
                for other in self.rows(target)
                if other["Id"] != record.get("Id")
                and not other.get("IsConverted")
                and matching.is_duplicate(
                    rule.match_fields,
                    record,
                    definition.name,
                    other,
                    target,
                    self._company_of,
                )
            ]
            if matches:
                match_results.append(
                    {
                        "entityType": target,
                        "errors": [],
                        "matchEngine": "FuzzyMatchEngine",
                        "matchRecords": [
                            {
                                "additionalInformation": [],
                                "fieldDiffs": [],
                                "matchConfidence": 100.0,
                                "record": {
                                    "attributes": {
                                        "type": target,
                                        "url": record_url(target, m["Id"], options.api_version),
                                    },
                                    "Id": m["Id"],
                                },
                            }
                            for m in matches
                        ],
                        "rule": rule.match_rule
                        if target == definition.name
                        else f"Standard_{target}_Match_Rule_v1_1",
                        "size": len(matches),
                        "success": True,
                    }
                )
        if match_results:
            raise DuplicatesDetected(
                {
                    "allowSave": rule.allow_save,
                    "duplicateRule": rule.name,
                    "duplicateRuleEntityType": definition.name,
                    "errorMessage": rule.error_message,
                    "matchResults": match_results,
                }
            )

    def _company_of(self, sobject: str, record: Mapping[str, Any]) -> str | None:
        """The company a record names, for NameAndCompany matching (a Contact's is its
        Account's name)."""
        if sobject == "Lead":
            return record.get("Company")
        if sobject == "Account":
            return record.get("Name")
        account = self.records["Account"].get(record.get("AccountId") or "")
        return account.get("Name") if account else None

    def _after_save(
        self,
        definition: SObjectDef,
        record: dict[str, Any],
        options: WriteOptions,
        *,
        created: bool,
        old_owner: str | None,
    ) -> None:
        if options.assignment and definition.name in ASSIGNABLE_SOBJECTS:
            before = record.get("OwnerId") if created else old_owner
            self._run_assignment(definition.name, record, options.assignment)
            if options.trigger_user_email and record.get("OwnerId") != before:
                # Seed 001: notification only with EmailHeader.triggerUserEmail=true.
                self._send_assignment_notifications(definition.name, record, options)
        if created and options.trigger_auto_response and definition.name in AUTO_RESPONSE_SOBJECTS:
            # Seeds 000 and 002: auto-response only on API inserts with triggerAutoResponseEmail.
            self._send_auto_response(definition.name, record, options)

    def _check_assignment(self, sobject: str, options: WriteOptions) -> None:
        """Refuse a bad assignment rule id before anything is saved: a refused write saves
        nothing."""
        if options.assignment and sobject in ASSIGNABLE_SOBJECTS:
            self._assignment_rule(sobject, options.assignment)

    def _run_assignment(self, sobject: str, record: dict[str, Any], assignment: str) -> None:
        rule = self._assignment_rule(sobject, assignment)
        if rule is None:
            return
        for entry in rule.entries:  # ordered; the first match wins
            if criteria_match(record, entry.criteria):
                record["OwnerId"] = entry.assign_to
                return

    def _assignment_rule(self, sobject: str, assignment: str) -> AssignmentRule | None:
        if assignment == "default":
            return next(
                (r for r in self.assignment_rules.values() if r.sobject == sobject and r.active),
                None,
            )
        else:
            if not is_valid_id(assignment) or not assignment.startswith(
                KEY_PREFIXES["AssignmentRule"]
            ):
                raise SalesforceError(
                    400, "MALFORMED_ID", f"Invalid assignment rule id: {assignment}"
                )
            rule = self.assignment_rules.get(to_18(assignment))
            if rule is None or rule.sobject != sobject:
                # UNCONFIRMED: the error for a well-formed id of a missing or foreign rule.
                raise SalesforceError(
                    400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"
                )
            return rule

    def _send_assignment_notifications(
        self, sobject: str, record: dict[str, Any], options: WriteOptions
    ) -> None:
        owner_id = record.get("OwnerId")
        recipients: list[str] = []
        if owner_id in self.users:
            recipients = [self.users[owner_id].email]
        elif owner_id in self.queues:
            queue = self.queues[owner_id]
            recipients = (
                [queue.email]
                if queue.email
                else [self.users[m].email for m in queue.member_ids if m in self.users]
            )
        subject = render_merge_fields(
            ASSIGNMENT_NOTIFICATION_SUBJECTS.get(sobject, f"{sobject} transferred to you."),
            sobject,
            record,
        )
        for to in recipients:
            # Emails to org users don't count against the external daily cap.
            self._log_email(
                kind="assignment_notification",
                to=to,
                from_address=ASSIGNMENT_NOTIFICATION_FROM,
                subject=subject,
                body=f"{sobject} {record.get('Name') or record['Id']} has been assigned to you.",
                template=None,
                sobject=sobject,
                record=record,
                options=options,
                status="sent",
            )

    def _send_auto_response(
        self, sobject: str, record: dict[str, Any], options: WriteOptions
    ) -> None:
        rule = next(
            (r for r in self.auto_response_rules.values() if r.sobject == sobject and r.active),
            None,
        )
        if rule is None:
            return
        entry = next((e for e in rule.entries if criteria_match(record, e.criteria)), None)
        if entry is None:
            return
        to = self._auto_response_address(sobject, record)
        if not to:
            return
        self._roll_day()
        over_cap = self._emails_today >= self.daily_email_limit
        if not over_cap:
            self._emails_today += 1
        subject = entry.subject or (
            "We've received your request - Case {!Case.CaseNumber}"
            if sobject == "Case"
            else "Thank you for your inquiry"
        )
        body = entry.body or (
            "Thanks for getting in touch. Your case is {!Case.CaseNumber}."
            if sobject == "Case"
            else "Hi {!Lead.FirstName}, thanks for getting in touch."
        )
        self._log_email(
            kind="auto_response",
            to=to,
            from_address=entry.from_address,
            subject=render_merge_fields(subject, sobject, record),
            body=render_merge_fields(body, sobject, record),
            template=entry.template,
            sobject=sobject,
            record=record,
            options=options,
            status="suppressed_daily_limit" if over_cap else "sent",
            reply_to=entry.reply_to,
            rule=rule.name,
        )

    def _auto_response_address(self, sobject: str, record: Mapping[str, Any]) -> str | None:
        if sobject == "Lead":
            return record.get("Email")
        if record.get("SuppliedEmail"):
            return record["SuppliedEmail"]
        contact = self.records["Contact"].get(record.get("ContactId") or "")
        return contact.get("Email") if contact else None

    def _log_email(
        self,
        *,
        kind: str,
        to: str,
        from_address: str,
        subject: str,
        body: str,
        template: str | None,
        sobject: str,
        record: Mapping[str, Any],
        options: WriteOptions,
        status: str,
        reply_to: str | None = None,
        rule: str | None = None,
    ) -> None:
        self.emails.append(
            {
                "id": new_id(KEY_PREFIXES["EmailMessage"]),
                "kind": kind,
                "status": status,
                "to": to,
                "from": from_address,
                "reply_to": reply_to,
                "subject": subject,
                "body": body,
                "template": template,
                "rule": rule,
                "record_id": record["Id"],
                "sobject": sobject,
                "api": options.api,
                "time": sf_datetime(),
            }
        )

    # ---------------------------------------------------------------- export

    def summary(self) -> dict[str, Any]:
        """The org as the control API reports it."""
        with self.lock:
            return {
                "org_id": self.id,
                "name": self.name,
                "kind": self.kind,
                "instance_url": self.state.instance_url,
                "login_url": self.state.login_urls.get(self.kind),
                "settings": self.settings(),
                "users": [asdict(u) | {"name": u.name} for u in self.users.values()],
                "queues": [asdict(q) for q in self.queues.values()],
                "assignment_rules": [asdict(r) for r in self.assignment_rules.values()],
                "auto_response_rules": [asdict(r) for r in self.auto_response_rules.values()],
                "duplicate_rules": [asdict(r) for r in self.duplicate_rules.values()],
                "faults": [asdict(f) for f in self.faults],
            }

    def settings(self) -> dict[str, Any]:
        return {
            "daily_api_limit": self.daily_api_limit,
            "daily_email_limit": self.daily_email_limit,
            "refresh_token_rotation": self.refresh_token_rotation,
            "auto_approve": self.auto_approve,
            "session_timeout_seconds": self.session_timeout_seconds,
            "default_lead_status": self.default_lead_status,
            "state_country_picklists": self.state_country_picklists,
            "default_country": self.default_country,
            "picklist_values": dict(self.picklist_values),
            "restricted_picklists": list(self.restricted_picklists),
            "email_address_internationalization": self.email_address_internationalization,
            "email_stored_lowercase": self.email_stored_lowercase,
            "count_utf16_code_units": self.count_utf16_code_units,
        }

    def update_settings(self, **settings: Any) -> None:
        """Change org settings; all are checked before any is applied (ValueError)."""
        with self.lock:
            known = self.settings()
            for key in settings:
                if key not in known:
                    raise ValueError(f"unknown setting {key}")
            if "picklist_values" in settings:
                settings["picklist_values"] = picklists.normalize_picklist_values(
                    settings["picklist_values"]
                )
            if "restricted_picklists" in settings:
                settings["restricted_picklists"] = picklists.normalize_restricted(
                    settings["restricted_picklists"]
                )
            if "default_country" in settings:
                settings["default_country"] = addresses.validate_default_country(
                    settings["default_country"]
                )
            merged = {**known, **settings}
            statuses = merged["picklist_values"].get("Lead.Status", schema.LEAD_STATUS_VALUES)
            if merged["default_lead_status"] not in statuses:
                raise ValueError("default_lead_status must be one of the Lead Status values")
            for key, value in settings.items():
                setattr(self, key, value)

    def schema_config(self) -> SchemaConfig:
        """The settings that shape this org's schema (describe, writes)."""
        with self.lock:
            return SchemaConfig(
                state_country_picklists=bool(self.state_country_picklists),
                default_country=self.default_country,
                picklist_values=dict(self.picklist_values),
                restricted_picklists=frozenset(self.restricted_picklists),
                default_lead_status=self.default_lead_status,
            )


# --------------------------------------------------------------------------- state


class EmulatorState:
    """Everything the emulator holds in memory: orgs, connected apps, OAuth grants."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        # Filled in by the server once it knows its ports.
        self.instance_url = "https://127.0.0.1"
        self.login_urls: dict[str, str] = {}
        self.reset()

    def reset(self) -> None:
        """Forget every org, app, token and log (the servers keep running)."""
        with self.lock:
            self.orgs: dict[str, Org] = {}
            self.apps: dict[str, ConnectedApp] = {}
            self.auth_codes: dict[str, AuthCode] = {}
            self.refresh_tokens: dict[str, RefreshToken] = {}
            self.access_tokens: dict[str, AccessToken] = {}
            self.pending_consents: dict[str, dict[str, Any]] = {}
            self.unmatched_calls: list[dict[str, Any]] = []
            # Query locators for nextRecordsUrl: locator -> (org id, records, batch size).
            self.query_cursors: dict[str, tuple[str, list[dict[str, Any]], int]] = {}
            self.auth_code_ttl_seconds: float = DEFAULT_AUTH_CODE_TTL_SECONDS

    # ---------------------------------------------------------------- setup

    def create_org(
        self,
        name: str = "Acme",
        *,
        kind: str = "production",
        users: list[dict[str, Any]] | None = None,
        **settings: Any,
    ) -> Org:
        """A new org with its users (an admin user when none are given)."""
        with self.lock:
            org = Org(self, name=name, kind=kind)
            self.orgs[org.id] = org
            slug = re.sub(r"[^a-z0-9]+", "", name.lower()) or "org"
            suffix = ".sandbox" if kind == "sandbox" else ""
            unique = secrets.token_hex(3)
            for spec in users or [
                {
                    "username": f"admin.{unique}@{slug}.example.com{suffix}",
                    "first_name": "Ada",
                    "last_name": "Admin",
                    "email": f"admin@{slug}.example.com",
                }
            ]:
                org.add_user(**spec)
            org.update_settings(**settings)
            return org

    def add_connected_app(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        callback_urls: list[str] | None = None,
        **options: Any,
    ) -> ConnectedApp:
        """Register (or replace) a connected app; missing credentials are generated."""
        with self.lock:
            app = ConnectedApp(
                client_id=client_id or "3MVG9" + secrets.token_urlsafe(60)[:80],
                client_secret=client_secret or secrets.token_hex(32).upper(),
                callback_urls=list(callback_urls or []),
                **options,
            )
            self.apps[app.client_id] = app
            return app

    def org(self, org_id: str) -> Org:
        with self.lock:
            org = self.orgs.get(to_18(org_id))
            if org is None:
                raise KeyError(org_id)
            return org

    def find_user_by_username(self, username: str) -> User | None:
        with self.lock:
            for org in self.orgs.values():
                for user in org.users.values():
                    if user.username.casefold() == username.casefold():
                        return user
            return None

    # ---------------------------------------------------------------- tokens

    def issue_access_token(
        self,
        *,
        client_id: str,
        org: Org,
        user: User,
        scopes: list[str],
        login_kind: str,
        refresh_token: str | None,
    ) -> AccessToken:
        with self.lock:
            # Real access tokens start with the org id and an exclamation mark.
            token = f"{org.id[:15]}!{secrets.token_urlsafe(72)}"
            now = time.time()
            access = AccessToken(
                token=token,
                client_id=client_id,
                org_id=org.id,
                user_id=user.id,
                scopes=list(scopes),
                login_kind=login_kind,
                issued_at=now,
                refresh_token=refresh_token,
                expires_at=now + org.session_timeout_seconds
                if org.session_timeout_seconds
                else None,
            )
            self.access_tokens[token] = access
            return access

    def issue_refresh_token(
        self, *, client_id: str, org: Org, user: User, scopes: list[str], login_kind: str
    ) -> RefreshToken:
        with self.lock:
            token = "5Aep861" + secrets.token_urlsafe(64)
            refresh = RefreshToken(token, client_id, org.id, user.id, list(scopes), login_kind)
            self.refresh_tokens[token] = refresh
            return refresh

    def expire_access_tokens(self, org_id: str) -> int:
        """Make every current access token of the org fail with INVALID_SESSION_ID."""
        with self.lock:
            org = self.org(org_id)
            count = 0
            for access in self.access_tokens.values():
                if access.org_id == org.id and not access.expired:
                    access.expired = True
                    count += 1
            return count

    def revoke_refresh_tokens(self, org_id: str) -> int:
        """Revoke every refresh token of the org (and the access tokens issued from them)."""
        with self.lock:
            org = self.org(org_id)
            count = 0
            for refresh in self.refresh_tokens.values():
                if refresh.org_id == org.id and not refresh.revoked:
                    self.revoke_refresh_token(refresh)
                    count += 1
            return count

    def revoke_refresh_token(self, refresh: RefreshToken) -> None:
        with self.lock:
            refresh.revoked = True
            for access in self.access_tokens.values():
                if access.refresh_token == refresh.token:
                    access.revoked = True

    def authenticate(self, access_token: str | None, *, need_api: bool = True) -> AccessToken:
        """The valid access token record, or SalesforceError INVALID_SESSION_ID (401)."""
        with self.lock:
            access = self.access_tokens.get(access_token or "")
            if access is None or not access.valid(time.time()) or access.org_id not in self.orgs:
                raise invalid_session()
            if need_api and not API_SCOPES & set(access.scopes):
                raise SalesforceError(
                    401,
                    "INVALID_SESSION_ID",
                    "This session is not valid for use with the API",
                )
            return access

    # ---------------------------------------------------------------- calls

    def _append_call(self, org: Org | None, entry: dict[str, Any]) -> None:
        """Add an entry to the org's call log (or to the unmatched calls), oldest trimmed."""
        log = org.calls if org is not None else self.unmatched_calls
        log.append(entry)
        if len(log) > MAX_CALL_LOG_ENTRIES:
            del log[: len(log) - MAX_CALL_LOG_ENTRIES]

    def log_oauth_call(
        self,
        *,
        method: str,
        path: str,
        headers: Mapping[str, str],
        org_id: str | None,
        user_id: str | None,
        grant_type: str | None,
        client_auth: str | None,
        status: int,
        error: str | None,
        duration_ms: float,
    ) -> None:
        """Record a token or revoke request in the call log of the org it concerns.

        ``api`` is "oauth", so filters on "rest"/"soap" skip it; it is not counted against the
        daily API requests (OAUTH_CALLS_COUNT_AGAINST_API_LIMIT). No token, code, verifier or
        secret is kept: only the grant type, how the client authenticated, and the outcome.
        """
        logged = {name: headers[name] for name in LOGGED_HEADERS if headers.get(name) is not None}
        authorization = headers.get("Authorization")
        logged["Authorization"] = (
            f"{authorization.partition(' ')[0]} <redacted>" if authorization else None
        )
        entry: dict[str, Any] = {
            "id": secrets.token_hex(6),
            "time": sf_datetime(),
            "api": "oauth",
            "method": method.upper(),
            "path": path,  # never the query string: it may carry the token being revoked
            "headers": logged,
            "status": status,
            "error": error,
            "fault": None,
            "org_id": org_id,
            "user_id": user_id,
            "grant_type": grant_type,
            "client_auth": client_auth,
            "duration_ms": duration_ms,
        }
        with self.lock:
            org = self.orgs.get(org_id or "")
            if org is not None and OAUTH_CALLS_COUNT_AGAINST_API_LIMIT:
                org._roll_day()
                org.api_used += 1
            self._append_call(org, entry)

    def begin_call(
        self,
        *,
        access_token: str | None,
        api: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
    ) -> CallContext:
        """Start one counted API call.

        Authenticates (SalesforceError INVALID_SESSION_ID, 401), checks and counts the org's daily
        API requests (REQUEST_LIMIT_EXCEEDED, 403), records the call in the org's call log, then
        applies injected faults: latency, SERVER_UNAVAILABLE / UNABLE_TO_LOCK_ROW errors, or
        DropConnection. The caller completes the log entry with ``ctx.finish(status)``.
        """
        entry: dict[str, Any] = {
            "id": secrets.token_hex(6),
            "time": sf_datetime(),
            "api": api,
            "method": method.upper(),
            "path": path,
            "headers": {
                name: headers[name] for name in LOGGED_HEADERS if headers.get(name) is not None
            },
            "status": None,
            "fault": None,
        }
        entry["headers"]["Authorization"] = "Bearer <redacted>" if access_token else None
        started = time.monotonic()
        with self.lock:
            access = self.access_tokens.get(access_token or "")
            org = self.orgs.get(access.org_id) if access else None
            try:
                access = self.authenticate(access_token)
            except SalesforceError as exc:
                entry.update(status=exc.status_code, error=exc.error_code, org_id=None)
                self._append_call(org, entry)
                raise
            org = self.orgs[access.org_id]
            user = org.users[access.user_id]
            entry.update(org_id=org.id, user_id=user.id)
            self._append_call(org, entry)
            org._roll_day()
            if org.api_used >= org.daily_api_limit:
                entry.update(status=403, error="REQUEST_LIMIT_EXCEEDED")
                raise SalesforceError(
                    403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."
                )
            org.api_used += 1
            faults = org._pick_faults(api, method, path)
            ctx = CallContext(
                org=org,
                user=user,
                entry=entry,
                access_token=access,
                _started=started,
                _limit=(org.api_used, org.daily_api_limit),
            )
            if faults:
                entry["fault"] = ",".join(f.kind for f in faults)
        # Faults act outside the lock so a slow call never stalls the others.
        delay = sum(f.latency_ms for f in faults if f.kind == "latency") / 1000
        if delay:
            time.sleep(delay)
        for fault in faults:
            if fault.kind == "slow_response":
                ctx._after_delay_s += fault.latency_ms / 1000
            elif fault.kind == "drop_after_processing":
                ctx._drop_after = True
            elif fault.kind == "drop_connection":
                ctx.finish(0)
                raise DropConnection("injected fault: drop_connection")
            elif fault.kind == "server_unavailable":
                ctx.finish(503)
                raise SalesforceError(503, "SERVER_UNAVAILABLE", "Server Unavailable")
            elif fault.kind == "unable_to_lock_row":
                ctx.finish(UNABLE_TO_LOCK_ROW_STATUS)
                raise SalesforceError(
                    UNABLE_TO_LOCK_ROW_STATUS,
                    "UNABLE_TO_LOCK_ROW",
                    "unable to obtain exclusive access to this record or 1 records: "
                    + new_id(KEY_PREFIXES["Lead"]),
                    [],
                )
            elif fault.kind == "request_limit_exceeded":
                ctx.finish(403)
                raise SalesforceError(
                    403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."
                )
        return ctx
