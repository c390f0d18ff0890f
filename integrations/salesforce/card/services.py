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
from django.core.exceptions import ValidationError
from django.db import transaction

from autorespond.models import Source
from integrations.salesforce.api.headers import (
    Assignment,
    HeaderOptionError,
    SoapHeaders,
    parse_header_options,
)
from integrations.salesforce.models import RecordType, SalesforceSettings
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
    "lead_source",
    "lead_status",
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
                raise ValidationError({"header_options": str(error)}) from error
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
