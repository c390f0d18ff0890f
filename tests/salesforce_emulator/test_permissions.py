"""Object permissions per user: what a user whose profile lacks "Create" on an object meets.

Facts relied on:
- describe's object-level ``createable`` says whether the *calling user* may create the object
  (SOAP API guide, create(): "Only objects where createable is true can be created ... invoke
  describeSObjects() on the object and inspect its createable property"; client apps "run with
  the permissions ... of the logged-in user").
- A create of such an object fails with 400 CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY, "entity type
  cannot be inserted: <label>" (public reports of real orgs; UNCONFIRMED by Salesforce's own
  documentation, see NO_CREATE_PERMISSION_CODE in salesforce_emulator/core.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from defusedxml import ElementTree
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from salesforce_emulator import EmulatorControl, EmulatorControlError, EmulatorServer

from .conftest import trusting_session

PARTNER = "urn:partner.soap.sforce.com"
LEAD = {"LastName": "Doe", "Company": "Acme", "Email": "doe@example.com"}
REFUSED = {
    "errorCode": "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
    "message": "entity type cannot be inserted: Lead",
    "fields": [],
}


@pytest.fixture
def no_leads(emulator_control: EmulatorControl, emulator_org: dict[str, Any]) -> dict[str, Any]:
    """The connected user (the org's admin) loses the Create permission on Lead."""
    admin = emulator_org["users"][0]
    return emulator_control.set_user_permissions(
        emulator_org["org_id"], admin["id"], cannot_create=["lead"]
    )


def test_describe_says_createable_false_for_that_user_and_object_only(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    assert sf.Lead.describe()["createable"] is True
    user = emulator_control.set_user_permissions(
        emulator_org["org_id"], emulator_org["users"][0]["id"], cannot_create=["Lead"]
    )

    assert user["cannot_create"] == ["Lead"]
    described = sf.Lead.describe()
    assert described["createable"] is False
    assert not any(f["createable"] for f in described["fields"])
    assert sf.Lead.metadata()["objectDescribe"]["createable"] is False
    listed = {o["name"]: o["createable"] for o in sf.describe()["sobjects"]}
    assert (listed["Lead"], listed["Contact"]) == (False, True)
    assert sf.Contact.describe()["createable"] is True
    # The org summary shows it, and an empty list gives the permission back.
    (summary_user,) = emulator_control.org(emulator_org["org_id"])["users"]
    assert summary_user["cannot_create"] == ["Lead"]
    emulator_control.set_user_permissions(emulator_org["org_id"], user["id"], cannot_create=[])
    assert sf.Lead.describe()["createable"] is True


def test_another_users_permissions_do_not_change_what_the_connected_user_sees(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    other = emulator_control.add_user(emulator_org["org_id"], "sam@acme.example.com")
    emulator_control.set_user_permissions(
        emulator_org["org_id"], other["id"], cannot_create=["Lead", "Contact"]
    )

    assert sf.Lead.describe()["createable"] is True
    assert sf.Lead.create(LEAD)["success"] is True


@pytest.mark.usefixtures("no_leads")
def test_rest_create_is_refused_and_saves_nothing(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Lead.create(LEAD)

    assert refused.value.status == 400
    assert refused.value.content == [REFUSED]
    assert emulator_control.records(emulator_org["org_id"], "Lead") == []
    # The permission is per object: a Contact is still fine.
    assert sf.Contact.create({"LastName": "Doe"})["success"] is True
    # Object permission comes before field checks: a bad field doesn't change the answer.
    with pytest.raises(SalesforceMalformedRequest) as again:
        sf.Lead.create({"NoSuchField__c": "x"})
    assert again.value.content == [REFUSED]


@pytest.mark.usefixtures("no_leads")
def test_composite_and_collection_creates_are_refused_per_record(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    composite = sf.restful(
        "composite",
        method="POST",
        json={
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Lead",
                    "referenceId": "lead",
                    "body": LEAD,
                },
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Contact",
                    "referenceId": "contact",
                    "body": {"LastName": "Doe"},
                },
            ]
        },
    )
    lead, contact = composite["compositeResponse"]
    assert (lead["httpStatusCode"], lead["body"]) == (400, [REFUSED])
    assert contact["httpStatusCode"] == 201

    collection = sf.restful(
        "composite/sobjects",
        method="POST",
        json={"records": [{"attributes": {"type": "Lead"}, **LEAD}]},
    )
    assert collection == [
        {
            "success": False,
            "errors": [
                {
                    "statusCode": REFUSED["errorCode"],
                    "message": REFUSED["message"],
                    "fields": [],
                }
            ],
        }
    ]
    assert emulator_control.records(emulator_org["org_id"], "Lead") == []


@pytest.mark.usefixtures("no_leads")
def test_soap_create_is_refused_with_the_same_status_code(
    sf_emulator: EmulatorServer,
    emulator_control: EmulatorControl,
    emulator_org: dict[str, Any],
    emulator_token: dict[str, Any],
) -> None:
    envelope = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:urn="urn:partner.soap.sforce.com" '
        'xmlns:urn1="urn:sobject.partner.soap.sforce.com">'
        "<soapenv:Header><urn:SessionHeader>"
        f"<urn:sessionId>{emulator_token['access_token']}</urn:sessionId>"
        "</urn:SessionHeader></soapenv:Header><soapenv:Body><urn:create><urn:sObjects>"
        "<urn1:type>Lead</urn1:type><urn1:LastName>Doe</urn1:LastName>"
        "<urn1:Company>Acme</urn1:Company></urn:sObjects></urn:create></soapenv:Body>"
        "</soapenv:Envelope>"
    )
    answer = trusting_session(sf_emulator).post(
        f"{sf_emulator.instance_url}/services/Soap/u/59.0",
        data=envelope.encode(),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
        timeout=10,
    )

    assert answer.status_code == 200, answer.text
    root = ElementTree.fromstring(answer.content)
    assert root.findtext(f".//{{{PARTNER}}}success") == "false"
    assert root.findtext(f".//{{{PARTNER}}}statusCode") == REFUSED["errorCode"]
    assert root.findtext(f".//{{{PARTNER}}}message") == REFUSED["message"]
    assert emulator_control.records(emulator_org["org_id"], "Lead") == []


def test_permissions_can_be_given_when_the_user_is_created(
    emulator_control: EmulatorControl,
) -> None:
    org = emulator_control.create_org(
        "Limited",
        users=[{"username": "lim@limited.example.com", "cannot_create": ["Contact"]}],
    )
    assert org["users"][0]["cannot_create"] == ["Contact"]


def test_control_api_refuses_unknown_objects_and_users(
    emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    org_id, user_id = emulator_org["org_id"], emulator_org["users"][0]["id"]
    with pytest.raises(EmulatorControlError, match=r"400.*Widget is not an object users create"):
        emulator_control.set_user_permissions(org_id, user_id, cannot_create=["Widget"])
    with pytest.raises(EmulatorControlError, match="404"):
        emulator_control.set_user_permissions(org_id, "005000000000000AAA", cannot_create=[])
