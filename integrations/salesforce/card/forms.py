"""The Salesforce card's settings form: the product page's labels, defaults and explanations.

The form turns the submitted switches and the "Advanced: API headers" text into the data of
`services.salesforce_settings_update`; `services.header_options_resolve` decides which one wins
when both changed (the text, when it was edited). Option-string errors keep their `Tip:` lines in
`header_tips`, so the page shows them next to the field they belong to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms

from autorespond.models import Source
from integrations.salesforce.api.headers import HeaderOptionError, parse_header_options
from integrations.salesforce.card.picklists import LeadPicklistChoices
from integrations.salesforce.card.services import (
    OWN_SETTING_FIELDS,
    AutomationSwitches,
    header_options_resolve,
)
from integrations.salesforce.models import RecordType, SalesforceSettings


@dataclass(frozen=True)
class Explanation:
    """What an option does when on and when off, in the product page's words."""

    on: str
    off: str


# Seed 004's one-line explanations, per form field.
EXPLANATIONS: dict[str, Explanation] = {
    "enabled": Explanation(
        on="Inquiries of this source are sent to Salesforce.",
        off="Nothing is sent to Salesforce until Enable is on.",
    ),
    "inherit_from_parent": Explanation(
        on="This location uses the parent's Salesforce connection and settings.",
        off="This location's own connection and settings apply (they override the parent's).",
    ),
    "send_job_description": Explanation(
        on="The description of the inquiry (what the customer is asking about, the job details "
        "captured in the conversation) is written into the Salesforce record's Description field.",
        off="The Description field is left alone. Only contact info and standard fields are "
        "populated.",
    ),
    "only_with_contact_info": Explanation(
        on="The Salesforce record is only created after a phone number or email is collected.",
        off="The record is created at first contact, even before contact info is shared.",
    ),
    "only_new_leads": Explanation(
        on="If a matching Salesforce record already exists (on email or phone), it's left alone.",
        off="Existing records are updated with any new info Auto-Respond has.",
    ),
    "include_source_name": Explanation(
        on="The source name is added to the Salesforce record. It typically shows up on the Lead "
        "Source or within the Description.",
        off="Source isn't included.",
    ),
    "auto_response": Explanation(
        on="Salesforce runs its auto-response rules for each new record "
        "(EmailHeader.triggerAutoResponseEmail).",
        off="Salesforce sends no auto-response email.",
    ),
    "notify_owner": Explanation(
        on="Salesforce emails the user who owns the record, for example after an assignment rule "
        "gives it to them (EmailHeader.triggerUserEmail).",
        off="Salesforce sends its users no email about these records.",
    ),
}

RECORD_TYPE_HELP = {
    RecordType.LEAD: "The standard choice for most sales orgs. Every inquiry becomes a new "
    "Salesforce Lead that your team can qualify and convert.",
    RecordType.CONTACT: "Use this if your Salesforce setup skips the Lead object and goes "
    "straight to Contacts/Accounts.",
}

ASSIGNMENT_OFF, ASSIGNMENT_DEFAULT, ASSIGNMENT_RULE = "off", "default", "rule"
ASSIGNMENT_CHOICES = [
    (ASSIGNMENT_OFF, "Off: the record stays with the connected Salesforce user"),
    (ASSIGNMENT_DEFAULT, "The default rule: the org's active assignment rule picks the owner"),
    (ASSIGNMENT_RULE, "A specific rule:"),
]

HEADER_OPTIONS_HELP = (
    "SOAP headers in the form HeaderName,property,value;HeaderName,property,value. The switches "
    "above and this text are one setting: if you edit this text, it decides (and the switches "
    "show what it says); otherwise the switches change their own parts and keep the rest."
)


def _checkbox(label: str) -> forms.BooleanField:
    return forms.BooleanField(label=label, required=False)


class SalesforceSettingsForm(forms.Form):
    """A source's own settings, or, while it inherits, only the switch to stop inheriting.

    `source` is the source being edited and `current` its own settings row (saved or not).
    """

    inherit_from_parent = _checkbox("Inherit from parent")
    enabled = _checkbox("Enable")
    record_type = forms.ChoiceField(
        label="Record type",
        choices=RecordType.choices,
        widget=forms.RadioSelect,
        error_messages={
            "required": "Choose Leads or Contacts.",
            "invalid_choice": "Choose Leads or Contacts.",
        },
    )
    send_job_description = _checkbox("Include job description")
    only_with_contact_info = _checkbox("Create customer only when contact info is captured")
    only_new_leads = _checkbox("Create only for new leads")
    include_source_name = _checkbox("Include source name")
    auto_response = _checkbox("Send Salesforce auto-response email")
    assignment = forms.ChoiceField(
        label="Run assignment rules",
        choices=ASSIGNMENT_CHOICES,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose how assignment rules run."},
    )
    assignment_rule_id = forms.CharField(
        label="Assignment rule ID",
        required=False,
        max_length=18,
        widget=forms.TextInput(attrs={"placeholder": "01Q…", "spellcheck": "false"}),
    )
    notify_owner = _checkbox("Notify the assigned owner by email")
    # Issue 13: the org's own values (card.picklists); blank = the org's default.
    lead_source = forms.ChoiceField(label="Lead source", required=False)
    lead_status = forms.ChoiceField(label="Lead status", required=False)
    header_options = forms.CharField(
        label="Advanced: API headers",
        required=False,
        strip=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono"}),
        help_text=HEADER_OPTIONS_HELP,
    )

    def __init__(
        self,
        *args: Any,
        source: Source,
        current: SalesforceSettings,
        picklists: LeadPicklistChoices | None = None,
        **kwargs: Any,
    ) -> None:
        self.source = source
        self.current = current
        self.inheriting = bool(source.parent_id and current.inherit_from_parent)
        kwargs.setdefault("initial", self._initial_from(current))
        super().__init__(*args, **kwargs)
        # Field name -> the Tip: lines of its option-string error.
        self.header_tips: dict[str, list[str]] = {}
        # Set by clean() when the edited text overrode switch changes made in the same save.
        self.switches_overridden = False
        self.picklists = picklists
        for name in ("lead_source", "lead_status"):
            chosen = getattr(current, name)
            listed = getattr(picklists, name) if picklists else [("", "Your org's default")]
            if chosen and chosen not in {value for value, _ in listed}:
                listed = [*listed, (chosen, chosen)]
            self.fields[name].choices = listed  # type: ignore[attr-defined]
        if source.parent_id is None:
            del self.fields["inherit_from_parent"]
        if self.inheriting:
            for name in list(self.fields):
                if name != "inherit_from_parent":
                    del self.fields[name]

    @staticmethod
    def _initial_from(current: SalesforceSettings) -> dict[str, Any]:
        initial: dict[str, Any] = {name: getattr(current, name) for name in OWN_SETTING_FIELDS}
        initial["inherit_from_parent"] = current.inherit_from_parent
        try:
            switches = AutomationSwitches.of(parse_header_options(current.header_options))
        except HeaderOptionError:
            switches = AutomationSwitches(auto_response=False, assignment=None, notify_owner=False)
        initial["auto_response"] = switches.auto_response
        initial["notify_owner"] = switches.notify_owner
        if switches.assignment is None:
            initial["assignment"] = ASSIGNMENT_OFF
        elif switches.assignment == "default":
            initial["assignment"] = ASSIGNMENT_DEFAULT
        else:
            initial["assignment"] = ASSIGNMENT_RULE
            initial["assignment_rule_id"] = switches.assignment
        return initial

    def _add_header_error(self, field: str, error: HeaderOptionError) -> None:
        self.add_error(field, error.error)
        self.header_tips[field] = error.tips

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.inheriting or "assignment" not in cleaned:
            return cleaned
        rule_id = (cleaned.get("assignment_rule_id") or "").strip()
        cleaned["assignment_rule_id"] = rule_id
        assignment: str | None = None
        if cleaned["assignment"] == ASSIGNMENT_DEFAULT:
            assignment = "default"
        elif cleaned["assignment"] == ASSIGNMENT_RULE:
            if not rule_id:
                self.add_error(
                    "assignment_rule_id",
                    "Enter the ID of the assignment rule (15 or 18 characters, starting with 01Q).",
                )
                return cleaned
            assignment = rule_id
        switches = AutomationSwitches(
            auto_response=cleaned.get("auto_response", False),
            assignment=assignment,
            notify_owner=cleaned.get("notify_owner", False),
        )
        text = cleaned.get("header_options") or ""
        text_edited = text.strip() != self.current.header_options.strip()
        try:
            resolved = header_options_resolve(
                stored=self.current.header_options, submitted_text=text, switches=switches
            )
        except HeaderOptionError as error:
            # An edited text is what failed; otherwise only the rule id can have.
            self._add_header_error("header_options" if text_edited else "assignment_rule_id", error)
            return cleaned
        cleaned["header_options"] = resolved.option_string
        self.switches_overridden = resolved.switches_overridden
        return cleaned

    def settings_data(self) -> dict[str, Any]:
        """The data for `salesforce_settings_update`, once the form is valid."""
        names = ("inherit_from_parent",) if self.inheriting else OWN_SETTING_FIELDS
        data = {name: self.cleaned_data[name] for name in names}
        if "inherit_from_parent" in self.fields:
            data["inherit_from_parent"] = self.cleaned_data["inherit_from_parent"]
        return data

    # --- What the template iterates over --------------------------------------------------

    def option_rows(self) -> list[tuple[forms.BoundField, Explanation]]:
        """The four on/off data options, each with its explanation."""
        names = (
            "send_job_description",
            "only_with_contact_info",
            "only_new_leads",
            "include_source_name",
        )
        return [(self[name], EXPLANATIONS[name]) for name in names if name in self.fields]
