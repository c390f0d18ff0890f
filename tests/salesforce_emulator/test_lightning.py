"""The Lightning record URL on the instance host shows the record (issue 14, "Record links").

Fact (docs/salesforce-facts.md section 8): a record's Lightning URL is
``https://<host>/lightning/r/<SObject>/<Id>/view``.
"""

from __future__ import annotations

from typing import Any

from simple_salesforce import Salesforce

from salesforce_emulator import EmulatorServer
from tests.salesforce_emulator.conftest import trusting_session


def page(server: EmulatorServer, path: str) -> Any:
    return trusting_session(server).get(f"{server.instance_url}{path}", timeout=10)


def test_record_url_shows_the_record(sf_emulator: EmulatorServer, sf: Salesforce) -> None:
    lead = sf.Lead.create(
        {"FirstName": "Ann", "LastName": "Reed", "Company": "Reed Plumbing", "Email": "a@x.io"}
    )["id"]
    response = page(sf_emulator, f"/lightning/r/Lead/{lead}/view")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<h1>Ann Reed</h1>" in response.text
    assert "Reed Plumbing" in response.text and "a@x.io" in response.text
    assert "Open - Not Contacted" in response.text  # the defaulted Status
    assert "Acme Plumbing" in response.text  # the org's name


def test_unknown_id_is_a_clear_404_page(sf_emulator: EmulatorServer, sf: Salesforce) -> None:
    response = page(sf_emulator, "/lightning/r/Lead/00Q000000000000AAA/view")
    assert response.status_code == 404
    assert "Record not found" in response.text
    assert "00Q000000000000AAA" in response.text
    assert page(sf_emulator, "/lightning/r/Nope/00Q000000000000AAA/view").status_code == 404


def test_deleted_record_says_so(sf_emulator: EmulatorServer, sf: Salesforce) -> None:
    contact = sf.Contact.create({"LastName": "Reed"})["id"]
    sf.Contact.delete(contact)
    response = page(sf_emulator, f"/lightning/r/Contact/{contact}/view")
    assert response.status_code == 404
    assert "deleted" in response.text


def test_record_url_takes_a_15_character_id(sf_emulator: EmulatorServer, sf: Salesforce) -> None:
    account = sf.Account.create({"Name": "Reed Plumbing"})["id"]
    response = page(sf_emulator, f"/lightning/r/Account/{account[:15]}/view")
    assert response.status_code == 200 and "Reed Plumbing" in response.text
