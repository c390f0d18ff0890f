"""REST API on the instance host, driven with simple-salesforce over https.

Each test names the fact of ../shared/SALESFORCE.md section 2 ("REST API") or 3 ("Lead and
Contact fields") it checks.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest, SalesforceResourceNotFound

from salesforce_emulator import EmulatorControl, EmulatorServer

from .conftest import trusting_session

LEAD = {"FirstName": "Jane", "LastName": "Doe", "Company": "Acme", "Email": "jane@example.com"}


def test_versions_list_is_not_counted(
    sf_emulator: EmulatorServer,
    sf: Salesforce,
    emulator_control: EmulatorControl,
    emulator_org: dict[str, Any],
) -> None:
    """GET /services/data/ lists versions and is not counted against limits."""
    before = emulator_control.api_usage(emulator_org["org_id"])["used"]
    response = trusting_session(sf_emulator).get(f"{sf_emulator.instance_url}/services/data/")
    assert response.status_code == 200
    assert {
        "label": "Winter '24",
        "url": "/services/data/v59.0",
        "version": "59.0",
    } in response.json()
    assert "Sforce-Limit-Info" not in response.headers
    assert emulator_control.api_usage(emulator_org["org_id"])["used"] == before


def test_create_get_update_delete(sf: Salesforce) -> None:
    """Create -> 201 {id, success, errors}; update -> 204; deleted -> ENTITY_IS_DELETED."""
    created = sf.Lead.create(LEAD)
    assert created["success"] is True and created["errors"] == []
    assert created["id"].startswith("00Q") and len(created["id"]) == 18
    record = sf.Lead.get(created["id"])
    assert record["attributes"] == {
        "type": "Lead",
        "url": f"/services/data/v59.0/sobjects/Lead/{created['id']}",
    }
    assert record["Email"] == "jane@example.com"
    assert sf.Lead.update(created["id"], {"City": "Oakland"}) == 204
    assert sf.Lead.get(created["id"])["City"] == "Oakland"
    assert sf.Lead.get(created["id"][:15])["Id"] == created["id"]  # 15-char ids work too
    assert sf.Lead.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Lead.get(created["id"])
    assert caught.value.content[0]["errorCode"] == "ENTITY_IS_DELETED"


def test_contact_and_account(sf: Salesforce) -> None:
    """Contact requires LastName only; AccountId references an Account."""
    account = sf.Account.create({"Name": "Acme"})["id"]
    contact = sf.Contact.create({"LastName": "Roe", "AccountId": account, "MailingCity": "SF"})
    assert sf.Contact.get(contact["id"])["AccountId"] == account


def test_unknown_record_is_not_found(sf: Salesforce) -> None:
    """NOT_FOUND 404 "The requested resource does not exist"."""
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Lead.get("00Q5e000000AAAAAAA")
    assert caught.value.content[0]["errorCode"] == "NOT_FOUND"


def _error(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        call(*args, **kwargs)
    assert caught.value.status == 400
    return caught.value.content[0]


def test_required_fields(sf: Salesforce) -> None:
    """REQUIRED_FIELD_MISSING: Lead needs LastName and Company, Contact needs LastName."""
    error = _error(sf.Lead.create, {"LastName": "Doe"})
    assert error == {
        "message": "Required fields are missing: [Company]",
        "errorCode": "REQUIRED_FIELD_MISSING",
        "fields": ["Company"],
    }
    assert _error(sf.Contact.create, {"FirstName": "x"})["fields"] == ["LastName"]


def test_string_too_long_uses_the_field_reference_lengths(sf: Salesforce) -> None:
    """STRING_TOO_LONG "<Label>: data value too large: <value> (max length=N)"; Lead City 40."""
    error = _error(sf.Lead.create, {**LEAD, "City": "x" * 41})
    assert error["errorCode"] == "STRING_TOO_LONG"
    assert error["message"] == f"City: data value too large: {'x' * 41} (max length=40)"
    assert error["fields"] == ["City"]
    sf.Lead.create({**LEAD, "City": "x" * 40, "PostalCode": "1" * 20})


def test_invalid_email(sf: Salesforce) -> None:
    """INVALID_EMAIL_ADDRESS with fields ["Email"] (text UNCONFIRMED)."""
    error = _error(sf.Lead.create, {**LEAD, "Email": "not-an-email"})
    assert error["errorCode"] == "INVALID_EMAIL_ADDRESS"
    assert error["fields"] == ["Email"]


def test_id_in_body_and_unknown_field(sf: Salesforce) -> None:
    """Sending Id -> INVALID_FIELD "The Id field should not be specified..."; unknown field too."""
    error = _error(sf.Lead.create, {**LEAD, "Id": "00Q5e000000AAAAAAA"})
    assert error["message"] == "The Id field should not be specified in the sobject data."
    assert _error(sf.Lead.create, {**LEAD, "Shoe_Size__c": "9"})["errorCode"] == "INVALID_FIELD"


def test_lead_status_defaults_to_the_org_default(sf: Salesforce) -> None:
    """Lead.Status is defaulted on create from the default LeadStatus ("Open - Not Contacted")."""
    created = sf.Lead.create(LEAD)["id"]
    assert sf.Lead.get(created)["Status"] == "Open - Not Contacted"
    other = sf.Lead.create({**LEAD, "Status": "Working - Contacted"})["id"]
    assert sf.Lead.get(other)["Status"] == "Working - Contacted"


def test_describe_has_lengths_required_fields_and_picklists(sf: Salesforce) -> None:
    """Section 3: lengths (Company 255, Email 80), required LastName/Company, default picklists."""
    fields = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert fields["Company"]["length"] == 255 and fields["Email"]["length"] == 80
    assert fields["LastName"]["nillable"] is False and fields["LastName"]["createable"]
    assert fields["FirstName"]["nillable"] is True
    statuses = [v["value"] for v in fields["Status"]["picklistValues"]]
    assert statuses[0] == "Open - Not Contacted"
    assert next(v for v in fields["Status"]["picklistValues"] if v["defaultValue"])["value"] == (
        "Open - Not Contacted"
    )
    assert [v["value"] for v in fields["LeadSource"]["picklistValues"]] == [
        "Web",
        "Phone Inquiry",
        "Partner Referral",
        "Purchased List",
        "Other",
    ]
    contact = {f["name"]: f for f in sf.Contact.describe()["fields"]}
    assert contact["MailingPostalCode"]["length"] == 20


def test_converted_lead_cannot_be_updated(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """Converted leads: IsConverted + ConvertedContactId; updating one fails."""
    lead = sf.Lead.create(LEAD)["id"]
    contact = emulator_control.convert_lead(emulator_org["org_id"], lead)
    record = sf.Lead.get(lead)
    assert record["IsConverted"] is True and record["ConvertedContactId"] == contact
    error = _error(sf.Lead.update, lead, {"City": "Oakland"})
    assert error["errorCode"] == "CANNOT_UPDATE_CONVERTED_LEAD"
    assert error["message"] == "cannot reference converted lead"
    assert sf.Contact.get(contact)["Email"] == LEAD["Email"]


def test_limit_info_header_on_every_counted_response(
    sf_emulator: EmulatorServer, emulator_token: dict[str, Any]
) -> None:
    """Sforce-Limit-Info: api-usage=N/M on counted responses, errors included."""
    session = trusting_session(sf_emulator)
    session.headers["Authorization"] = f"Bearer {emulator_token['access_token']}"
    base = f"{sf_emulator.instance_url}/services/data/v59.0"
    first = session.get(f"{base}/limits")
    second = session.post(f"{base}/sobjects/Lead", json={"LastName": "x"})
    assert first.headers["Sforce-Limit-Info"] == "api-usage=1/15000"
    assert second.status_code == 400
    assert second.headers["Sforce-Limit-Info"] == "api-usage=2/15000"


def test_limits_endpoint(sf: Salesforce) -> None:
    """GET limits/ -> {"DailyApiRequests": {"Max", "Remaining"}, ...}."""
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 15000, "Remaining": 14999}
    assert limits["SingleEmail"]["Max"] == 5000


def test_composite_with_references_is_one_call(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """Composite: @{ref.id} references, always 200, the whole call counts as one API call."""
    before = emulator_control.api_usage(emulator_org["org_id"])["used"]
    answer = sf.restful(
        "composite",
        method="POST",
        json={
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Account",
                    "referenceId": "acct",
                    "body": {"Name": "Acme"},
                },
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Contact",
                    "referenceId": "ct",
                    "body": {"LastName": "Roe", "AccountId": "@{acct.id}"},
                },
                {
                    "method": "GET",
                    "url": "/services/data/v59.0/sobjects/Contact/@{ct.id}?fields=AccountId",
                    "referenceId": "read",
                },
            ]
        },
    )
    responses = answer["compositeResponse"]
    assert [r["httpStatusCode"] for r in responses] == [201, 201, 200]
    assert responses[2]["body"]["AccountId"] == responses[0]["body"]["id"]
    assert emulator_control.api_usage(emulator_org["org_id"])["used"] == before + 1


def test_composite_all_or_none_rolls_back(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """allOrNone with one failure: the others get 400 PROCESSING_HALTED and nothing is saved."""
    answer = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": True,
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Lead",
                    "referenceId": "good",
                    "body": LEAD,
                },
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/sobjects/Lead",
                    "referenceId": "bad",
                    "body": {"LastName": "x"},
                },
            ],
        },
    )
    good, bad = answer["compositeResponse"]
    assert good["httpStatusCode"] == 400
    assert good["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert bad["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert emulator_control.records(emulator_org["org_id"], "Lead") == []


def test_composite_rejects_forbidden_subrequest_headers(sf: Salesforce) -> None:
    """Subrequests may not set Accept, Authorization or Content-Type (whole request 400)."""
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful(
            "composite",
            method="POST",
            json={
                "compositeRequest": [
                    {
                        "method": "GET",
                        "url": "/services/data/v59.0/limits",
                        "referenceId": "x",
                        "httpHeaders": {"Authorization": "Bearer y"},
                    }
                ]
            },
        )


def test_composite_carries_collections_with_references_into_their_results(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """sObject Collections inside Composite (allOrNone false): a later subrequest may reference
    one record of a collection's result (`@{ref[1].id}`); a reference to a record that failed
    fails only the subrequest that holds it."""
    lead_url = "/services/data/v59.0/sobjects/Lead"
    answer = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": False,
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": "/services/data/v59.0/composite/sobjects",
                    "referenceId": "leads",
                    "body": {
                        "allOrNone": False,
                        "records": [
                            {"attributes": {"type": "Lead"}, "LastName": "x"},  # no Company
                            {"attributes": {"type": "Lead"}, **LEAD},
                        ],
                    },
                },
                {
                    "method": "PATCH",
                    "url": f"{lead_url}/@{{leads[1].id}}",
                    "referenceId": "good",
                    "body": {"City": "Shelbyville"},
                },
                {
                    "method": "PATCH",
                    "url": f"{lead_url}/@{{leads[0].id}}",
                    "referenceId": "bad",
                    "body": {"City": "Ogdenville"},
                },
            ],
        },
    )
    created, good, bad = answer["compositeResponse"]
    assert [r["success"] for r in created["body"]] == [False, True]
    assert good["httpStatusCode"] == 204
    assert bad["httpStatusCode"] == 400
    assert bad["body"][0]["errorCode"] == "PROCESSING_HALTED"
    (lead,) = emulator_control.records(emulator_org["org_id"], "Lead")
    assert lead["City"] == "Shelbyville"


def test_composite_takes_at_most_five_query_or_collections_subrequests(sf: Salesforce) -> None:
    """SALESFORCE.md "Composite": of the 25 subrequests, at most 5 may be queries or sObject
    Collections (the stricter reading of an UNCONFIRMED sub-limit): a sixth fails the whole
    request with 400."""
    query = {"method": "GET", "url": "/services/data/v59.0/query/?q=SELECT+Id+FROM+Lead"}
    five = [{**query, "referenceId": f"q{n}"} for n in range(5)]
    answer = sf.restful("composite", method="POST", json={"compositeRequest": five})
    assert [r["httpStatusCode"] for r in answer["compositeResponse"]] == [200] * 5
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful(
            "composite",
            method="POST",
            json={"compositeRequest": [*five, {**query, "referenceId": "q5"}]},
        )


def test_collections_create_and_update_use_status_code_keys(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """composite/sobjects: 200, results in input order, statusCode (not errorCode), one call."""
    before = emulator_control.api_usage(emulator_org["org_id"])["used"]
    results = sf.restful(
        "composite/sobjects",
        method="POST",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Lead"}, **LEAD},
                {"attributes": {"type": "Lead"}, "LastName": "NoCompany"},
                {"attributes": {"type": "Contact"}, "LastName": "Roe"},
            ],
        },
    )
    assert results[0]["success"] is True and results[2]["success"] is True
    assert results[1] == {
        "success": False,
        "errors": [
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [Company]",
                "fields": ["Company"],
            }
        ],
    }
    updated = sf.restful(
        "composite/sobjects",
        method="PATCH",
        json={"records": [{"attributes": {"type": "Lead"}, "id": results[0]["id"], "City": "X"}]},
    )
    assert updated == [{"id": results[0]["id"], "success": True, "errors": []}]
    assert emulator_control.api_usage(emulator_org["org_id"])["used"] == before + 2
    assert sf.Lead.get(results[0]["id"])["City"] == "X"


def test_collections_all_or_none(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """allOrNone: others get ALL_OR_NONE_OPERATION_ROLLED_BACK and nothing is saved."""
    results = sf.restful(
        "composite/sobjects",
        method="POST",
        json={
            "allOrNone": True,
            "records": [
                {"attributes": {"type": "Lead"}, **LEAD},
                {"attributes": {"type": "Lead"}, "LastName": "NoCompany"},
            ],
        },
    )
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert emulator_control.records(emulator_org["org_id"], "Lead") == []


def test_invalid_token_on_rest_is_401(
    sf_emulator: EmulatorServer, emulator_org: dict[str, Any]
) -> None:
    """INVALID_SESSION_ID 401 for an unknown token."""
    session = trusting_session(sf_emulator)
    answer = session.get(
        f"{sf_emulator.instance_url}/services/data/v59.0/limits",
        headers={"Authorization": "Bearer nope"},
    )
    assert answer.status_code == 401
    assert answer.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    assert isinstance(answer, requests.Response)
