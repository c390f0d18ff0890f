"""Every Salesforce error the sync stores has plain words: what it means and what to do."""

from __future__ import annotations

import pytest

from integrations.salesforce.card.plain_errors import PLAIN_ERRORS, explain_error

# The codes issue 14 names, plus those the sync and the engine record themselves.
CODES = [
    "INVALID_CROSS_REFERENCE_KEY",
    "REQUIRED_FIELD_MISSING",
    "STRING_TOO_LONG",
    "INVALID_EMAIL_ADDRESS",
    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
    "FIELD_INTEGRITY_EXCEPTION",
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
    "DUPLICATES_DETECTED",
    "REQUEST_LIMIT_EXCEEDED",
    "INSUFFICIENT_ACCESS",
    "INSUFFICIENT_ACCESS_OR_READONLY",
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
    "INVALID_SESSION_ID",
    "invalid_grant",
    "SERVER_UNAVAILABLE",
    "UNABLE_TO_LOCK_ROW",
    "INTERNAL_ERROR",
    "PERSON_BUSY",
    "TIMEOUT",
    "CONNECTION_ERROR",
    "SALESFORCE_UNAVAILABLE",
    "API_BUDGET",
    "REDIS_UNAVAILABLE",
    "DATABASE_UNAVAILABLE",
    "INVALID_HEADER_OPTIONS",
    "CANNOT_UPDATE_CONVERTED_LEAD",
    "ENTITY_IS_DELETED",
]


@pytest.mark.parametrize("code", CODES)
def test_each_code_says_what_it_means_and_what_to_do(code: str) -> None:
    assert code in PLAIN_ERRORS
    plain = explain_error(code, "some message")
    assert plain.meaning.endswith(".") and plain.action.endswith(".")
    # Plain words: no code, no jargon the owner cannot act on.
    for jargon in ("_", "SOAP", "Header", "sObject"):
        assert jargon not in plain.sentence, (code, jargon)


def test_a_missing_rule_is_named_when_the_card_asks_for_one() -> None:
    plain = explain_error(
        "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", rule_id_chosen=True
    )
    assert (
        plain.meaning == "Salesforce says the assignment rule chosen on this card does not exist."
    )
    generic = explain_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
    assert generic.meaning == "Salesforce could not find a record or rule this inquiry refers to."


def test_a_blocked_duplicate_reads_like_the_duplicate_rule() -> None:
    assert explain_error("BLOCKED_DUPLICATE") == PLAIN_ERRORS["DUPLICATES_DETECTED"]


def test_an_unknown_code_still_gets_a_sentence() -> None:
    plain = explain_error("SOMETHING_NEW", "whatever")
    assert plain.meaning == "Salesforce refused this inquiry."
    assert "details below" in plain.action
