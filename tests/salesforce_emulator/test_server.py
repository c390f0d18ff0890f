"""The instance host mounts the SOAP partner endpoint: raw envelopes over https.

Facts: ../shared/SALESFORCE.md section 4 (endpoint /services/Soap/u/NN.0[/orgId], headers
EmailHeader and AssignmentRuleHeader) and seed 000 (auto-response only with
triggerAutoResponseEmail).
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from defusedxml import ElementTree

from salesforce_emulator import EmulatorControl, EmulatorServer

from .conftest import trusting_session

PARTNER = "urn:partner.soap.sforce.com"


def _envelope(token: str, headers: str, body: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:urn="urn:partner.soap.sforce.com" '
        'xmlns:urn1="urn:sobject.partner.soap.sforce.com">'
        f"<soapenv:Header><urn:SessionHeader><urn:sessionId>{token}</urn:sessionId>"
        f"</urn:SessionHeader>{headers}</soapenv:Header>"
        f"<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    )


def _create_lead(server: EmulatorServer, token: str, headers: str, path: str) -> requests.Response:
    body = (
        "<urn:create><urn:sObjects><urn1:type>Lead</urn1:type>"
        "<urn1:FirstName>Jane</urn1:FirstName><urn1:LastName>Doe</urn1:LastName>"
        "<urn1:Company>Acme</urn1:Company><urn1:Email>jane@example.com</urn1:Email>"
        "</urn:sObjects></urn:create>"
    )
    return trusting_session(server).post(
        f"{server.instance_url}{path}",
        data=_envelope(token, headers, body).encode(),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
        timeout=10,
    )


@pytest.fixture
def auto_response(emulator_control: EmulatorControl, emulator_org: dict[str, Any]) -> None:
    emulator_control.set_auto_response_rule(
        emulator_org["org_id"],
        "Lead",
        [{"template": "Thanks", "from_address": "hello@acme.example.com"}],
    )


@pytest.mark.usefixtures("auto_response")
def test_soap_create_over_https_fires_auto_response_with_email_header(
    sf_emulator: EmulatorServer,
    emulator_control: EmulatorControl,
    emulator_org: dict[str, Any],
    emulator_token: dict[str, Any],
) -> None:
    """Seed 000: EmailHeader.triggerAutoResponseEmail=true on a SOAP create sends the email."""
    header = (
        "<urn:EmailHeader><urn:triggerAutoResponseEmail>true</urn:triggerAutoResponseEmail>"
        "</urn:EmailHeader>"
    )
    path = f"/services/Soap/u/59.0/{emulator_org['org_id'][:15]}"
    answer = _create_lead(sf_emulator, emulator_token["access_token"], header, path)
    assert answer.status_code == 200, answer.text
    root = ElementTree.fromstring(answer.content)
    assert root.findtext(f".//{{{PARTNER}}}success") == "true"
    lead_id = root.findtext(f".//{{{PARTNER}}}id")
    (email,) = emulator_control.emails(emulator_org["org_id"])
    assert email["record_id"] == lead_id and email["api"] == "soap"
    call = emulator_control.calls(emulator_org["org_id"])[-1]
    assert call["api"] == "soap" and call["status"] == 200


def test_soap_drop_connection_fault(
    sf_emulator: EmulatorServer,
    emulator_control: EmulatorControl,
    emulator_org: dict[str, Any],
    emulator_token: dict[str, Any],
) -> None:
    """Scripted dropped connections apply to SOAP calls too."""
    emulator_control.add_fault(emulator_org["org_id"], "drop_connection", count=1, api="soap")
    with pytest.raises(requests.ConnectionError):
        _create_lead(sf_emulator, emulator_token["access_token"], "", "/services/Soap/u/59.0")
    assert emulator_control.records(emulator_org["org_id"], "Lead") == []
