"""Writes of the Salesforce card: a source's own settings.

`salesforce_settings_update` is the one way settings change (the card's form, the admin and tests
call it). `header_options_resolve` decides what the "Advanced: API headers" string becomes when
the card submits both that text and the automation switches, which are two views of one value:

* the text is authoritative when it was changed (it differs from what is stored): it is parsed,
  and the switches are read back from it;
* otherwise the switches rewrite their own parts of the stored string (EmailHeader's
  triggerAutoResponseEmail and triggerUserEmail, AssignmentRuleHeader) and every other header
  and property is kept.

Whatever was submitted, what is stored is the canonical string of
`integrations.salesforce.api.headers`, so the card always shows the two views in agreement.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from simple_salesforce.format import format_soql

from autorespond.models import Source
from integrations.salesforce.api.errors import SalesforceError
from integrations.salesforce.api.headers import (
    Assignment,
    HeaderOptionError,
    SoapHeaders,
    parse_header_options,
)
from integrations.salesforce.models import RecordType, SalesforceConnection, SalesforceSettings
from integrations.salesforce.oauth.tokens import salesforce_client
from integrations.salesforce.sync.scheduling import sync_resume_waiting_for_contact_info

logger = logging.getLogger(__name__)

# The settings a source owns (and keeps while it inherits, for when it stops inheriting).
OWN_SETTING_FIELDS = (
    "enabled",
    "record_type",
    "send_job_description",
    "only_with_contact_info",
    "only_new_leads",
    "include_source_name",
    "header_options",
)
SETTING_FIELDS = ("inherit_from_parent", *OWN_SETTING_FIELDS)


@dataclass(frozen=True)
class AutomationSwitches:
    """The card's three switches for Salesforce's own automation on the records we create."""

    auto_response: bool
    assignment: Assignment  # None (off), "default", or an AssignmentRule id
    notify_owner: bool

    @classmethod
    def of(cls, headers: SoapHeaders) -> AutomationSwitches:
        return cls(
            auto_response=headers.auto_response,
            assignment=headers.assignment,
            notify_owner=headers.notify_owner,
        )


@dataclass(frozen=True)
class ResolvedHeaderOptions:
    """The canonical option string to store, and whether the switches' own changes were dropped
    because the text, changed in the same submission, said something else."""

    option_string: str
    switches_overridden: bool


def header_options_resolve(
    *, stored: str, submitted_text: str, switches: AutomationSwitches
) -> ResolvedHeaderOptions:
    """Combine a submitted option string and submitted switches into the string to store.

    Raises HeaderOptionError when the submitted text is invalid or the switches name an invalid
    assignment rule id. `stored` is assumed valid (it was validated when saved); if it is not, it
    is treated as empty rather than blocking the form.
    """
    try:
        stored_headers = parse_header_options(stored)
    except HeaderOptionError:
        stored_headers = SoapHeaders()
    before = AutomationSwitches.of(stored_headers)

    if submitted_text.strip() != stored.strip():
        headers = parse_header_options(submitted_text)
        switches_changed = switches != before
        return ResolvedHeaderOptions(
            option_string=headers.to_option_string(),
            switches_overridden=switches_changed and switches != AutomationSwitches.of(headers),
        )

    headers = stored_headers
    if switches != before:
        headers = SoapHeaders.from_switches(
            auto_response=switches.auto_response,
            assignment=switches.assignment,
            notify_owner=switches.notify_owner,
            base=stored_headers,
        )
    return ResolvedHeaderOptions(
        option_string=headers.to_option_string(), switches_overridden=False
    )


def salesforce_settings_update(
    *, source: Source, data: dict[str, Any], user: AbstractBaseUser | None
) -> SalesforceSettings:
    """Change the fields of `source`'s own settings named in `data`; create the row if needed.

    Keys of `data` are SalesforceSettings field names (see SETTING_FIELDS); fields not named keep
    their value. Raises ValidationError (a dict of field errors) and saves nothing when:
    a key is unknown; "Inherit from parent" is turned on for a source without a parent; own
    settings are changed while the source inherits (turn inheritance off first); the option
    string is invalid. The stored option string is always the canonical one.
    """
    unknown = sorted(set(data) - set(SETTING_FIELDS))
    if unknown:
        raise ValidationError({name: "Not a Salesforce setting." for name in unknown})

    with transaction.atomic():
        row = SalesforceSettings.objects.select_for_update().filter(source=source).first()
        if row is None:
            row = SalesforceSettings(source=source)

        inherit = data.get("inherit_from_parent", row.inherit_from_parent)
        if inherit and source.parent_id is None:
            raise ValidationError(
                {"inherit_from_parent": "Only a location with a parent can inherit its settings."}
            )
        changing_own = {
            name for name in OWN_SETTING_FIELDS if name in data and data[name] != getattr(row, name)
        }
        if inherit and row.inherit_from_parent and changing_own:
            raise ValidationError(
                {
                    name: "This source inherits from its parent: turn off Inherit from parent to "
                    "change its own settings."
                    for name in sorted(changing_own)
                }
            )

        if "header_options" in data:
            try:
                data = {
                    **data,
                    "header_options": parse_header_options(
                        data["header_options"] or ""
                    ).to_option_string(),
                }
            except HeaderOptionError as error:
                raise ValidationError(
                    {"header_options": [str(problem) for problem in error.problems]}
                ) from error
        if "record_type" in data and data["record_type"] not in RecordType.values:
            raise ValidationError({"record_type": "Choose Leads or Contacts."})

        changed = sorted(name for name in data if data[name] != getattr(row, name))
        for name, value in data.items():
            setattr(row, name, value)
        row.full_clean(exclude=["source"])
        row.save()
        if {"only_with_contact_info", "inherit_from_parent"} & set(changed):
            # The contact-info gate may have opened for this source or those inheriting from it.
            sync_resume_waiting_for_contact_info(source=source)

    logger.info(
        "salesforce settings of source %s changed by user %s: %s",
        source.slug,
        getattr(user, "pk", None),
        ", ".join(changed) or "nothing",
    )
    return row


# --------------------------------------------------------------------------- assignment rules

# How long the card reuses the org's list of rules (seconds): a card view should not cost an API
# call each time, and a rule activated meanwhile is found by the fresh read a save makes.
ASSIGNMENT_RULES_CACHE_SECONDS = 300
NOT_CONNECTED_RULES = "connect Salesforce first, then choose one of your org's rules."


@dataclass(frozen=True)
class AssignmentRuleChoice:
    """One AssignmentRule of the org: its 18-character Id, Name, SobjectType and whether it is
    the active (default) one."""

    id: str
    name: str
    sobject: str
    active: bool = False

    @property
    def label(self) -> str:
        return f"{self.name} (active)" if self.active else self.name


@dataclass(frozen=True)
class OrgAssignmentRules:
    """The org's assignment rules, or why they could not be read (`readable` False)."""

    rules: tuple[AssignmentRuleChoice, ...] = ()
    readable: bool = True
    problem: str = ""

    @classmethod
    def unread(cls, problem: str) -> OrgAssignmentRules:
        return cls(readable=False, problem=problem)

    def of(self, sobject: str) -> list[AssignmentRuleChoice]:
        return [rule for rule in self.rules if rule.sobject == sobject]

    def find(self, rule_id: str) -> AssignmentRuleChoice | None:
        """The rule with this id, 15 or 18 characters (an 18-character id is the 15-character,
        case-sensitive id plus a 3-character suffix)."""
        key = rule_id.strip()[:15]
        if len(key) != 15:
            return None
        return next((rule for rule in self.rules if rule.id[:15] == key), None)


def org_assignment_rules(
    *, connection: SalesforceConnection | None, fresh: bool = False
) -> OrgAssignmentRules:
    """The Lead (and, should the org have them, Contact) assignment rules of the connection's
    org, read with one SOQL query on AssignmentRule and cached for ASSIGNMENT_RULES_CACHE_SECONDS
    (`fresh` reads again). Never raises: an org that cannot be asked (not connected, waiting for
    reconnect, unavailable, any Salesforce error) gives `readable=False` and the reason in words.

    Every rule is offered, the active one marked: an org has at most one active rule per object
    (the default one), and AssignmentRuleHeader.assignmentRuleId "can be active or inactive"
    (SOAP API Developer Guide, AssignmentRuleHeader). Salesforce keeps assignment rules for Leads
    and Cases only (AssignmentRule.SobjectType, Object Reference): Case rules are left out, and a
    Contacts card has none to offer.
    """
    if connection is None or not connection.is_usable:
        return OrgAssignmentRules.unread(NOT_CONNECTED_RULES)
    if connection.unavailable_since is not None:
        return OrgAssignmentRules.unread("wait until Salesforce is available again.")
    key = f"salesforce:assignment-rules:{connection.pk}:{connection.org_id}"
    if not fresh:
        cached = cache.get(key)
        if cached is not None:
            return OrgAssignmentRules(rules=tuple(AssignmentRuleChoice(*row) for row in cached))
    soql = format_soql(
        "SELECT Id, Name, SobjectType, Active FROM AssignmentRule "
        "WHERE SobjectType IN {} ORDER BY Name",
        [RecordType.LEAD.value, RecordType.CONTACT.value],
    )
    try:
        records = salesforce_client(connection).query(soql)
    except SalesforceError as error:
        logger.info("assignment rules of org %s not read: %s", connection.org_id, error.error_code)
        return OrgAssignmentRules.unread(
            f"Salesforce must list your org's rules, and it did not answer ({error.error_code}). "
            "Try again in a moment."
        )
    rules = tuple(
        AssignmentRuleChoice(
            r["Id"], r.get("Name") or r["Id"], r.get("SobjectType") or "", bool(r.get("Active"))
        )
        for r in records
    )
    cache.set(
        key,
        [(r.id, r.name, r.sobject, r.active) for r in rules],
        ASSIGNMENT_RULES_CACHE_SECONDS,
    )
    return OrgAssignmentRules(rules=rules)
