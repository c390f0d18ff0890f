"""SOAP header options: one parser and one value object for the option-string contract.

A source's advanced Salesforce options are written as ``HeaderName,property,value`` items
separated by ``;`` (the contract of seed ``003``)::

    EmailHeader,triggerUserEmail,true;AllOrNoneHeader,allOrNone,true;MruHeader,updateMru,false

:func:`parse_header_options` turns such a string into a :class:`SoapHeaders`, and
:meth:`SoapHeaders.to_option_string` turns it back into the canonical string. The UI's
switches ("Send Salesforce auto-response email", "Run assignment rules", "Notify the assigned
owner by email") are views of the same object (:meth:`SoapHeaders.from_switches` and the
``auto_response`` / ``assignment`` / ``notify_owner`` properties), so the checkboxes and the
text field can never disagree.

Rules taken from the seed: seven headers, case-sensitive header and property names, booleans
exactly ``true``/``false``, defaults for omitted properties (``EmailHeader`` all false;
``DuplicateRuleHeader`` allowSave false, includeRecordDetails false, runAsCurrentUser true),
``assignmentRuleId`` and ``useDefaultRule`` mutually exclusive, and the error texts with their
``Tip:`` lines, character for character.

Choices for what the seed leaves open (their exact texts are pinned in the tests):

* Whitespace around items and around each of the three parts is ignored, and so are empty items,
  so a trailing ``;`` (or ``;;``) is harmless. An empty string means "no headers".
* An item that does not split into exactly three non-empty parts is an "Invalid SOAP header
  format" error (the seed's message, with the seed's constant example).
* A property that the named header does not have: ``Unknown property 'x' for EmailHeader`` with a
  tip listing the header's properties.
* ``assignmentRuleId`` must look like an AssignmentRule id: ``01Q`` followed by 12 or 15 letters
  or digits (15 or 18 characters in all). The 18-character checksum is not verified, because the
  seed's own example id (``01Q5e000000EXAMPLE``) would fail it and Salesforce answers a wrong id
  itself (``MALFORMED_ID``).
* The same property given twice is an error, even with the same value, because a form should not
  silently pick one of two conflicting values.

This module is plain Python (no Django), so the Django app, the Celery tasks and the SOAP client
all share it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

__all__ = [
    "HEADER_NAMES",
    "AllOrNoneHeader",
    "AllowFieldTruncationHeader",
    "AssignmentRuleHeader",
    "DisableFeedTrackingHeader",
    "DuplicateRuleHeader",
    "EmailHeader",
    "HeaderOptionError",
    "MruHeader",
    "SoapHeaders",
    "is_assignment_rule_id",
    "parse_header_options",
]

# AssignmentRule ids carry the key prefix 01Q; 15-character ids are case-sensitive and
# 18-character ids add a 3-character case-safe suffix.
_ASSIGNMENT_RULE_ID = re.compile(r"01Q[0-9A-Za-z]{12}(?:[0-9A-Za-z]{3})?")

# The seed's own example texts, reused verbatim in the tips.
_FORMAT_EXAMPLE = "EmailHeader,triggerUserEmail,true"
_ASSIGNMENT_EXAMPLE = "AssignmentRuleHeader,useDefaultRule,true"
_RULE_ID_EXAMPLE = "AssignmentRuleHeader,assignmentRuleId,01Q5e000000EXAMPLE"
_CASE_TIP = "{} names are case-sensitive and must match Salesforce API exactly"


class HeaderOptionError(ValueError):
    """An option string that breaks the contract.

    ``str(error)`` is the full multi-line message (``ERROR: …`` then one ``Tip: …`` line per
    tip), exactly as seed 003 prints it, for each problem of the string (``problems``, in
    order). ``error`` is the first line without ``ERROR:`` and ``tips`` the tip texts without
    ``Tip:`` (the first problem's), so a form can show them next to the field.
    """

    def __init__(self, error: str, tips: list[str]) -> None:
        self.error, self.tips = error, list(tips)
        self.problems: list[HeaderOptionError] = [self]  # several only when `collect` made it
        super().__init__(self._text())

    def _text(self) -> str:
        return "\n".join([f"ERROR: {self.error}", *(f"Tip: {tip}" for tip in self.tips)])

    @classmethod
    def collect(cls, problems: list[HeaderOptionError]) -> HeaderOptionError:
        """One error for several problems (the first one's `error` and `tips`; all in order in
        `problems` and in ``str()``)."""
        if len(problems) == 1:
            return problems[0]
        combined = cls(problems[0].error, problems[0].tips)
        combined.problems = list(problems)
        combined.args = ("\n".join(p._text() for p in problems),)
        return combined


def is_assignment_rule_id(value: str) -> bool:
    """Whether ``value`` is shaped like an AssignmentRule id (``01Q…``, 15 or 18 characters)."""
    return _ASSIGNMENT_RULE_ID.fullmatch(value) is not None


def _prop(name: str, **kwargs: Any) -> Any:
    """A dataclass field that remembers its Salesforce (camelCase) property name."""
    return dataclasses.field(metadata={"sf_name": name}, **kwargs)


class _Header:
    """Shared behaviour of the seven header value objects."""

    header_name: ClassVar[str]

    @classmethod
    def property_names(cls) -> list[str]:
        """The header's Salesforce property names, in WSDL order."""
        return [f.metadata["sf_name"] for f in dataclasses.fields(cls)]  # type: ignore[arg-type]

    def properties(self) -> list[tuple[str, bool | str]]:
        """``(salesforce_property_name, value)`` for every property that has a value.

        This is what goes on the wire: every property, including defaults, so the request says
        exactly what the option string meant.
        """
        pairs = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is not None:
                pairs.append((f.metadata["sf_name"], value))
        return pairs

    def _canonical_items(self) -> list[tuple[str, bool | str]]:
        """The properties the canonical option string names: those that differ from defaults.

        A header whose properties are all at their defaults still names its first property, so
        that it survives a round trip.
        """
        items = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None:
                continue
            if f.default is dataclasses.MISSING or value != f.default:
                items.append((f.metadata["sf_name"], value))
        return items or self.properties()[:1]


@dataclass(frozen=True)
class EmailHeader(_Header):
    """Which emails Salesforce sends for the records of this call (all off when omitted)."""

    header_name: ClassVar[str] = "EmailHeader"

    trigger_auto_response_email: bool = _prop("triggerAutoResponseEmail", default=False)
    trigger_other_email: bool = _prop("triggerOtherEmail", default=False)
    trigger_user_email: bool = _prop("triggerUserEmail", default=False)


@dataclass(frozen=True)
class AssignmentRuleHeader(_Header):
    """Which assignment rule runs: the default one, or a given rule (never both)."""

    header_name: ClassVar[str] = "AssignmentRuleHeader"

    assignment_rule_id: str | None = _prop("assignmentRuleId", default=None)
    use_default_rule: bool | None = _prop("useDefaultRule", default=None)

    def __post_init__(self) -> None:
        if self.assignment_rule_id is not None and self.use_default_rule is not None:
            raise HeaderOptionError(
                "AssignmentRuleHeader properties assignmentRuleId and useDefaultRule are "
                "mutually exclusive",
                [
                    "Specify either assignmentRuleId OR useDefaultRule, not both",
                    f"Example: '{_ASSIGNMENT_EXAMPLE}'",
                ],
            )
        if self.assignment_rule_id is None and self.use_default_rule is None:
            # Only code can build this (the parser always has a property); an empty header
            # would have no option-string form.
            raise HeaderOptionError(
                "AssignmentRuleHeader needs assignmentRuleId or useDefaultRule",
                [f"Example: '{_ASSIGNMENT_EXAMPLE}'"],
            )
        if self.assignment_rule_id is not None and not is_assignment_rule_id(
            self.assignment_rule_id
        ):
            raise HeaderOptionError(
                f"Invalid assignmentRuleId '{self.assignment_rule_id}' for AssignmentRuleHeader",
                [
                    "An assignment rule ID has 15 or 18 letters and digits and starts with 01Q",
                    f"Example: '{_RULE_ID_EXAMPLE}'",
                ],
            )

    def _canonical_items(self) -> list[tuple[str, bool | str]]:
        # Both properties default to "absent", so whichever one is set is named.
        return self.properties()


@dataclass(frozen=True)
class DuplicateRuleHeader(_Header):
    """How duplicate rules treat the records of this call."""

    header_name: ClassVar[str] = "DuplicateRuleHeader"

    allow_save: bool = _prop("allowSave", default=False)
    include_record_details: bool = _prop("includeRecordDetails", default=False)
    run_as_current_user: bool = _prop("runAsCurrentUser", default=True)


@dataclass(frozen=True)
class AllOrNoneHeader(_Header):
    """Roll the whole call back when any record fails."""

    header_name: ClassVar[str] = "AllOrNoneHeader"

    all_or_none: bool = _prop("allOrNone")


@dataclass(frozen=True)
class AllowFieldTruncationHeader(_Header):
    """Truncate over-long strings instead of failing with STRING_TOO_LONG."""

    header_name: ClassVar[str] = "AllowFieldTruncationHeader"

    allow_field_truncation: bool = _prop("allowFieldTruncation")


@dataclass(frozen=True)
class DisableFeedTrackingHeader(_Header):
    """Keep the changes of this call out of Chatter feeds."""

    header_name: ClassVar[str] = "DisableFeedTrackingHeader"

    disable_feed_tracking: bool = _prop("disableFeedTracking")


@dataclass(frozen=True)
class MruHeader(_Header):
    """Whether the records of this call go on the user's Most Recently Used lists."""

    header_name: ClassVar[str] = "MruHeader"

    update_mru: bool = _prop("updateMru")


AnyHeader = (
    EmailHeader
    | AssignmentRuleHeader
    | DuplicateRuleHeader
    | AllOrNoneHeader
    | AllowFieldTruncationHeader
    | DisableFeedTrackingHeader
    | MruHeader
)

# SoapHeaders attribute -> header class, in the seed's order (also the canonical string's order).
_SLOTS: dict[str, type[_Header]] = {
    "email": EmailHeader,
    "duplicate_rule": DuplicateRuleHeader,
    "assignment_rule": AssignmentRuleHeader,
    "all_or_none": AllOrNoneHeader,
    "allow_field_truncation": AllowFieldTruncationHeader,
    "disable_feed_tracking": DisableFeedTrackingHeader,
    "mru": MruHeader,
}
_SLOT_BY_HEADER = {cls.header_name: slot for slot, cls in _SLOTS.items()}

#: The seven header names, alphabetically, as the seed's "Available headers" tip lists them.
HEADER_NAMES: tuple[str, ...] = tuple(sorted(_SLOT_BY_HEADER))

Assignment = Literal["default"] | str | None


@dataclass(frozen=True)
class SoapHeaders:
    """The SOAP option headers of one source; ``None`` means the header is not sent."""

    email: EmailHeader | None = None
    duplicate_rule: DuplicateRuleHeader | None = None
    assignment_rule: AssignmentRuleHeader | None = None
    all_or_none: AllOrNoneHeader | None = None
    allow_field_truncation: AllowFieldTruncationHeader | None = None
    disable_feed_tracking: DisableFeedTrackingHeader | None = None
    mru: MruHeader | None = None

    def __iter__(self) -> Iterator[AnyHeader]:
        """The headers that are set, in canonical order."""
        for slot in _SLOTS:
            header = getattr(self, slot)
            if header is not None:
                yield header

    def to_option_string(self) -> str:
        """The canonical option string: ``parse_header_options(h.to_option_string()) == h``.

        Headers come in the seed's order; within a header only properties that differ from
        their defaults are named (a header whose properties are all defaults names its first
        one, so it is not lost).
        """
        items = []
        for header in self:
            for name, value in header._canonical_items():
                items.append(f"{header.header_name},{name},{_format_value(value)}")
        return ";".join(items)

    # --- The UI's switches: views of the same headers ---------------------------------------

    @classmethod
    def from_switches(
        cls,
        *,
        auto_response: bool,
        assignment: Assignment,
        notify_owner: bool,
        base: SoapHeaders | None = None,
    ) -> SoapHeaders:
        """Headers for the UI's three switches, keeping everything else from ``base``.

        ``assignment`` is ``None`` (no assignment rules), ``"default"`` (the org's active rule)
        or an AssignmentRule id. ``triggerOtherEmail`` and the other headers are taken from
        ``base`` unchanged. An EmailHeader whose flags are all false is dropped: to Salesforce it
        means the same as no EmailHeader.
        """
        base = base or cls()
        other_email = base.email.trigger_other_email if base.email else False
        email: EmailHeader | None = EmailHeader(
            trigger_auto_response_email=auto_response,
            trigger_other_email=other_email,
            trigger_user_email=notify_owner,
        )
        if email == EmailHeader():
            email = None
        if assignment is None:
            assignment_rule = None
        elif assignment == "default":
            assignment_rule = AssignmentRuleHeader(use_default_rule=True)
        else:
            assignment_rule = AssignmentRuleHeader(assignment_rule_id=assignment)
        return dataclasses.replace(base, email=email, assignment_rule=assignment_rule)

    @property
    def auto_response(self) -> bool:
        """ "Send Salesforce auto-response email": ``EmailHeader.triggerAutoResponseEmail``."""
        return bool(self.email and self.email.trigger_auto_response_email)

    @property
    def notify_owner(self) -> bool:
        """ "Notify the assigned owner by email": ``EmailHeader.triggerUserEmail``."""
        return bool(self.email and self.email.trigger_user_email)

    @property
    def assignment(self) -> Assignment:
        """ "Run assignment rules": ``None``, ``"default"`` or the AssignmentRule id."""
        rule = self.assignment_rule
        if rule is None:
            return None
        if rule.assignment_rule_id is not None:
            return rule.assignment_rule_id
        # useDefaultRule=false sends the header but runs no rule.
        return "default" if rule.use_default_rule else None

    # --- Which API can carry these headers -------------------------------------------------

    @property
    def needs_soap(self) -> bool:
        """Whether only the SOAP API can honour these headers.

        REST carries assignment (``Sforce-Auto-Assign``) and the duplicate rule header
        (``Sforce-Duplicate-Rule-Header``, see :meth:`rest_duplicate_rule_header`); nothing in
        REST carries EmailHeader flags, AllOrNone, field truncation, feed tracking or MRU.
        """
        if self.email is not None and self.email != EmailHeader():
            return True
        return any(
            header is not None
            for header in (
                self.all_or_none,
                self.allow_field_truncation,
                self.disable_feed_tracking,
                self.mru,
            )
        )

    def rest_auto_assign(self) -> str:
        """The ``Sforce-Auto-Assign`` value with SOAP's meaning.

        SOAP runs assignment rules only with an AssignmentRuleHeader, while REST runs them by
        default, so "no header" must become an explicit ``FALSE`` or an update could silently
        change the owner of an existing record.
        """
        assignment = self.assignment
        if assignment is None:
            return "FALSE"
        if assignment == "default":
            return "TRUE"
        return assignment

    def rest_duplicate_rule_header(self) -> str | None:
        """The ``Sforce-Duplicate-Rule-Header`` value with SOAP's meaning, or ``None``.

        REST defaults every property to false while SOAP defaults runAsCurrentUser to true, so
        all three are spelled out.
        """
        if self.duplicate_rule is None:
            return None
        return "; ".join(
            f"{name}={_format_value(value)}" for name, value in self.duplicate_rule.properties()
        )


def _format_value(value: bool | str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _parse_boolean(text: str, header: str, prop: str) -> bool:
    if text == "true":
        return True
    if text == "false":
        return False
    tips = ["Boolean values must be exactly 'true' or 'false' (lowercase)"]
    raise HeaderOptionError(
        f"Invalid boolean value '{text}' for {header}.{prop}",
        [*tips, f"Example: '{header},{prop},true'"],
    )


def parse_header_options(text: str) -> SoapHeaders:
    """Parse a ``HeaderName,property,value;…`` option string into :class:`SoapHeaders`.

    Raises :class:`HeaderOptionError` with the seed's messages (see the module docstring for
    the cases the seed leaves open), reporting every problem, left to right, in ``problems``.
    An item with a problem is left out, so it causes no second one (of two exclusive assignment
    properties, the second is reported and dropped).
    """
    named: dict[str, dict[str, bool | str]] = {}  # header name -> {attribute name: value}
    problems: list[HeaderOptionError] = []
    for item in filter(None, (raw.strip() for raw in text.split(";"))):
        try:
            _parse_item(item, named)
        except HeaderOptionError as problem:
            problems.append(problem)
    if problems:
        raise HeaderOptionError.collect(problems)

    built = {
        _SLOT_BY_HEADER[header_name]: _SLOTS[_SLOT_BY_HEADER[header_name]](**values)
        for header_name, values in named.items()
    }
    return SoapHeaders(**built)


def _parse_item(item: str, named: dict[str, dict[str, bool | str]]) -> None:
    """Add one item to ``named``, or raise HeaderOptionError and add nothing."""
    parts = [part.strip() for part in item.split(",")]
    if len(parts) != 3 or not all(parts):
        raise HeaderOptionError(
            f"Invalid SOAP header format: '{item}'",
            ["Expected format: 'HeaderName,property,value'", f"Example: '{_FORMAT_EXAMPLE}'"],
        )
    header_name, prop, raw_value = parts
    slot = _SLOT_BY_HEADER.get(header_name)
    if slot is None:
        raise HeaderOptionError(
            f"Unknown SOAP header: '{header_name}'",
            [f"Available headers: {', '.join(HEADER_NAMES)}", _CASE_TIP.format("Header")],
        )
    header_cls = _SLOTS[slot]
    fields_by_prop = {f.metadata["sf_name"]: f for f in dataclasses.fields(header_cls)}  # type: ignore[arg-type]
    field = fields_by_prop.get(prop)
    if field is None:
        properties = ", ".join(header_cls.property_names())
        raise HeaderOptionError(
            f"Unknown property '{prop}' for {header_name}",
            [f"{header_name} properties: {properties}", _CASE_TIP.format("Property")],
        )
    values = dict(named.get(header_name, {}))
    if field.name in values:
        raise HeaderOptionError(
            f"Duplicate property {header_name}.{prop}",
            ["Specify each property once", f"Example: '{header_name},{prop},{raw_value}'"],
        )
    if prop == "assignmentRuleId":
        values[field.name] = raw_value
    else:
        values[field.name] = _parse_boolean(raw_value, header_name, prop)
    if header_cls is AssignmentRuleHeader:
        # Checked per item, so the item that breaks the header (an invalid rule id, or the
        # second of the two exclusive properties) is the one reported.
        AssignmentRuleHeader(**values)  # type: ignore[arg-type]
    named[header_name] = values
