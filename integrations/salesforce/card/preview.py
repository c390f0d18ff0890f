""" "Test with a sample inquiry": what the sync would do with an inquiry, asking Salesforce only
read questions and writing nothing, here or there.

`preview_inquiry` walks the sync's own steps on the read-only side: the effective settings and
gates, the person's match keys (`matching.person_keys`), the one Composite look-up of people and
Accounts and the choice among them (`matching.lookup_people_and_accounts`, the same function
`planning.plan_writes` calls), and the fields the sync would send (`items.SyncItem.fields_for`,
i.e. `mapping.salesforce_fields`). It does not claim person keys, take locks or mark a pending
create: those are the write path's (`sync.planning` / `sync.writing`), and a preview must leave no
trace.

A preview costs at most one API call (the look-up), and none when the inquiry has no email,
phone or company, or is already linked to its record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autorespond.models import Inquiry, Source
from integrations.salesforce.api.errors import SalesforceError
from integrations.salesforce.api.headers import HeaderOptionError, parse_header_options
from integrations.salesforce.card.plain_errors import explain_error
from integrations.salesforce.models import InquirySync
from integrations.salesforce.oauth.tokens import salesforce_client
from integrations.salesforce.selectors import effective_salesforce_settings
from integrations.salesforce.sync.items import SyncItem, is_linked
from integrations.salesforce.sync.mapping import (
    CONTACT,
    LEAD,
    PLACEHOLDER,
    account_fields,
    account_name,
)
from integrations.salesforce.sync.matching import (
    Match,
    MatchRequest,
    account_key,
    lookup_people_and_accounts,
    person_keys,
)

CREATE, UPDATE, SKIP, WAIT, NOTHING = "create", "update", "skip", "wait", "nothing"

_MATCH_REASONS = {
    "email": "same email address",
    "phone": "same phone number",
    "linked": "this inquiry was sent to it before",
}


@dataclass(frozen=True)
class PreviewField:
    name: str
    value: str


@dataclass
class Preview:
    """What would happen. `action` is create, update, skip, wait (a gate holds it) or nothing
    (it cannot be previewed: `stopped` says why)."""

    action: str = NOTHING
    sobject: str = ""
    summary: str = ""
    stopped: str = ""
    notes: list[str] = field(default_factory=list)  # gates that hold it back today
    match_id: str = ""
    match_url: str = ""
    match_reason: str = ""
    account: str = ""  # a Contact's company: the Account it would join or create
    fields: list[PreviewField] = field(default_factory=list)
    api: str = ""  # "REST" or "SOAP"
    emails: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # missing, cut or not sent
    api_calls: int = 0


def record_url(instance_url: str, sobject: str, record_id: str) -> str:
    """Salesforce's Lightning record page on the org's instance:
    ``<instance>/lightning/r/<SObject>/<Id>/view`` (the URL Lightning Experience uses)."""
    return f"{instance_url.rstrip('/')}/lightning/r/{sobject}/{record_id}/view"


def preview_inquiry(*, source: Source, inquiry: Inquiry, sync: InquirySync | None) -> Preview:
    """What sending `inquiry` (saved or a typed, unsaved sample) from `source` would do now.

    Never writes and never raises for a Salesforce error: the error is the preview's answer.
    """
    effective = effective_salesforce_settings(source=source)
    settings = effective.settings
    preview = Preview()
    if not settings.enabled:
        preview.notes.append(
            "Enable is off, so nothing is sent today. Once it is on, this is what would happen."
        )
    connection = effective.usable_connection
    if connection is None:
        preview.stopped = (
            "Salesforce is not connected"
            if effective.connection is None
            else "Salesforce no longer accepts the connection"
        ) + ": connect it to test what would happen."
        return preview
    linked = sync is not None and is_linked(sync, connection.org_id)
    if settings.only_with_contact_info and not inquiry.has_contact_info and not linked:
        preview.action = WAIT
        preview.summary = (
            "It would wait: Create customer only when contact info is captured is on and this "
            "inquiry has no phone number or email yet."
        )
        return preview
    try:
        headers = parse_header_options(settings.header_options)
    except HeaderOptionError as error:
        preview.stopped = f"The Advanced API headers of the card are not valid: {error.error}"
        return preview

    region = source.phone_region or "US"
    item = SyncItem(
        sync=sync or InquirySync(inquiry=inquiry),
        inquiry=inquiry,
        settings=settings,
        headers=headers,
        keys=person_keys(email=inquiry.email, phone=inquiry.phone, region=region),
        source_name=source.name,
        region=region,
    )
    record_type = settings.record_type
    if record_type == CONTACT and account_name(inquiry.company or ""):
        item.account_name = account_fields(company=inquiry.company).values["Name"]
        item.account_key = account_key(item.account_name)

    client = salesforce_client(connection)
    match: Match | None = None
    account_id = ""
    if linked:
        assert sync is not None
        match = Match(sync.sobject, sync.record_id, "linked")
    else:
        try:
            results, accounts = lookup_people_and_accounts(
                client=client,
                requests=[
                    MatchRequest(key=0, email=item.keys.email, phone=item.keys.phone, region=region)
                ],
                account_names=[item.account_name] if item.account_name else [],
            )
        except SalesforceError as error:
            plain = explain_error(error.error_code, error.message)
            preview.stopped = f"Salesforce could not be asked: {plain.meaning} ({error.error_code})"
            preview.api_calls = client.api_calls
            return preview
        match = results[0].match
        account_id = accounts.get(item.account_key, "")
    preview.api_calls = client.api_calls

    if match is None:
        preview.action, preview.sobject = CREATE, record_type
        preview.summary = f"It would create a new {record_type}: no {LEAD} or {CONTACT} has "
        preview.summary += (
            "this email or phone." if item.keys.keys else "an email or phone to match on."
        )
    else:
        preview.sobject, preview.match_id = match.sobject, match.record_id
        preview.match_url = record_url(connection.instance_url, match.sobject, match.record_id)
        reason = _MATCH_REASONS.get(match.reason, match.reason)
        if match.converted_lead_id:
            reason += f", the Contact of converted Lead {match.converted_lead_id}"
        preview.match_reason = reason
        if settings.only_new_leads and not linked:
            preview.action = SKIP
            preview.summary = (
                f"It would be skipped: {match.sobject} {match.record_id} already exists ({reason})"
                " and Create only for new leads is on."
            )
            return preview
        preview.action = UPDATE
        preview.summary = f"It would update {match.sobject} {match.record_id} ({reason})."

    mapped = item.fields_for(preview.sobject, for_update=preview.action == UPDATE)
    preview.fields = [PreviewField(name, value) for name, value in mapped.values.items()]
    if preview.action == CREATE and item.account_name:
        preview.account = (
            f"joins the Account {account_id} of “{item.account_name}”"
            if account_id
            else f"creates the Account “{item.account_name}” with it"
        )
    preview.api = "SOAP" if headers.needs_soap else "REST"
    preview.emails = _emails(headers, preview.action, preview.sobject)
    preview.left_out = _left_out(inquiry, item, mapped.values, mapped.truncated, preview.action)
    return preview


def _emails(headers, action: str, sobject: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Which of Salesforce's emails the write would trigger (SALESFORCE.md section 7)."""
    emails = []
    if action == CREATE and headers.auto_response:
        if sobject == LEAD:
            emails.append(
                "Salesforce's auto-response email to the customer, if one of your org's "
                "auto-response rules matches"
            )
        else:
            emails.append(
                "No auto-response email: Salesforce's auto-response rules answer new Leads only"
            )
    assigns = action == CREATE and headers.assignment is not None
    if headers.notify_owner:
        emails.append(
            "An email to the owner the assignment rule picks"
            if assigns
            else "No owner email: no assignment rule runs on this write"
        )
    if headers.email is not None and headers.email.trigger_other_email:
        emails.append("Emails your org's automation sends to addresses outside the org")
    if not emails:
        emails.append("None")
    return emails


def _left_out(inquiry, item, values, truncated, action) -> list[str]:  # type: ignore[no-untyped-def]
    """What is missing, cut or not sent, in words (never a value: it is personal data)."""
    notes = []
    if not item.keys.keys:
        notes.append(
            "No email or phone number: Salesforce cannot match this person later, so every "
            "inquiry of theirs would be a new record."
        )
    elif inquiry.email and not item.keys.email:
        notes.append("The email address is not valid, so it is not used to match.")
    for name, value in values.items():
        if value == PLACEHOLDER:
            notes.append(f"{name} is required by Salesforce and missing: sent as {PLACEHOLDER}.")
    for cut in truncated:
        if cut.omitted:
            notes.append(
                f"{cut.field} is longer than Salesforce allows ({cut.max_length}): left out."
            )
        else:
            notes.append(f"{cut.field} is cut to Salesforce's {cut.max_length} characters.")
    if (inquiry.job_description or "").strip() and not item.settings.send_job_description:
        notes.append("The job description is not sent: Include job description is off.")
    if action == UPDATE:
        notes.append("An update sends only the values this inquiry has; it never blanks a field.")
    return notes
