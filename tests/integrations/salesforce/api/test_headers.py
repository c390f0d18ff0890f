"""The SOAP header option string (seed 003): every example, every error text, round trips."""

from __future__ import annotations

import pytest

from integrations.salesforce.api.headers import (
    HEADER_NAMES,
    AllOrNoneHeader,
    AllowFieldTruncationHeader,
    AssignmentRuleHeader,
    DisableFeedTrackingHeader,
    DuplicateRuleHeader,
    EmailHeader,
    HeaderOptionError,
    MruHeader,
    SoapHeaders,
    parse_header_options,
)

# --- Every example string of seed 003 ----------------------------------------------------------

SEED_EXAMPLES = [
    # EmailHeader: "Trigger user emails only"
    (
        "EmailHeader,triggerUserEmail,true",
        SoapHeaders(email=EmailHeader(trigger_user_email=True)),
    ),
    # EmailHeader: "Trigger multiple email types"
    (
        "EmailHeader,triggerUserEmail,true;EmailHeader,triggerOtherEmail,true",
        SoapHeaders(email=EmailHeader(trigger_user_email=True, trigger_other_email=True)),
    ),
    # EmailHeader: "Explicitly set all properties"
    (
        "EmailHeader,triggerAutoResponseEmail,false;EmailHeader,triggerOtherEmail,true;"
        "EmailHeader,triggerUserEmail,false",
        SoapHeaders(
            email=EmailHeader(
                trigger_auto_response_email=False,
                trigger_other_email=True,
                trigger_user_email=False,
            )
        ),
    ),
    # DuplicateRuleHeader: "Allow saving duplicates but use current user context"
    (
        "DuplicateRuleHeader,allowSave,true",
        SoapHeaders(
            duplicate_rule=DuplicateRuleHeader(
                allow_save=True, include_record_details=False, run_as_current_user=True
            )
        ),
    ),
    # AssignmentRuleHeader: "Use default assignment rule"
    (
        "AssignmentRuleHeader,useDefaultRule,true",
        SoapHeaders(assignment_rule=AssignmentRuleHeader(use_default_rule=True)),
    ),
    # AssignmentRuleHeader: "Use specific assignment rule"
    (
        "AssignmentRuleHeader,assignmentRuleId,01Q5e000000EXAMPLE",
        SoapHeaders(assignment_rule=AssignmentRuleHeader(assignment_rule_id="01Q5e000000EXAMPLE")),
    ),
    (
        "AllOrNoneHeader,allOrNone,true",
        SoapHeaders(all_or_none=AllOrNoneHeader(all_or_none=True)),
    ),
    (
        "AllowFieldTruncationHeader,allowFieldTruncation,true",
        SoapHeaders(allow_field_truncation=AllowFieldTruncationHeader(allow_field_truncation=True)),
    ),
    (
        "DisableFeedTrackingHeader,disableFeedTracking,true",
        SoapHeaders(disable_feed_tracking=DisableFeedTrackingHeader(disable_feed_tracking=True)),
    ),
    (
        "MruHeader,updateMru,false",
        SoapHeaders(mru=MruHeader(update_mru=False)),
    ),
    # "Multiple Headers"
    (
        "EmailHeader,triggerUserEmail,true;AllOrNoneHeader,allOrNone,true;MruHeader,updateMru,false",
        SoapHeaders(
            email=EmailHeader(trigger_user_email=True),
            all_or_none=AllOrNoneHeader(all_or_none=True),
            mru=MruHeader(update_mru=False),
        ),
    ),
    # No options at all.
    ("", SoapHeaders()),
]


@pytest.mark.parametrize(("text", "expected"), SEED_EXAMPLES)
def test_every_seed_example_parses_to_its_values(text: str, expected: SoapHeaders) -> None:
    assert parse_header_options(text) == expected


@pytest.mark.parametrize(("text", "expected"), SEED_EXAMPLES)
def test_seed_examples_round_trip_through_the_canonical_string(
    text: str, expected: SoapHeaders
) -> None:
    canonical = parse_header_options(text).to_option_string()
    assert parse_header_options(canonical) == expected
    # The canonical string is a fixed point.
    assert parse_header_options(canonical).to_option_string() == canonical


def test_defaults_for_omitted_properties_are_the_seeds() -> None:
    email = parse_header_options("EmailHeader,triggerOtherEmail,true").email
    assert email == EmailHeader(
        trigger_auto_response_email=False, trigger_other_email=True, trigger_user_email=False
    )
    duplicate = parse_header_options("DuplicateRuleHeader,includeRecordDetails,true")
    assert duplicate.duplicate_rule == DuplicateRuleHeader(
        allow_save=False, include_record_details=True, run_as_current_user=True
    )
    # AssignmentRuleHeader has no defaults: the property not named stays absent.
    rule = parse_header_options("AssignmentRuleHeader,useDefaultRule,false").assignment_rule
    assert rule == AssignmentRuleHeader(assignment_rule_id=None, use_default_rule=False)
    # Headers not named are not sent at all.
    assert parse_header_options("MruHeader,updateMru,true").email is None


def test_canonical_string_names_only_non_defaults_in_seed_order() -> None:
    headers = parse_header_options(
        "MruHeader,updateMru,false;EmailHeader,triggerAutoResponseEmail,false;"
        "EmailHeader,triggerUserEmail,true;DuplicateRuleHeader,runAsCurrentUser,true;"
        "AssignmentRuleHeader,assignmentRuleId,01Q5e000000EXAMPLE"
    )
    assert headers.to_option_string() == (
        "EmailHeader,triggerUserEmail,true;DuplicateRuleHeader,allowSave,false;"
        "AssignmentRuleHeader,assignmentRuleId,01Q5e000000EXAMPLE;MruHeader,updateMru,false"
    )


def test_a_header_with_only_default_values_survives_the_round_trip() -> None:
    headers = parse_header_options("EmailHeader,triggerUserEmail,false")
    assert headers.to_option_string() == "EmailHeader,triggerAutoResponseEmail,false"
    assert parse_header_options(headers.to_option_string()) == headers


def test_every_header_and_property_round_trips() -> None:
    headers = SoapHeaders(
        email=EmailHeader(True, True, True),
        duplicate_rule=DuplicateRuleHeader(True, True, False),
        assignment_rule=AssignmentRuleHeader(assignment_rule_id="01Q000000000001"),
        all_or_none=AllOrNoneHeader(False),
        allow_field_truncation=AllowFieldTruncationHeader(False),
        disable_feed_tracking=DisableFeedTrackingHeader(False),
        mru=MruHeader(True),
    )
    assert parse_header_options(headers.to_option_string()) == headers


# --- Whitespace and empty items (our choice; the seed is silent) -------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "EmailHeader,triggerUserEmail,true;",
        " EmailHeader , triggerUserEmail , true ; ",
        ";;EmailHeader,triggerUserEmail,true;;",
        "\nEmailHeader,triggerUserEmail,true\n",
    ],
)
def test_whitespace_and_empty_items_are_ignored(text: str) -> None:
    assert parse_header_options(text) == SoapHeaders(email=EmailHeader(trigger_user_email=True))


@pytest.mark.parametrize("text", ["", "   ", ";", " ; ;"])
def test_an_empty_string_means_no_headers(text: str) -> None:
    assert parse_header_options(text) == SoapHeaders()
    assert SoapHeaders().to_option_string() == ""


# --- Every error message of seed 003, character for character ----------------------------------


def test_invalid_format_message_is_the_seeds() -> None:
    with pytest.raises(HeaderOptionError) as excinfo:
        parse_header_options("EmailHeader,triggerUserEmail")
    assert str(excinfo.value) == (
        "ERROR: Invalid SOAP header format: 'EmailHeader,triggerUserEmail'\n"
        "Tip: Expected format: 'HeaderName,property,value'\n"
        "Tip: Example: 'EmailHeader,triggerUserEmail,true'"
    )
    assert excinfo.value.error == "Invalid SOAP header format: 'EmailHeader,triggerUserEmail'"
    assert excinfo.value.tips == [
        "Expected format: 'HeaderName,property,value'",
        "Example: 'EmailHeader,triggerUserEmail,true'",
    ]


def test_unknown_header_message_is_the_seeds() -> None:
    with pytest.raises(HeaderOptionError) as excinfo:
        parse_header_options("EmalHeader,triggerUserEmail,true")
    assert str(excinfo.value) == (
        "ERROR: Unknown SOAP header: 'EmalHeader'\n"
        "Tip: Available headers: AllOrNoneHeader, AllowFieldTruncationHeader, "
        "AssignmentRuleHeader, DisableFeedTrackingHeader, DuplicateRuleHeader, EmailHeader, "
        "MruHeader\n"
        "Tip: Header names are case-sensitive and must match Salesforce API exactly"
    )
    assert excinfo.value.error == "Unknown SOAP header: 'EmalHeader'"
    assert len(excinfo.value.tips) == 2


def test_invalid_boolean_message_is_the_seeds() -> None:
    with pytest.raises(HeaderOptionError) as excinfo:
        parse_header_options("EmailHeader,triggerUserEmail,yes")
    assert str(excinfo.value) == (
        "ERROR: Invalid boolean value 'yes' for EmailHeader.triggerUserEmail\n"
        "Tip: Boolean values must be exactly 'true' or 'false' (lowercase)\n"
        "Tip: Example: 'EmailHeader,triggerUserEmail,true'"
    )
    assert excinfo.value.error == "Invalid boolean value 'yes' for EmailHeader.triggerUserEmail"
    assert excinfo.value.tips == [
        "Boolean values must be exactly 'true' or 'false' (lowercase)",
        "Example: 'EmailHeader,triggerUserEmail,true'",
    ]


def test_mutual_exclusivity_message_is_the_seeds() -> None:
    with pytest.raises(HeaderOptionError) as excinfo:
        parse_header_options(
            "AssignmentRuleHeader,assignmentRuleId,01Q5e000000EXAMPLE;"
            "AssignmentRuleHeader,useDefaultRule,true"
        )
    assert str(excinfo.value) == (
        "ERROR: AssignmentRuleHeader properties assignmentRuleId and useDefaultRule are "
        "mutually exclusive\n"
        "Tip: Specify either assignmentRuleId OR useDefaultRule, not both\n"
        "Tip: Example: 'AssignmentRuleHeader,useDefaultRule,true'"
    )
    assert excinfo.value.tips == [
        "Specify either assignmentRuleId OR useDefaultRule, not both",
        "Example: 'AssignmentRuleHeader,useDefaultRule,true'",
    ]


def test_mutual_exclusivity_holds_whatever_the_order_and_value() -> None:
    with pytest.raises(HeaderOptionError, match="mutually exclusive"):
        parse_header_options(
            "AssignmentRuleHeader,useDefaultRule,false;"
            "AssignmentRuleHeader,assignmentRuleId,01Q5e000000EXAMPLE"
        )
    with pytest.raises(HeaderOptionError, match="mutually exclusive"):
        AssignmentRuleHeader(assignment_rule_id="01Q5e000000EXAMPLE", use_default_rule=True)


@pytest.mark.parametrize(
    "text",
    [
        "emailheader,triggerUserEmail,true",  # header names are case-sensitive
        "EMAILHEADER,triggerUserEmail,true",
    ],
)
def test_header_names_are_case_sensitive(text: str) -> None:
    with pytest.raises(HeaderOptionError, match="Unknown SOAP header"):
        parse_header_options(text)


@pytest.mark.parametrize("value", ["True", "TRUE", "1", "yes", "False", "on"])
def test_booleans_must_be_lowercase_true_or_false(value: str) -> None:
    with pytest.raises(HeaderOptionError) as excinfo:
        parse_header_options(f"MruHeader,updateMru,{value}")
    assert excinfo.value.error == f"Invalid boolean value '{value}' for MruHeader.updateMru"
    assert excinfo.value.tips[1] == "Example: 'MruHeader,updateMru,true'"


@pytest.mark.parametrize(
    "item",
    [
        "EmailHeader",
        "EmailHeader,triggerUserEmail,true,false",
        "EmailHeader,,true",
        "EmailHeader,triggerUserEmail,",
        ",triggerUserEmail,true",
    ],
)
def test_items_without_three_parts_are_invalid_format(item: str) -> None:
    with pytest.raises(HeaderOptionError) as excinfo:
        parse_header_options(f"MruHeader,updateMru,true;{item}")
    assert excinfo.value.error == f"Invalid SOAP header format: '{item}'"


# --- Our own messages for the cases the seed does not spell out --------------------------------


def test_unknown_property_lists_the_headers_properties() -> None:
    with pytest.raises(HeaderOptionError) as excinfo:
        parse_header_options("EmailHeader,triggeruseremail,true")
    assert str(excinfo.value) == (
        "ERROR: Unknown property 'triggeruseremail' for EmailHeader\n"
        "Tip: EmailHeader properties: triggerAutoResponseEmail, triggerOtherEmail, "
        "triggerUserEmail\n"
        "Tip: Property names are case-sensitive and must match Salesforce API exactly"
    )


@pytest.mark.parametrize(
    ("header", "properties"),
    [
        ("AssignmentRuleHeader", "assignmentRuleId, useDefaultRule"),
        ("DuplicateRuleHeader", "allowSave, includeRecordDetails, runAsCurrentUser"),
        ("AllOrNoneHeader", "allOrNone"),
        ("AllowFieldTruncationHeader", "allowFieldTruncation"),
        ("DisableFeedTrackingHeader", "disableFeedTracking"),
        ("MruHeader", "updateMru"),
    ],
)
def test_unknown_property_tip_for_every_header(header: str, properties: str) -> None:
    with pytest.raises(HeaderOptionError) as excinfo:
        parse_header_options(f"{header},nope,true")
    assert excinfo.value.tips[0] == f"{header} properties: {properties}"


@pytest.mark.parametrize(
    "rule_id",
    ["01Q5e000000EXA", "01Q5e000000EXAMPLEX", "00Q5e000000EXAMPLE", "01Q5e000000EX-MPLE", "true"],
)
def test_invalid_assignment_rule_id(rule_id: str) -> None:
    with pytest.raises(HeaderOptionError) as excinfo:
        parse_header_options(f"AssignmentRuleHeader,assignmentRuleId,{rule_id}")
    assert str(excinfo.value) == (
        f"ERROR: Invalid assignmentRuleId '{rule_id}' for AssignmentRuleHeader\n"
        "Tip: An assignment rule ID has 15 or 18 letters and digits and starts with 01Q\n"
        "Tip: Example: 'AssignmentRuleHeader,assignmentRuleId,01Q5e000000EXAMPLE'"
    )


@pytest.mark.parametrize("rule_id", ["01Q5e000000EXAM", "01Q5e000000EXAMPLE", "01Qabcdefghijkl"])
def test_fifteen_and_eighteen_character_rule_ids_are_accepted(rule_id: str) -> None:
    headers = parse_header_options(f"AssignmentRuleHeader,assignmentRuleId,{rule_id}")
    assert headers.assignment == rule_id


def test_a_property_given_twice_is_an_error() -> None:
    with pytest.raises(HeaderOptionError) as excinfo:
        parse_header_options("EmailHeader,triggerUserEmail,true;EmailHeader,triggerUserEmail,false")
    assert str(excinfo.value) == (
        "ERROR: Duplicate property EmailHeader.triggerUserEmail\n"
        "Tip: Specify each property once\n"
        "Tip: Example: 'EmailHeader,triggerUserEmail,false'"
    )


def test_every_problem_is_reported_left_to_right() -> None:
    with pytest.raises(HeaderOptionError) as excinfo:
        parse_header_options(
            "AssignmentRuleHeader,assignmentRuleId,bad;EmailHeader,triggerUserEmail,maybe"
        )
    # The first one is the error's own `error`, as before; every one is in `problems`.
    assert excinfo.value.error.startswith("Invalid assignmentRuleId")
    assert [p.error for p in excinfo.value.problems] == [
        "Invalid assignmentRuleId 'bad' for AssignmentRuleHeader",
        "Invalid boolean value 'maybe' for EmailHeader.triggerUserEmail",
    ]


def test_the_issues_example_reports_the_unknown_header_too() -> None:
    with pytest.raises(HeaderOptionError) as excinfo:
        parse_header_options("EmailHeader,triggerAutoResponseEmail,yes;FooHeader,bar,true")
    assert str(excinfo.value) == (
        "ERROR: Invalid boolean value 'yes' for EmailHeader.triggerAutoResponseEmail\n"
        "Tip: Boolean values must be exactly 'true' or 'false' (lowercase)\n"
        "Tip: Example: 'EmailHeader,triggerAutoResponseEmail,true'\n"
        "ERROR: Unknown SOAP header: 'FooHeader'\n"
        "Tip: Available headers: AllOrNoneHeader, AllowFieldTruncationHeader, "
        "AssignmentRuleHeader, DisableFeedTrackingHeader, DuplicateRuleHeader, EmailHeader, "
        "MruHeader\n"
        "Tip: Header names are case-sensitive and must match Salesforce API exactly"
    )
    assert [len(p.tips) for p in excinfo.value.problems] == [2, 2]


def test_a_single_problem_has_only_itself_in_problems() -> None:
    with pytest.raises(HeaderOptionError) as excinfo:
        parse_header_options("MruHeader,updateMru,true;EmalHeader,x,true")
    assert excinfo.value.problems == [excinfo.value]


def test_an_item_with_a_problem_causes_no_second_one() -> None:
    # The bad rule id is left out, so useDefaultRule does not also read as "exclusive"; the
    # repeated bad boolean is reported each time (two items, two problems).
    with pytest.raises(HeaderOptionError) as excinfo:
        parse_header_options(
            "AssignmentRuleHeader,assignmentRuleId,bad;AssignmentRuleHeader,useDefaultRule,true;"
            "MruHeader,updateMru,no;MruHeader,updateMru,no;EmailHeader"
        )
    assert [p.error for p in excinfo.value.problems] == [
        "Invalid assignmentRuleId 'bad' for AssignmentRuleHeader",
        "Invalid boolean value 'no' for MruHeader.updateMru",
        "Invalid boolean value 'no' for MruHeader.updateMru",
        "Invalid SOAP header format: 'EmailHeader'",
    ]


def test_header_option_error_is_a_value_error() -> None:
    assert issubclass(HeaderOptionError, ValueError)


def test_header_names_are_listed_alphabetically() -> None:
    assert HEADER_NAMES == (
        "AllOrNoneHeader",
        "AllowFieldTruncationHeader",
        "AssignmentRuleHeader",
        "DisableFeedTrackingHeader",
        "DuplicateRuleHeader",
        "EmailHeader",
        "MruHeader",
    )


# --- The UI's switches and the string are one model --------------------------------------------


def test_switches_build_the_same_headers_as_the_string() -> None:
    from_switches = SoapHeaders.from_switches(
        auto_response=True, assignment="default", notify_owner=True
    )
    assert from_switches == parse_header_options(
        "EmailHeader,triggerAutoResponseEmail,true;EmailHeader,triggerUserEmail,true;"
        "AssignmentRuleHeader,useDefaultRule,true"
    )
    assert from_switches.auto_response is True
    assert from_switches.notify_owner is True
    assert from_switches.assignment == "default"


def test_switches_read_back_from_a_string() -> None:
    headers = parse_header_options(
        "AssignmentRuleHeader,assignmentRuleId,01Q5e000000EXAMPLE;EmailHeader,triggerUserEmail,true"
    )
    assert headers.auto_response is False
    assert headers.notify_owner is True
    assert headers.assignment == "01Q5e000000EXAMPLE"
    nothing = SoapHeaders()
    assert (nothing.auto_response, nothing.notify_owner, nothing.assignment) == (False, False, None)
    # useDefaultRule=false sends the header but runs no rule.
    off = parse_header_options("AssignmentRuleHeader,useDefaultRule,false")
    assert off.assignment is None


def test_switches_keep_the_other_headers_of_the_base() -> None:
    base = parse_header_options(
        "EmailHeader,triggerOtherEmail,true;EmailHeader,triggerUserEmail,true;"
        "AssignmentRuleHeader,useDefaultRule,true;AllOrNoneHeader,allOrNone,true;"
        "DuplicateRuleHeader,allowSave,true"
    )
    changed = SoapHeaders.from_switches(
        auto_response=True, assignment="01Q5e000000EXAMPLE", notify_owner=False, base=base
    )
    assert changed.to_option_string() == (
        "EmailHeader,triggerAutoResponseEmail,true;EmailHeader,triggerOtherEmail,true;"
        "DuplicateRuleHeader,allowSave,true;"
        "AssignmentRuleHeader,assignmentRuleId,01Q5e000000EXAMPLE;AllOrNoneHeader,allOrNone,true"
    )


def test_switching_everything_off_drops_the_email_and_assignment_headers() -> None:
    base = parse_header_options(
        "EmailHeader,triggerUserEmail,true;AssignmentRuleHeader,useDefaultRule,true;"
        "MruHeader,updateMru,false"
    )
    off = SoapHeaders.from_switches(
        auto_response=False, assignment=None, notify_owner=False, base=base
    )
    assert off == SoapHeaders(mru=MruHeader(update_mru=False))


def test_switches_reject_a_malformed_rule_id() -> None:
    with pytest.raises(HeaderOptionError, match="Invalid assignmentRuleId 'x'"):
        SoapHeaders.from_switches(auto_response=False, assignment="x", notify_owner=False)


@pytest.mark.parametrize(
    ("auto_response", "assignment", "notify_owner"),
    [
        (False, None, False),
        (True, None, False),
        (False, "default", True),
        (True, "01Q5e000000EXAMPLE", True),
    ],
)
def test_switches_round_trip_through_the_string(
    auto_response: bool, assignment: str | None, notify_owner: bool
) -> None:
    headers = SoapHeaders.from_switches(
        auto_response=auto_response, assignment=assignment, notify_owner=notify_owner
    )
    again = parse_header_options(headers.to_option_string())
    assert (again.auto_response, again.assignment, again.notify_owner) == (
        auto_response,
        assignment,
        notify_owner,
    )


# --- Which API can carry the headers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "needs_soap"),
    [
        ("", False),
        ("AssignmentRuleHeader,useDefaultRule,true", False),
        ("DuplicateRuleHeader,allowSave,true", False),
        ("EmailHeader,triggerUserEmail,false", False),  # all-false EmailHeader == none
        ("EmailHeader,triggerAutoResponseEmail,true", True),
        ("EmailHeader,triggerUserEmail,true", True),
        ("EmailHeader,triggerOtherEmail,true", True),
        ("AllOrNoneHeader,allOrNone,true", True),
        ("AllowFieldTruncationHeader,allowFieldTruncation,true", True),
        ("DisableFeedTrackingHeader,disableFeedTracking,true", True),
        ("MruHeader,updateMru,false", True),
    ],
)
def test_needs_soap(text: str, needs_soap: bool) -> None:
    assert parse_header_options(text).needs_soap is needs_soap


@pytest.mark.parametrize(
    ("text", "auto_assign"),
    [
        ("", "FALSE"),  # REST would otherwise run the rules: SOAP runs them only on request
        ("AssignmentRuleHeader,useDefaultRule,false", "FALSE"),
        ("AssignmentRuleHeader,useDefaultRule,true", "TRUE"),
        ("AssignmentRuleHeader,assignmentRuleId,01Q5e000000EXAMPLE", "01Q5e000000EXAMPLE"),
    ],
)
def test_rest_auto_assign_keeps_the_soap_meaning(text: str, auto_assign: str) -> None:
    assert parse_header_options(text).rest_auto_assign() == auto_assign


def test_rest_duplicate_rule_header_spells_out_soap_defaults() -> None:
    assert SoapHeaders().rest_duplicate_rule_header() is None
    headers = parse_header_options("DuplicateRuleHeader,allowSave,true")
    assert headers.rest_duplicate_rule_header() == (
        "allowSave=true; includeRecordDetails=false; runAsCurrentUser=true"
    )


def test_iterating_yields_the_set_headers_with_their_wire_properties() -> None:
    headers = parse_header_options(
        "MruHeader,updateMru,true;EmailHeader,triggerUserEmail,true;"
        "AssignmentRuleHeader,useDefaultRule,true"
    )
    assert [(h.header_name, h.properties()) for h in headers] == [
        (
            "EmailHeader",
            [
                ("triggerAutoResponseEmail", False),
                ("triggerOtherEmail", False),
                ("triggerUserEmail", True),
            ],
        ),
        ("AssignmentRuleHeader", [("useDefaultRule", True)]),
        ("MruHeader", [("updateMru", True)]),
    ]


def test_headers_are_immutable() -> None:
    headers = SoapHeaders()
    with pytest.raises(AttributeError):
        headers.email = EmailHeader()  # type: ignore[misc]
