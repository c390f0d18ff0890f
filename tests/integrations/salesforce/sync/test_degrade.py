"""Which refusals degrade a single field (`sync.degrade`); the writes themselves are tested
against the emulator in test_sync_real_orgs.py."""

from __future__ import annotations

from integrations.salesforce.api.errors import SalesforceValidationError
from integrations.salesforce.sync.degrade import refused_fields


def test_which_refusals_degrade_a_single_field() -> None:
    """degrade.refused_fields: the named field for the four codes, the state (and a refused
    country's state) for address refusals, nothing for a record-level refusal."""
    sent = {"LastName", "Email", "StateCode", "CountryCode", "LeadSource"}

    def refused(code: str, fields: list[str], message: str = "") -> dict[str, str]:
        error = SalesforceValidationError(code, message, fields)
        return {k: v.code for k, v in refused_fields(error, sent).items()}

    assert refused("INVALID_EMAIL_ADDRESS", ["Email"]) == {"Email": "INVALID_EMAIL_ADDRESS"}
    assert refused("INVALID_EMAIL_ADDRESS", []) == {"Email": "INVALID_EMAIL_ADDRESS"}
    assert refused("STRING_TOO_LONG", ["LastName"]) == {"LastName": "STRING_TOO_LONG"}
    assert refused("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["LeadSource"]) == {
        "LeadSource": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    }
    assert set(refused("FIELD_INTEGRITY_EXCEPTION", ["CountryCode"])) == {
        "CountryCode",
        "StateCode",
    }
    assert set(refused("FIELD_INTEGRITY_EXCEPTION", [], "There's a problem with this state")) == {
        "StateCode"
    }
    assert refused("REQUIRED_FIELD_MISSING", ["Company"]) == {}
    assert refused("FIELD_CUSTOM_VALIDATION_EXCEPTION", ["Email"]) == {}
