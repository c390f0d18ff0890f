"""The emulator's SOAP partner endpoint: envelopes in, Salesforce-shaped XML out.

These tests write the request XML by hand (not with our client), so the emulator is checked
against SALESFORCE.md section 4 on its own; the client is tested against the emulator in
tests/integrations/salesforce/api/test_soap.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from lxml import etree
from werkzeug.test import EnvironBuilder

from salesforce_emulator import EmulatorServer
from salesforce_emulator.core import (
    AssignmentEntry,
    AutoResponseEntry,
    DropConnection,
    DuplicateRule,
    EmulatorState,
    Org,
    User,
)
from salesforce_emulator.soap import soap_endpoint
from tests.salesforce_emulator.conftest import trusting_session

SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER = "urn:partner.soap.sforce.com"
SOBJECT = "urn:sobject.partner.soap.sforce.com"
FAULT = "urn:fault.partner.soap.sforce.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS = {"soapenv": SOAPENV, "p": PARTNER, "sf": SOBJECT, "f": FAULT, "xsi": XSI}


@dataclass
class World:
    state: EmulatorState
    org: Org
    token: str
    admin: User
    seller: User

    def call(self, body: str, headers: str = "", **session: str | None) -> Answer:
        """POST an envelope with this world's token, or with ``token=`` (None: no session)."""
        token = session.get("token", self.token)
        return call(self.state, envelope(body, headers, token))


@dataclass
class Answer:
    status: int
    root: Any

    def results(self) -> list[Any]:
        return self.root.xpath("/soapenv:Envelope/soapenv:Body/*/p:result", namespaces=NS)

    def ids(self) -> list[str | None]:
        return [r.findtext(f"{{{PARTNER}}}id") or None for r in self.results()]

    def fault(self) -> dict[str, str]:
        (fault,) = self.root.xpath("//soapenv:Fault", namespaces=NS)
        return {
            "faultcode": fault.findtext("faultcode"),
            "faultstring": fault.findtext("faultstring"),
            "exceptionCode": fault.xpath("string(detail/*/f:exceptionCode)", namespaces=NS),
            "exceptionMessage": fault.xpath("string(detail/*/f:exceptionMessage)", namespaces=NS),
        }


def envelope(body: str, headers: str = "", token: str | None = None) -> str:
    session = (
        f"<urn:SessionHeader><urn:sessionId>{token}</urn:sessionId></urn:SessionHeader>"
        if token
        else ""
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAPENV}" xmlns:urn="{PARTNER}" '
        f'xmlns:urn1="{SOBJECT}" xmlns:xsi="{XSI}">'
        f"<soapenv:Header>{session}{headers}</soapenv:Header>"
        f"<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )


def call(state: EmulatorState, xml: str | bytes, version: str = "59.0") -> Answer:
    request = EnvironBuilder(
        method="POST",
        path=f"/services/Soap/u/{version}",
        data=xml.encode() if isinstance(xml, str) else xml,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
    ).get_request()
    response = soap_endpoint(state, request, version)
    assert response.content_type == "text/xml; charset=utf-8"
    return Answer(response.status_code, etree.fromstring(response.get_data()))


def sobject(sobject_type: str = "Lead", **fields: str | None) -> str:
    parts = [f"<urn1:type>{sobject_type}</urn1:type>"]
    for name, value in fields.items():
        if value is None:
            parts.append(f'<urn1:{name} xsi:nil="true"/>')
        else:
            parts.append(f"<urn1:{name}>{value}</urn1:{name}>")
    return f"<urn:sObjects>{''.join(parts)}</urn:sObjects>"


def create(*records: str) -> str:
    return f"<urn:create>{''.join(records)}</urn:create>"


def update(*records: str) -> str:
    return f"<urn:update>{''.join(records)}</urn:update>"


def header(name: str, **props: str) -> str:
    inner = "".join(f"<urn:{k}>{v}</urn:{k}>" for k, v in props.items())
    return f"<urn:{name}>{inner}</urn:{name}>"


def lead(last: str = "Doe", company: str = "Acme", **more: str | None) -> str:
    return sobject("Lead", LastName=last, Company=company, **more)


@pytest.fixture
def world() -> Iterator[World]:
    state = EmulatorState()
    org = state.create_org("Acme")
    seller = org.add_user(
        "sam.seller@acme.example.com", first_name="Sam", last_name="Seller", email="sam@acme.test"
    )
    app = state.add_connected_app(callback_urls=["https://app.test/callback"])
    token = state.issue_access_token(
        client_id=app.client_id,
        org=org,
        user=org.admin,
        scopes=["api", "refresh_token"],
        login_kind="production",
        refresh_token=None,
    ).token
    yield World(state, org, token, org.admin, seller)


def emails(org: Org, kind: str) -> list[dict[str, Any]]:
    return [e for e in org.emails if e["kind"] == kind]


# --------------------------------------------------------------------------- create / update


def test_create_returns_ids_in_order_and_stores_the_records(world: World) -> None:
    answer = world.call(
        create(lead("One", Email="one@example.com"), sobject("Contact", LastName="Two"))
    )
    assert answer.status == 200
    lead_id, contact_id = answer.ids()
    assert lead_id is not None and lead_id.startswith("00Q") and len(lead_id) == 18
    assert contact_id is not None and contact_id.startswith("003")
    assert [r.findtext(f"{{{PARTNER}}}success") for r in answer.results()] == ["true", "true"]
    assert world.org.get("Lead", lead_id)["Email"] == "one@example.com"
    assert world.org.get("Contact", contact_id)["LastName"] == "Two"
    # Response shape of SALESFORCE.md section 4: createResponse in the partner namespace.
    assert answer.root.xpath("boolean(//p:createResponse)", namespaces=NS)


def test_limit_info_header_reports_api_requests(world: World) -> None:
    world.org.update_settings(daily_api_limit=500)
    world.call(create(lead()))
    answer = world.call(create(lead()))
    (info,) = answer.root.xpath("//soapenv:Header/p:LimitInfoHeader/p:limitInfo", namespaces=NS)
    assert info.findtext(f"{{{PARTNER}}}type") == "API REQUESTS"
    assert info.findtext(f"{{{PARTNER}}}current") == "2"
    assert info.findtext(f"{{{PARTNER}}}limit") == "500"


def test_values_are_unescaped_exactly(world: World) -> None:
    answer = world.call(create(lead("O&apos;Brien &amp; Sons &lt;b&gt;", "Ünïcødé ✓ 会社")))
    record = world.org.get("Lead", answer.ids()[0])
    assert record["LastName"] == "O'Brien & Sons <b>"
    assert record["Company"] == "Ünïcødé ✓ 会社"


def test_per_record_errors_have_salesforces_shape(world: World) -> None:
    answer = world.call(create(sobject("Lead", LastName="NoCompany"), lead("Fine")))
    assert answer.status == 200
    bad, good = answer.results()
    assert bad.findtext(f"{{{PARTNER}}}success") == "false"
    assert bad.find(f"{{{PARTNER}}}id").get(f"{{{XSI}}}nil") == "true"
    error = bad.find(f"{{{PARTNER}}}errors")
    assert [child.tag.split("}")[1] for child in error] == ["fields", "message", "statusCode"]
    assert error.findtext(f"{{{PARTNER}}}statusCode") == "REQUIRED_FIELD_MISSING"
    assert error.findtext(f"{{{PARTNER}}}fields") == "Company"
    assert error.findtext(f"{{{PARTNER}}}message") == "Required fields are missing: [Company]"
    # SaveResult's sequence: errors, id, success.
    assert [child.tag.split("}")[1] for child in bad] == ["errors", "id", "success"]
    assert good.findtext(f"{{{PARTNER}}}success") == "true"


def test_update_changes_fields_and_clears_with_fields_to_null_or_nil(world: World) -> None:
    lead_id = world.org.insert_record(
        "Lead",
        {"LastName": "Doe", "Company": "Acme", "Phone": "555", "Title": "CEO", "City": "Oslo"},
    )
    record = (
        f"<urn:sObjects><urn1:type>Lead</urn1:type><urn1:fieldsToNull>Phone</urn1:fieldsToNull>"
        f"<urn1:Id>{lead_id}</urn1:Id><urn1:Title>CTO</urn1:Title>"
        f'<urn1:City xsi:nil="true"/></urn:sObjects>'
    )
    answer = world.call(update(record))
    assert answer.ids() == [lead_id]
    stored = world.org.get("Lead", lead_id)
    assert (stored["Title"], stored["Phone"], stored["City"]) == ("CTO", None, None)


def test_update_accepts_a_15_character_id_and_answers_with_18(world: World) -> None:
    lead_id = world.org.insert_record("Lead", {"LastName": "Doe", "Company": "Acme"})
    answer = world.call(update(sobject("Lead", Id=lead_id[:15], Title="CTO")))
    assert answer.ids() == [lead_id]


@pytest.mark.parametrize(
    ("record_id", "code"),
    [
        (None, "MISSING_ARGUMENT"),
        ("not-an-id", "MALFORMED_ID"),
        ("003000000000001", "MALFORMED_ID"),  # a Contact id for a Lead
        ("00Q000000000001", "INVALID_CROSS_REFERENCE_KEY"),  # well-formed, no such record
    ],
)
def test_update_errors_per_record(world: World, record_id: str | None, code: str) -> None:
    fields = {"Id": record_id} if record_id else {}
    answer = world.call(update(sobject("Lead", **fields, Title="CTO")))
    assert answer.status == 200
    assert answer.root.xpath("string(//p:errors/p:statusCode)", namespaces=NS) == code


# --------------------------------------------------------------------------- email headers


@pytest.fixture
def auto_response(world: World) -> None:
    world.org.set_auto_response_rule(
        "Lead",
        "Web leads",
        [AutoResponseEntry(template="Thanks", from_address="hello@acme.test")],
    )


@pytest.mark.usefixtures("auto_response")
def test_seed_000_auto_response_only_with_trigger_auto_response_email(world: World) -> None:
    world.call(create(lead("Quiet", Email="quiet@example.com")))
    assert emails(world.org, "auto_response") == []

    world.call(
        create(lead("Loud", Email="loud@example.com")),
        header("EmailHeader", triggerAutoResponseEmail="false", triggerUserEmail="true"),
    )
    assert emails(world.org, "auto_response") == []

    answer = world.call(
        create(lead("Loud", Email="loud@example.com")),
        header("EmailHeader", triggerAutoResponseEmail="true"),
    )
    sent = emails(world.org, "auto_response")
    assert [(e["to"], e["record_id"], e["api"]) for e in sent] == [
        ("loud@example.com", answer.ids()[0], "soap")
    ]


@pytest.mark.usefixtures("auto_response")
def test_seed_000_no_auto_response_on_update(world: World) -> None:
    lead_id = world.org.insert_record(
        "Lead", {"LastName": "Doe", "Company": "Acme", "Email": "doe@example.com"}
    )
    world.call(
        update(sobject("Lead", Id=lead_id, Title="CTO")),
        header("EmailHeader", triggerAutoResponseEmail="true"),
    )
    assert emails(world.org, "auto_response") == []


@pytest.fixture
def assignment_rule(world: World) -> str:
    rule = world.org.set_assignment_rule(
        "Lead", "Route everything", [AssignmentEntry(assign_to=world.seller.id)]
    )
    return rule.id


@pytest.mark.usefixtures("assignment_rule")
def test_seed_001_no_assignment_without_assignment_rule_header(world: World) -> None:
    # Unlike REST, SOAP runs no rule by default, even with an active rule and EmailHeader.
    answer = world.call(create(lead()), header("EmailHeader", triggerUserEmail="true"))
    assert world.org.get("Lead", answer.ids()[0])["OwnerId"] == world.admin.id
    assert emails(world.org, "assignment_notification") == []


@pytest.mark.usefixtures("assignment_rule")
def test_seed_001_assignment_without_email_header_sends_no_notification(world: World) -> None:
    answer = world.call(create(lead()), header("AssignmentRuleHeader", useDefaultRule="true"))
    assert world.org.get("Lead", answer.ids()[0])["OwnerId"] == world.seller.id
    assert emails(world.org, "assignment_notification") == []


@pytest.mark.usefixtures("assignment_rule")
def test_seed_001_assignment_with_trigger_user_email_notifies_the_owner(world: World) -> None:
    answer = world.call(
        create(lead()),
        header("AssignmentRuleHeader", useDefaultRule="true")
        + header("EmailHeader", triggerUserEmail="true"),
    )
    lead_id = answer.ids()[0]
    assert world.org.get("Lead", lead_id)["OwnerId"] == world.seller.id
    notes = emails(world.org, "assignment_notification")
    assert [(e["to"], e["record_id"]) for e in notes] == [("sam@acme.test", lead_id)]


def test_assignment_rule_id_runs_that_rule(world: World, assignment_rule: str) -> None:
    # Activating another rule makes ours inactive; by id it still runs.
    world.org.set_assignment_rule("Lead", "Other", [AssignmentEntry(assign_to=world.admin.id)])
    answer = world.call(
        create(lead()), header("AssignmentRuleHeader", assignmentRuleId=assignment_rule)
    )
    assert world.org.get("Lead", answer.ids()[0])["OwnerId"] == world.seller.id


def test_use_default_rule_false_runs_no_rule(world: World, assignment_rule: str) -> None:
    answer = world.call(create(lead()), header("AssignmentRuleHeader", useDefaultRule="false"))
    assert world.org.get("Lead", answer.ids()[0])["OwnerId"] == world.admin.id


def test_assignment_rule_header_with_both_properties_is_a_fault(
    world: World, assignment_rule: str
) -> None:
    answer = world.call(
        create(lead()),
        header("AssignmentRuleHeader", assignmentRuleId=assignment_rule, useDefaultRule="true"),
    )
    assert answer.status == 500
    assert answer.fault()["exceptionCode"] == "INVALID_SOAP_HEADER"
    assert list(world.org.rows("Lead")) == []


@pytest.mark.parametrize("rule_id", ["01Qbad", "01Q5e000000EXAMPLE", "00Q5e000000AbCdEFG"])
def test_malformed_assignment_rule_id_is_malformed_id(world: World, rule_id: str) -> None:
    answer = world.call(create(lead()), header("AssignmentRuleHeader", assignmentRuleId=rule_id))
    assert answer.status == 500
    assert answer.fault()["exceptionCode"] == "MALFORMED_ID"
    assert list(world.org.rows("Lead")) == []


# --------------------------------------------------------------------------- duplicates


@pytest.fixture
def duplicate_rule(world: World) -> str:
    world.org.set_duplicate_rule(
        DuplicateRule(
            sobject="Lead",
            name="Standard_Lead_Duplicate_Rule",
            match_rule="Standard_Lead_Match_Rule_v1_0",
        )
    )
    return world.org.insert_record(
        "Lead", {"LastName": "First", "Company": "Acme", "Email": "dup@example.com"}
    )


def test_duplicates_are_a_duplicate_error_with_duplicate_result(
    world: World, duplicate_rule: str
) -> None:
    answer = world.call(create(lead("Second", Email="dup@example.com")))
    assert answer.status == 200
    (error,) = answer.root.xpath("//p:result/p:errors", namespaces=NS)
    assert error.get(f"{{{XSI}}}type") == "DuplicateError"
    assert error.findtext(f"{{{PARTNER}}}statusCode") == "DUPLICATES_DETECTED"
    (result,) = error.findall(f"{{{PARTNER}}}duplicateResult")  # correct spelling in SOAP
    assert result.findtext(f"{{{PARTNER}}}duplicateRule") == "Standard_Lead_Duplicate_Rule"
    assert result.findtext(f"{{{PARTNER}}}allowSave") == "true"
    (record,) = result.xpath("p:matchResults/p:matchRecords/p:record", namespaces=NS)
    assert record.get(f"{{{XSI}}}type") == "sf:sObject"
    assert record.findtext(f"{{{SOBJECT}}}type") == "Lead"
    assert record.findtext(f"{{{SOBJECT}}}Id") == duplicate_rule
    # Without includeRecordDetails only type and Id come back.
    assert record.find(f"{{{SOBJECT}}}Email") is None
    assert len(list(world.org.rows("Lead"))) == 1


def test_duplicate_rule_header_allow_save_lets_the_duplicate_through(
    world: World, duplicate_rule: str
) -> None:
    answer = world.call(
        create(lead("Second", Email="dup@example.com")),
        header("DuplicateRuleHeader", allowSave="true"),
    )
    assert answer.ids()[0] is not None
    assert len(list(world.org.rows("Lead"))) == 2


def test_include_record_details_returns_the_matched_fields(
    world: World, duplicate_rule: str
) -> None:
    answer = world.call(
        create(lead("Second", Email="dup@example.com")),
        header("DuplicateRuleHeader", includeRecordDetails="true", runAsCurrentUser="true"),
    )
    (record,) = answer.root.xpath("//p:matchRecords/p:record", namespaces=NS)
    assert record.findtext(f"{{{SOBJECT}}}Email") == "dup@example.com"
    assert record.findtext(f"{{{SOBJECT}}}LastName") == "First"


# --------------------------------------------------------------------------- other headers


@pytest.mark.usefixtures("auto_response")
def test_all_or_none_rolls_everything_back(world: World) -> None:
    answer = world.call(
        create(
            lead("Good", Email="good@example.com"),
            sobject("Lead", LastName="Bad"),
            lead("Good too"),
        ),
        header("AllOrNoneHeader", allOrNone="true")
        + header("EmailHeader", triggerAutoResponseEmail="true"),
    )
    assert answer.status == 200
    codes = answer.root.xpath("//p:result/p:errors/p:statusCode/text()", namespaces=NS)
    assert codes == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "REQUIRED_FIELD_MISSING",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    ]
    assert answer.ids() == [None, None, None]
    assert list(world.org.rows("Lead")) == []
    # Nothing was committed, so no auto-response went out for the good lead.
    assert emails(world.org, "auto_response") == []


def test_all_or_none_false_keeps_the_good_records(world: World) -> None:
    answer = world.call(
        create(lead("Good"), sobject("Lead", LastName="Bad")),
        header("AllOrNoneHeader", allOrNone="false"),
    )
    assert answer.ids()[0] is not None and answer.ids()[1] is None
    assert len(list(world.org.rows("Lead"))) == 1


def test_all_or_none_with_all_good_records_commits(world: World) -> None:
    answer = world.call(
        create(lead("One"), lead("Two")), header("AllOrNoneHeader", allOrNone="true")
    )
    assert None not in answer.ids()
    assert len(list(world.org.rows("Lead"))) == 2


def test_allow_field_truncation(world: World) -> None:
    long_name = "x" * 100  # LastName holds 80
    refused = world.call(create(lead(long_name)))
    assert refused.root.xpath("string(//p:statusCode)", namespaces=NS) == "STRING_TOO_LONG"
    answer = world.call(
        create(lead(long_name)),
        header("AllowFieldTruncationHeader", allowFieldTruncation="true"),
    )
    assert world.org.get("Lead", answer.ids()[0])["LastName"] == "x" * 80


def test_feed_tracking_and_mru_headers_are_accepted_and_logged(world: World) -> None:
    answer = world.call(
        create(lead()),
        header("DisableFeedTrackingHeader", disableFeedTracking="true")
        + header("MruHeader", updateMru="false")
        + header("EmailHeader", triggerUserEmail="1"),
    )
    assert answer.status == 200
    entry = world.org.calls[-1]
    assert entry["api"] == "soap"
    assert entry["status"] == 200
    assert entry["soap_operation"] == "create"
    assert entry["soap_records"] == 1
    assert entry["soap_headers"] == {
        "DisableFeedTrackingHeader": {"disableFeedTracking": True},
        "MruHeader": {"updateMru": False},
        "EmailHeader": {"triggerUserEmail": True},
    }
    # The token never lands in the log.
    assert world.token not in repr(world.org.calls)


def test_other_real_partner_headers_are_ignored(world: World) -> None:
    answer = world.call(
        create(lead()), header("CallOptions", client="AutoRespond/1.0") + header("QueryOptions")
    )
    assert answer.status == 200


# --------------------------------------------------------------------------- faults


def assert_fault(answer: Answer, code: str, message: str | None = None) -> None:
    assert answer.status == 500
    fault = answer.fault()
    assert fault["faultcode"] == f"sf:{code}"
    assert fault["exceptionCode"] == code
    assert fault["faultstring"] == f"{code}: {fault['exceptionMessage']}"
    if message is not None:
        assert fault["exceptionMessage"] == message
    (detail,) = answer.root.xpath("//detail/f:UnexpectedErrorFault", namespaces=NS)
    assert detail.get(f"{{{XSI}}}type") == "sf:UnexpectedErrorFault"


@pytest.mark.parametrize("token", [None, "00Dbogus!token"])
def test_invalid_session_is_the_documented_fault(world: World, token: str | None) -> None:
    answer = world.call(create(lead()), token=token)
    assert_fault(
        answer, "INVALID_SESSION_ID", "Invalid Session ID found in SessionHeader: Illegal Session"
    )
    assert list(world.org.rows("Lead")) == []


def test_expired_token_is_invalid_session(world: World) -> None:
    world.state.expire_access_tokens(world.org.id)
    assert_fault(world.call(create(lead())), "INVALID_SESSION_ID")


def test_request_limit_exceeded(world: World) -> None:
    world.org.update_settings(daily_api_limit=1)
    assert world.call(create(lead())).status == 200
    answer = world.call(create(lead()))
    assert_fault(answer, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    assert len(list(world.org.rows("Lead"))) == 1


def test_unknown_operation_is_a_fault(world: World) -> None:
    answer = world.call("<urn:delete><urn:ids>00Q000000000001</urn:ids></urn:delete>")
    assert_fault(answer, "INVALID_OPERATION")


@pytest.mark.parametrize(
    "headers",
    [
        header("EmailHeader", triggerUserEmail="yes"),
        header("EmailHeader", triggerUserEmail="True"),
        header("EmailHeader", triggerUserMail="true"),
        header("EmailHeadr", triggerUserEmail="true"),
        header("MruHeader", updateMru="true") + header("MruHeader", updateMru="false"),
        header("DuplicateRuleHeader", allowSave="true", includeRecordDetails="maybe"),
    ],
)
def test_malformed_option_headers_are_invalid_soap_header(world: World, headers: str) -> None:
    assert_fault(world.call(create(lead()), headers), "INVALID_SOAP_HEADER")
    assert list(world.org.rows("Lead")) == []


def test_missing_or_unknown_type_is_invalid_type(world: World) -> None:
    no_type = "<urn:sObjects><urn1:LastName>Doe</urn1:LastName></urn:sObjects>"
    assert_fault(world.call(create(no_type)), "INVALID_TYPE", "Must send a concrete entity type.")
    answer = world.call(create(sobject("Leed", LastName="Doe")))
    assert answer.fault()["exceptionCode"] == "INVALID_TYPE"
    assert answer.fault()["exceptionMessage"].startswith("sObject type 'Leed' is not supported.")


def test_more_than_200_records_is_a_fault(world: World) -> None:
    answer = world.call(create(*[lead(f"L{i}") for i in range(201)]))
    assert_fault(answer, "EXCEEDED_ID_LIMIT")
    assert list(world.org.rows("Lead")) == []


def test_200_records_are_fine(world: World) -> None:
    answer = world.call(create(*[lead(f"L{i}") for i in range(200)]))
    assert len(answer.ids()) == 200 and None not in answer.ids()


def test_faults_are_counted_and_logged(world: World) -> None:
    world.call("<urn:merge/>")
    entry = world.org.calls[-1]
    assert (entry["api"], entry["status"]) == ("soap", 500)
    assert world.org.api_usage()["used"] == 1


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:urn="urn:partner.soap.sforce.com" xmlns:urn1="urn:sobject.partner.soap.sforce.com">
 <soapenv:Header><urn:SessionHeader><urn:sessionId>TOKEN</urn:sessionId></urn:SessionHeader>
 </soapenv:Header>
 <soapenv:Body><urn:create><urn:sObjects><urn1:type>Lead</urn1:type>
  <urn1:LastName>&lol9;</urn1:LastName><urn1:Company>Acme</urn1:Company>
 </urn:sObjects></urn:create></soapenv:Body></soapenv:Envelope>"""


def test_billion_laughs_is_refused_not_expanded(world: World) -> None:
    answer = call(world.state, BILLION_LAUGHS.replace(b"TOKEN", world.token.encode()))
    assert answer.status == 500
    assert answer.fault()["exceptionCode"] == "UNKNOWN_EXCEPTION"
    assert "DOCTYPE is disallowed" in answer.fault()["exceptionMessage"]
    assert list(world.org.rows("Lead")) == []
    assert world.org.api_usage()["used"] == 0


def test_external_entities_are_refused(world: World) -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        + envelope(create(lead("&e;")), token=world.token).split("?>", 1)[1].encode()
    )
    answer = call(world.state, xxe)
    assert answer.fault()["exceptionCode"] == "UNKNOWN_EXCEPTION"
    assert list(world.org.rows("Lead")) == []


@pytest.mark.parametrize("payload", [b"", b"not xml", b"<a><b></a>", b"<Envelope/>"])
def test_malformed_requests_are_faults(world: World, payload: bytes) -> None:
    answer = call(world.state, payload)
    assert answer.status == 500
    assert answer.fault()["exceptionCode"] == "UNKNOWN_EXCEPTION"


def test_injected_server_unavailable_is_a_503_fault(world: World) -> None:
    world.org.add_fault(kind="server_unavailable", count=1, api="soap")
    answer = world.call(create(lead()))
    assert answer.status == 503
    assert answer.fault()["exceptionCode"] == "SERVER_UNAVAILABLE"
    assert world.call(create(lead())).status == 200


def test_injected_unable_to_lock_row_is_a_fault(world: World) -> None:
    world.org.add_fault(kind="unable_to_lock_row", count=1)
    assert_fault(world.call(create(lead())), "UNABLE_TO_LOCK_ROW")


def test_injected_drop_connection_reaches_the_server(world: World) -> None:
    world.org.add_fault(kind="drop_connection", count=1, api="soap")
    with pytest.raises(DropConnection):
        world.call(create(lead()))
    assert list(world.org.rows("Lead")) == []


def test_drop_after_processing_writes_the_records_first(world: World) -> None:
    world.org.add_fault(kind="drop_after_processing", count=1, api="soap")
    with pytest.raises(DropConnection):
        world.call(create(lead()))
    assert len(list(world.org.rows("Lead"))) == 1
    assert world.org.calls[-1]["status"] == 0


# --------------------------------------------------------------------------- over HTTPS


@pytest.mark.parametrize("with_org_id", [False, True])
def test_served_over_https_with_and_without_the_org_id(
    sf_emulator: EmulatorServer, with_org_id: bool
) -> None:
    """The login-style serverUrl ends in /{orgId}; both forms reach the same endpoint."""
    state = sf_emulator.state
    org = state.create_org("Acme")
    app = state.add_connected_app(callback_urls=["https://app.test/callback"])
    token = state.issue_access_token(
        client_id=app.client_id,
        org=org,
        user=org.admin,
        scopes=["api"],
        login_kind="production",
        refresh_token=None,
    ).token
    url = f"{sf_emulator.instance_url}/services/Soap/u/59.0"
    if with_org_id:
        url += f"/{org.id}"
    with trusting_session(sf_emulator) as session:
        response = session.post(
            url,
            data=envelope(create(lead()), token=token).encode(),
            headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
            timeout=10,
        )
    assert response.status_code == 200
    answer = Answer(response.status_code, etree.fromstring(response.content))
    assert answer.ids()[0] in {r["Id"] for r in org.rows("Lead")}
