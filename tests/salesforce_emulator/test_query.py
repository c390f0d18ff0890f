"""SOQL query and SOSL search, driven with simple-salesforce.

Facts: ../shared/SALESFORCE.md section 2 ("Query", "SOSL", "SOQL string escaping") and
LANDSCAPE.md section 0 (SOQL = ignores case).
"""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import SalesforceMalformedRequest

from salesforce_emulator import EmulatorControl


@pytest.fixture
def leads(sf: Salesforce) -> dict[str, str]:
    specs = {
        "oneil": {
            "FirstName": "Ann",
            "LastName": "O'Neil",
            "Company": "Back\\slash Ltd",
            "Email": "Ann.ONeil@Example.com",
            "Phone": "+1 (415) 555-1212",
        },
        "bo": {"LastName": "Bo", "Company": "Beta", "Email": "bo@example.com", "Phone": "555"},
        "cy": {"LastName": "Cy", "Company": "Gamma", "MobilePhone": "415-555-1212"},
    }
    return {key: sf.Lead.create(spec)["id"] for key, spec in specs.items()}


def _ids(result: dict[str, Any]) -> list[str]:
    return [r["Id"] for r in result["records"]]


def test_equals_on_text_ignores_case(sf: Salesforce, leads: dict[str, str]) -> None:
    """SOQL = ignores case (LANDSCAPE.md section 0); records carry attributes."""
    result = sf.query("SELECT Id, Email FROM Lead WHERE Email = 'ann.oneil@example.com'")
    assert result["totalSize"] == 1 and result["done"] is True
    assert result["records"][0]["attributes"]["type"] == "Lead"
    assert result["records"][0]["Email"] == "Ann.ONeil@Example.com"


def test_string_escaping_with_format_soql(sf: Salesforce, leads: dict[str, str]) -> None:
    """' and \\ are escaped as \\' and \\\\ (simple-salesforce format_soql implements this)."""
    soql = format_soql(
        "SELECT Id FROM Lead WHERE LastName = {} AND Company = {}", "O'Neil", "Back\\slash Ltd"
    )
    assert _ids(sf.query(soql)) == [leads["oneil"]]


def test_in_or_and_parentheses_order_and_limit(sf: Salesforce, leads: dict[str, str]) -> None:
    """Field lists, IN, AND/OR with parentheses, ORDER BY, LIMIT."""
    soql = (
        "SELECT Id, LastName FROM Lead WHERE (Email IN ('bo@example.com', "
        "'ANN.ONEIL@example.com') OR MobilePhone != null) AND IsConverted = false "
        "ORDER BY LastName DESC LIMIT 2"
    )
    result = sf.query(soql)
    assert [r["LastName"] for r in result["records"]] == ["O'Neil", "Cy"]


def test_phone_equality_is_raw(sf: Salesforce, leads: dict[str, str]) -> None:
    """SOQL phone matching compares raw strings (LANDSCAPE.md section 0)."""
    assert sf.query("SELECT Id FROM Lead WHERE Phone = '4155551212'")["totalSize"] == 0


def test_long_or_of_in_and_like_terms(sf: Salesforce, leads: dict[str, str]) -> None:
    """An OR of an email IN list and many LIKE terms on several phone fields (the sync's batch
    look-up): each row matches when any term does; LIKE and = ignore case, `_` is one
    character, `\\%` a literal percent sign (SALESFORCE.md section 2)."""
    likes = [f"Phone LIKE '%9%{n}%'" for n in range(40)]
    # Our own constant terms, no input: S608 does not apply.
    soql = (
        "SELECT Id FROM Lead WHERE Email IN ('nobody@example.com', 'BO@example.com') OR "  # noqa: S608
        + " OR ".join(likes)
        + " OR MobilePhone LIKE '%4_5%5%5%1%2%1%2' OR LastName LIKE 'o\\'n%' OR Phone LIKE '1\\%'"
        + " ORDER BY LastName"
    )
    assert _ids(sf.query(soql)) == [leads["bo"], leads["cy"], leads["oneil"]]
    none = "SELECT Id FROM Lead WHERE Email IN ('x@example.com') OR " + " OR ".join(likes)  # noqa: S608
    assert sf.query(none)["totalSize"] == 0


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        (
            "SELECT Id FROM Lead WHERE Email = 'a' AND Phone = 'b' OR LastName = 'c'",
            "MALFORMED_QUERY",
        ),
        ("SELECT Id FROM Lead WHERE Email = 'it\\'s", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead WHERE Email = 'bad \\q escape'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead GROUP BY Email", "MALFORMED_QUERY"),
        ("SELECT Id, Shoe__c FROM Lead", "INVALID_FIELD"),
        ("SELECT Id FROM Widget__c", "INVALID_TYPE"),
    ],
)
def test_unsupported_or_bad_soql(sf: Salesforce, soql: str, code: str) -> None:
    """MALFORMED_QUERY for bad SOQL; INVALID_FIELD "No such column" (confirmed for SOQL)."""
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)
    assert caught.value.content[0]["errorCode"] == code


def test_converted_leads_show_in_soql(
    sf: Salesforce,
    leads: dict[str, str],
    emulator_control: EmulatorControl,
    emulator_org: dict[str, Any],
) -> None:
    """Converted leads keep IsConverted = true and ConvertedContactId, and SOQL returns them."""
    contact = emulator_control.convert_lead(emulator_org["org_id"], leads["bo"])
    result = sf.query(
        format_soql(
            "SELECT Id, ConvertedContactId FROM Lead WHERE Id = {} AND IsConverted = true",
            leads["bo"],
        )
    )
    assert result["records"][0]["ConvertedContactId"] == contact


def test_paging_with_next_records_url(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """nextRecordsUrl is present only when done is false."""
    for n in range(3):
        emulator_control.insert_record(
            emulator_org["org_id"], "Lead", {"LastName": f"L{n}", "Company": "C"}
        )
    result = sf.query("SELECT Id FROM Lead")
    assert result["done"] is True and "nextRecordsUrl" not in result
    # Sforce-Query-Options batchSize (minimum 200) pages bigger results.
    for n in range(250):
        emulator_control.insert_record(
            emulator_org["org_id"], "Lead", {"LastName": f"M{n}", "Company": "C"}
        )
    first = sf.query("SELECT Id FROM Lead", headers={"Sforce-Query-Options": "batchSize=200"})
    assert first["done"] is False and first["totalSize"] == 253
    assert len(first["records"]) == 200
    rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert rest["done"] is True and len(rest["records"]) == 53
    every = sf.query_all("SELECT Id FROM Lead", headers={"Sforce-Query-Options": "batchSize=200"})
    assert len(every["records"]) == 253


def test_sosl_phone_search_matches_any_format(sf: Salesforce, leads: dict[str, str]) -> None:
    """SOSL IN PHONE FIELDS; digits-only comparison (UNCONFIRMED normalisation, suggested)."""
    found = sf.search(
        "FIND {4155551212} IN PHONE FIELDS RETURNING Lead(Id, Phone, MobilePhone), Contact(Id)"
    )
    assert sorted(r["Id"] for r in found["searchRecords"]) == sorted([leads["oneil"], leads["cy"]])
    assert found["searchRecords"][0]["attributes"]["type"] == "Lead"


def test_sosl_escaped_reserved_characters(sf: Salesforce, leads: dict[str, str]) -> None:
    """FIND reserved characters must be backslash-escaped; a raw (415) 555-1212 is refused."""
    escaped = sf.search("FIND {\\(415\\) 555\\-1212} IN PHONE FIELDS RETURNING Lead(Id)")
    assert len(escaped["searchRecords"]) == 2
    with pytest.raises(SalesforceMalformedRequest):
        sf.search("FIND {(415) 555-1212} IN PHONE FIELDS RETURNING Lead(Id)")


def test_sosl_email_search_with_where_and_limit(sf: Salesforce, leads: dict[str, str]) -> None:
    """SOSL IN EMAIL FIELDS RETURNING Lead(fields WHERE ... LIMIT n); searchRecords wrapper."""
    found = sf.search(
        "FIND {ann.oneil@example.com} IN EMAIL FIELDS "
        "RETURNING Lead(Id, Email WHERE IsConverted = false LIMIT 1), Contact(Id, Email)"
    )
    assert [r["Id"] for r in found["searchRecords"]] == [leads["oneil"]]
