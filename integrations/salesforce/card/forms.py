"""The Salesforce card's settings form: the product page's labels, defaults and explanations.

The form turns the submitted switches and the "Advanced: API headers" text into the data of
`services.salesforce_settings_update`; `services.header_options_resolve` decides which one wins
when both changed (the text, when it was edited). Every option-string problem keeps its `Tip:`
lines in `header_problems`, so the page shows them all next to the field they belong to. A specific
assignment rule must be one of the org's rules for the record type (read from Salesforce).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django import forms

from autorespond.models import Inquiry, Source
from autorespond.selectors import inquiries_recent
from integrations.salesforce.api.headers import HeaderOptionError, SoapHeaders, parse_header_options
from integrations.salesforce.card.services import (
    NOT_CONNECTED_RULES,
    OWN_SETTING_FIELDS,
    AutomationSwitches,
    OrgAssignmentRules,
    header_options_resolve,
)
from integrations.salesforce.models import InquirySync, RecordType, SalesforceSettings


@dataclass(frozen=True)
class Explanation:
    """What an option does when on and when off, in the product page's words."""

    on: str
    off: str


# Seed 004's one-line explanation of each option: what happens when it is on. (The card shows
# only this sentence; the product page's "Default: off" is what the unchecked box says.)
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
        on="Salesforce's own auto-response rules email the customer when a record is created. "
        "Auto-Respond already replies to them, so this is a second email.",
        off="Salesforce sends the customer nothing.",
    ),
    "notify_owner": Explanation(
        on="Salesforce emails the user who owns the record, for example after an assignment rule "
        "gives it to them.",
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
    (ASSIGNMENT_OFF, "No: the record stays with the connected Salesforce user"),
    (ASSIGNMENT_DEFAULT, "Yes, with your org's active assignment rule"),
    (ASSIGNMENT_RULE, "Yes, with this rule:"),
]

HEADER_OPTIONS_HELP = (
    "Salesforce SOAP API headers, written HeaderName,property,value;HeaderName,property,value. "
    "The automation switches above are part of this text: if you edit the text, it decides (and "
    "the switches then show what it says); otherwise the switches change their own parts and "
    "keep the rest."
)


def _checkbox(label: str) -> forms.BooleanField:
    return forms.BooleanField(label=label, required=False)


class SalesforceSettingsForm(forms.Form):
    """A source's own settings, or, while it inherits, only the switch to stop inheriting.

    `source` is the source being edited and `current` its own settings row (saved or not).
    `rules` are the org's assignment rules as the card read them (`services.org_assignment_rules`);
    `reload_rules` reads them again, bypassing the cache, when a submitted rule id is not among
    them (a rule activated a minute ago must not be refused).
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
    auto_response = _checkbox("Send Salesforce's auto-response email to the customer")
    assignment = forms.ChoiceField(
        label="Give the record to an owner with an assignment rule",
        choices=ASSIGNMENT_CHOICES,
        widget=forms.RadioSelect,
        error_messages={"required": "Choose whether an assignment rule runs."},
    )
    # A Select of the org's rules, but a CharField: an id that is not offered (a stale page, a
    # crafted POST) must get the card's own message, not ChoiceField's generic one.
    assignment_rule_id = forms.CharField(
        label="Assignment rule",
        required=False,
        max_length=18,
        widget=forms.Select(attrs={"aria-label": "Assignment rule"}),
    )
    notify_owner = _checkbox("Email the assigned owner")
    header_options = forms.CharField(
        label="API headers",
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
        rules: OrgAssignmentRules | None = None,
        reload_rules: Callable[[], OrgAssignmentRules] | None = None,
        **kwargs: Any,
    ) -> None:
        self.source = source
        self.current = current
        self.rules = rules or OrgAssignmentRules.unread(NOT_CONNECTED_RULES)
        self._reload_rules = reload_rules
        self.inheriting = bool(source.parent_id and current.inherit_from_parent)
        kwargs.setdefault("initial", self._initial_from(current))
        super().__init__(*args, **kwargs)
        # Field name -> every option-string problem reported at it (each with its Tip: lines).
        self.header_problems: dict[str, list[HeaderOptionError]] = {}
        # Set by clean() when the edited text overrode switch changes made in the same save.
        self.switches_overridden = False
        if source.parent_id is None:
            del self.fields["inherit_from_parent"]
        if self.inheriting:
            for name in list(self.fields):
                if name != "inherit_from_parent":
                    del self.fields[name]
            return
        self.fields["assignment_rule_id"].widget.choices = self._rule_choices()

    @property
    def stored_rule_id(self) -> str:
        assignment = AutomationSwitches.of(_headers_or_none(self.current.header_options)).assignment
        return assignment if assignment not in (None, "default") else ""

    def _rule_choices(self) -> list[Any]:
        """The org's Lead (and Contact) rules, grouped by record type, plus the stored id when
        the org does not have it (so the owner sees what the card holds)."""
        choices: list[Any] = [("", "Choose a rule…")]
        for sobject, label in RecordType.choices:
            group = [(r.id, r.label) for r in self.rules.of(sobject)]
            if group:
                choices.append((f"{label}", group))
        stored = self.stored_rule_id
        if stored and self.rules.find(stored) is None:
            suffix = (
                "not a rule of your org"
                if self.rules.readable
                else "could not be checked with Salesforce"
            )
            choices.append((stored, f"{stored} ({suffix})"))
        return choices

    @staticmethod
    def _initial_from(current: SalesforceSettings) -> dict[str, Any]:
        initial: dict[str, Any] = {name: getattr(current, name) for name in OWN_SETTING_FIELDS}
        initial["inherit_from_parent"] = current.inherit_from_parent
        switches = AutomationSwitches.of(_headers_or_none(current.header_options))
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
        for problem in error.problems:
            self.add_error(field, problem.error)
        self.header_problems[field] = list(error.problems)

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
                self.add_error("assignment_rule_id", "Choose one of your org's assignment rules.")
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
        chosen = parse_header_options(resolved.option_string).assignment
        if chosen not in (None, "default"):
            problem = self._rule_problem(chosen, cleaned.get("record_type", RecordType.LEAD))
            if problem:
                self.add_error("header_options" if text_edited else "assignment_rule_id", problem)
                return cleaned
        cleaned["header_options"] = resolved.option_string
        self.switches_overridden = resolved.switches_overridden
        return cleaned

    def _rule_problem(self, rule_id: str, record_type: str) -> str:
        """Why the org would refuse this assignment rule id ("" when it is one of its rules for
        the record type). Salesforce answers an unknown id with
        INVALID_CROSS_REFERENCE_KEY on every create, so it is refused here instead."""
        rule = self.rules.find(rule_id)
        if rule is None and self._reload_rules is not None:
            self.rules = self._reload_rules()
            rule = self.rules.find(rule_id)
        if not self.rules.readable:
            if rule_id == self.stored_rule_id:
                return ""  # unchanged: Salesforce cannot be asked now, keep what was saved
            return f"The rule could not be checked with Salesforce: {self.rules.problem}"
        if rule is None:
            return (
                f"Your Salesforce org has no assignment rule with the ID {rule_id}. "
                "Choose one of its rules from the list."
            )
        if rule.sobject != record_type:
            wanted = RecordType(record_type).label
            return (
                f"“{rule.name}” assigns {rule.sobject}s, but this card creates {wanted}. "
                f"Choose a rule for {wanted}."
            )
        return ""

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

    @property
    def advanced_has_errors(self) -> bool:
        return bool(self.errors.get("header_options"))


def _headers_or_none(option_string: str) -> SoapHeaders:
    try:
        return parse_header_options(option_string)
    except HeaderOptionError:
        return SoapHeaders()


class PreviewForm(forms.Form):
    """ "Test with a sample inquiry": a typed sample, or one of the source's recent inquiries.

    Nothing of it is saved: `inquiry_and_sync` builds an unsaved Inquiry for a sample.
    """

    SAMPLE = ""

    inquiry = forms.ChoiceField(label="Use", required=False)
    first_name = forms.CharField(label="First name", required=False, max_length=100)
    last_name = forms.CharField(label="Last name", required=False, max_length=100)
    company = forms.CharField(label="Company", required=False, max_length=255)
    email = forms.EmailField(label="Email", required=False, max_length=254)
    phone = forms.CharField(label="Phone", required=False, max_length=40)
    job_description = forms.CharField(
        label="Job description",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    SAMPLE_FIELDS = ("first_name", "last_name", "company", "email", "phone", "job_description")

    def __init__(self, *args: Any, source: Source, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.source = source
        self.recent = {
            str(inquiry.pk): inquiry for inquiry in inquiries_recent(source=source, limit=10)
        }
        self.fields["inquiry"].choices = [
            (self.SAMPLE, "The sample typed below"),
            *(
                (pk, f"{i.first_name} {i.last_name} · {i.external_id}".strip())
                for pk, i in self.recent.items()
            ),
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not cleaned.get("inquiry") and not any(cleaned.get(f) for f in self.SAMPLE_FIELDS):
            raise forms.ValidationError(
                "Type a sample inquiry (at least a name, an email or a phone number) or choose "
                "a recent one."
            )
        return cleaned

    def inquiry_and_sync(self) -> tuple[Inquiry, InquirySync | None]:
        """The inquiry to preview, and its sync row when it is a saved one."""
        chosen = self.cleaned_data.get("inquiry")
        if chosen:
            inquiry = self.recent[chosen]
            return inquiry, InquirySync.objects.filter(inquiry=inquiry).first()
        values = {name: self.cleaned_data.get(name) or "" for name in self.SAMPLE_FIELDS}
        return Inquiry(source=self.source, external_id="sample", **values), None
