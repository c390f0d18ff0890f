"""Unit tests of matching: phone and email normalisation, look-up queries, the choice rules."""

from __future__ import annotations

from integrations.salesforce.sync.matching import (
    Candidate,
    MatchRequest,
    account_key,
    account_lookup_soql,
    choose_account,
    choose_match,
    is_same_person,
    lookup_soql,
    normalize_phone,
    person_keys,
    phone_like_pattern,
)


def test_phone_numbers_normalise_to_e164_with_the_source_region() -> None:
    assert normalize_phone("(415) 555-1212", region="US") == "+14155551212"
    assert normalize_phone("415.555.1212", region="US") == "+14155551212"
    assert normalize_phone("+1 415 555 1212", region="GB") == "+14155551212"
    assert normalize_phone("020 7946 0958", region="GB") == "+442079460958"
    assert normalize_phone("12", region="US") is None
    assert normalize_phone("not a phone", region="US") is None
    assert normalize_phone("", region="US") is None


def test_person_keys_are_normalised_and_sorted() -> None:
    keys = person_keys(email=" Ann@Example.COM ", phone="(415) 555-1212", region="US")
    assert keys.email == "ann@example.com"
    assert keys.phone == "+14155551212"
    assert keys.keys == ["email:ann@example.com", "phone:+14155551212"]
    assert person_keys(email="", phone="", region="US").keys == []


def test_phone_like_pattern_uses_the_national_number_digits() -> None:
    assert phone_like_pattern("+14155551212") == "%4%1%5%5%5%5%1%2%1%2%"
    assert phone_like_pattern("+442079460958") == "%2%0%7%9%4%6%0%9%5%8%"


def test_lookup_soql_asks_for_email_or_any_phone_field() -> None:
    soql = lookup_soql(
        "Lead", [MatchRequest(key=1, email="o'neil@example.com", phone="+14155551212")]
    )
    assert soql == (
        "SELECT Id, Email, Phone, MobilePhone, IsConverted, ConvertedContactId, "
        "LastModifiedDate, CreatedDate FROM Lead WHERE Email IN ('o\\'neil@example.com') "
        "OR Phone LIKE '%4%1%5%5%5%5%1%2%1%2%' OR MobilePhone LIKE '%4%1%5%5%5%5%1%2%1%2%' "
        "ORDER BY LastModifiedDate DESC LIMIT 20"
    )


REQUEST = MatchRequest(key=1, email="ann@example.com", phone="+14155551212", region="US")


def test_no_candidates_no_match() -> None:
    assert choose_match(REQUEST, []).match is None


def test_contact_beats_lead() -> None:
    result = choose_match(
        REQUEST,
        [
            Candidate("Lead", "00Q000000000001AAA", email="ann@example.com",
                      last_modified="2030-01-01T00:00:00.000+0000"),
            Candidate("Contact", "003000000000001AAA", email="ANN@example.com",
                      last_modified="2020-01-01T00:00:00.000+0000"),
        ],
    )  # fmt: skip
    assert result.match is not None
    assert (result.match.sobject, result.match.record_id) == ("Contact", "003000000000001AAA")
    assert result.ambiguous


def test_email_beats_phone() -> None:
    result = choose_match(
        REQUEST,
        [
            Candidate("Contact", "003000000000001AAA", phones=("415 555 1212",)),
            Candidate("Lead", "00Q000000000001AAA", email="ann@example.com"),
        ],
    )
    assert result.match is not None
    assert (result.match.record_id, result.match.reason) == ("00Q000000000001AAA", "email")


def test_phone_stored_in_another_format_matches_and_false_positives_do_not() -> None:
    result = choose_match(
        REQUEST,
        [
            # Same digits in order, different number: a false positive of the LIKE pattern.
            Candidate("Lead", "00Q000000000002AAA", phones=("+44 41 5555 1212 9",)),
            Candidate("Lead", "00Q000000000001AAA", phones=("+1 (415) 555-1212",)),
        ],
    )
    assert result.match is not None
    assert (result.match.record_id, result.match.reason) == ("00Q000000000001AAA", "phone")
    assert result.candidates == 1


def test_converted_lead_matches_its_contact() -> None:
    result = choose_match(
        REQUEST,
        [
            Candidate("Lead", "00Q000000000001AAA", email="ann@example.com", is_converted=True,
                      converted_contact_id="003000000000009AAA"),
        ],
    )  # fmt: skip
    assert result.match is not None
    assert result.match.sobject == "Contact"
    assert result.match.record_id == "003000000000009AAA"
    assert result.match.converted_lead_id == "00Q000000000001AAA"


def test_ties_break_on_most_recent_then_lowest_id() -> None:
    older = Candidate("Lead", "00Q000000000001AAA", email="ann@example.com",
                      last_modified="2024-01-01T00:00:00.000+0000")  # fmt: skip
    newer = Candidate("Lead", "00Q000000000009AAA", email="ann@example.com",
                      last_modified="2024-06-01T00:00:00.000+0000")  # fmt: skip
    same_time = Candidate("Lead", "00Q000000000005AAA", email="ann@example.com",
                          last_modified="2024-06-01T00:00:00.000+0000")  # fmt: skip
    result = choose_match(REQUEST, [older, newer])
    assert result.match is not None and result.match.record_id == "00Q000000000009AAA"
    result = choose_match(REQUEST, [newer, same_time, older])
    assert result.match is not None and result.match.record_id == "00Q000000000005AAA"


def test_account_key_ignores_case_and_hashes_what_would_not_fit() -> None:
    assert account_key("Lee Bakery") == account_key("LEE BAKERY") == "account:lee bakery"
    long_key = account_key("B" * 300)
    assert long_key.startswith("account:sha256:") and len(long_key) <= 300


def test_account_lookup_soql_quotes_names_and_orders_oldest_first() -> None:
    assert account_lookup_soql(["O'Brien Co", "Lee Bakery"]) == (
        "SELECT Id, Name, CreatedDate FROM Account WHERE Name IN ('Lee Bakery','O\\'Brien Co') "
        "ORDER BY CreatedDate ASC, Id ASC LIMIT 200"
    )


def test_the_oldest_account_of_that_name_then_the_lowest_id_is_chosen() -> None:
    records = [
        {"Id": "001B", "Name": "Lee Bakery", "CreatedDate": "2021-01-01T00:00:00.000+0000"},
        {"Id": "001C", "Name": "lee bakery", "CreatedDate": "2020-01-01T00:00:00.000+0000"},
        {"Id": "001A", "Name": "LEE BAKERY", "CreatedDate": "2020-01-01T00:00:00.000+0000"},
        {"Id": "0010", "Name": "Lee Bakery Inc", "CreatedDate": "2019-01-01T00:00:00.000+0000"},
    ]
    assert choose_account("Lee Bakery", records) == "001A"
    assert choose_account("Other Co", records) is None


def test_a_phone_match_with_another_email_is_someone_else() -> None:
    """Rule 3: a shared line is not a shared identity."""
    other = Candidate("Lead", "00Q000000000003AAA", email="tom@example.com", phones=("4155551212",))
    no_email = Candidate("Lead", "00Q000000000004AAA", phones=("4155551212",))
    assert is_same_person(REQUEST, other) == (False, False)
    assert is_same_person(REQUEST, no_email) == (False, True)
    assert choose_match(REQUEST, [other]).match is None
    # An inquiry without an email cannot tell the two apart: the line is the person.
    phone_only = MatchRequest(key=2, phone=REQUEST.phone)
    assert is_same_person(phone_only, other) == (False, True)
    # The same email in other letters is the person, whatever the phone.
    shouting = Candidate("Lead", "00Q000000000005AAA", email="ANN@example.com", phones=("1",))
    assert is_same_person(REQUEST, shouting) == (True, False)
