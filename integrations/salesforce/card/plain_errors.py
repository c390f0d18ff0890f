"""Salesforce's error codes in plain words for the owner of a source: what happened and what to do.

One table (`PLAIN_ERRORS`) keyed by the code a sync stores (`InquirySync.error_code`): Salesforce's
own API codes (``statusCode`` / ``errorCode`` of REST and SOAP, see the "Core Data Types" and
"API Fault Element" pages of the SOAP API guide), the OAuth token endpoint's lower-case codes, and
the few codes the service itself records (``PERSON_BUSY``, ``TIMEOUT``, …). The raw code and
message are never replaced: the card shows them in a details line for support.

`explain_error` picks the sentence. A code it does not know gets a generic sentence, never
nothing. INVALID_CROSS_REFERENCE_KEY names a reference Salesforce could not find; when the card
asks for a specific assignment rule, that rule is the usual cause (a rule id of another org, or a
deleted rule), so the sentence says so.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlainError:
    """What an error means (`meaning`) and what the owner can do about it (`action`)."""

    meaning: str
    action: str

    @property
    def sentence(self) -> str:
        return f"{self.meaning} {self.action}"


_RECONNECT = PlainError(
    "Salesforce no longer accepts this connection (the sign-in expired or was revoked).",
    "Click Connect and sign in to Salesforce again; waiting inquiries are then sent.",
)
_PERMISSION = PlainError(
    "The Salesforce user you connected with is not allowed to create or edit this record.",
    "Ask your Salesforce admin to give that user Create and Edit access to the chosen record "
    "type (Leads or Contacts), or connect with another user.",
)
_BUSY = PlainError(
    "Salesforce was busy or briefly unreachable.",
    "Nothing to do: it is tried again automatically.",
)

PLAIN_ERRORS: dict[str, PlainError] = {
    "INVALID_CROSS_REFERENCE_KEY": PlainError(
        "Salesforce could not find a record or rule this inquiry refers to.",
        "Check the assignment rule chosen on this card, then press Retry.",
    ),
    "MALFORMED_ID": PlainError(
        "Salesforce says an ID sent with this inquiry is not a valid Salesforce ID.",
        "Choose the assignment rule again from the list on this card, then press Retry.",
    ),
    "REQUIRED_FIELD_MISSING": PlainError(
        "Your Salesforce org requires a field this inquiry has no value for.",
        "Ask your Salesforce admin whether that field must be required for records created "
        "by integrations, or fill it in the inquiry, then press Retry.",
    ),
    "STRING_TOO_LONG": PlainError(
        "A value of this inquiry is longer than Salesforce's field allows.",
        "Shorten the value (or ask your admin to lengthen the field), then press Retry.",
    ),
    "INVALID_EMAIL_ADDRESS": PlainError(
        "Salesforce does not accept the email address of this inquiry.",
        "Correct the customer's email address, then press Retry.",
    ),
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": PlainError(
        "A validation rule of your Salesforce org refused the record.",
        "The message below is your org's own rule; ask your Salesforce admin to allow "
        "records like this one, then press Retry.",
    ),
    "FIELD_INTEGRITY_EXCEPTION": PlainError(
        "Salesforce refused a value that does not fit its field (for example a state or country "
        "your org does not list).",
        "Correct the value named below in the inquiry, or ask your Salesforce admin to allow it, "
        "then press Retry.",
    ),
    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST": PlainError(
        "A value sent is not one of the choices of a restricted picklist in your org.",
        "Choose Lead source and Status from the lists on this card, then press Retry.",
    ),
    "DUPLICATES_DETECTED": PlainError(
        "A duplicate rule in your Salesforce org blocked the record because a similar one exists.",
        "Ask your Salesforce admin to let integrations save (or report) duplicates, or turn on "
        "Create only for new leads, then press Retry.",
    ),
    "DUPLICATE_VALUE": PlainError(
        "A field that must be unique in your org already has this value on another record.",
        "Ask your Salesforce admin which record holds it, then press Retry.",
    ),
    "CANNOT_UPDATE_CONVERTED_LEAD": PlainError(
        "The Lead was converted in Salesforce, so it can no longer be edited.",
        "Press Retry: the inquiry then updates the Contact the Lead became.",
    ),
    "ENTITY_IS_DELETED": PlainError(
        "The Salesforce record of this person was deleted.",
        "Press Retry: the person is looked up again and a new record is made if needed.",
    ),
    "NOT_FOUND": PlainError(
        "Salesforce could not find the record or the kind of record asked for.",
        "Check that the connected user can see Leads or Contacts, then press Retry.",
    ),
    "REQUEST_LIMIT_EXCEEDED": PlainError(
        "Your Salesforce org has used up its API calls for today.",
        "Nothing to do: inquiries are sent again once Salesforce allows more calls.",
    ),
    "INSUFFICIENT_ACCESS": _PERMISSION,
    "INSUFFICIENT_ACCESS_OR_READONLY": _PERMISSION,
    "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY": PlainError(
        "The connected Salesforce user may not use a record this inquiry refers to (often "
        "the owner or queue an assignment rule picks, or the company's Account).",
        "Ask your Salesforce admin to share it with that user, then press Retry.",
    ),
    "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY": PlainError(
        "A trigger, flow or process in your Salesforce org failed while saving the record.",
        "The message below is your org's automation; show it to your Salesforce admin, "
        "then press Retry.",
    ),
    "INVALID_FIELD": PlainError(
        "Your Salesforce org does not have a field this service writes.",
        "Ask your Salesforce admin whether the field was removed or hidden from the connected "
        "user, then press Retry.",
    ),
    "INVALID_FIELD_FOR_INSERT_UPDATE": PlainError(
        "The connected Salesforce user may not write one of the fields sent.",
        "Ask your Salesforce admin for edit access to that field, then press Retry.",
    ),
    "API_DISABLED_FOR_ORG": PlainError(
        "Your Salesforce edition or the connected user does not have API access.",
        "Ask your Salesforce admin to turn on API Enabled for that user, then click Connect.",
    ),
    "INVALID_SESSION_ID": _RECONNECT,
    "INVALID_AUTH_HEADER": _RECONNECT,
    "NEEDS_RECONNECT": _RECONNECT,
    "NO_REFRESH_TOKEN": _RECONNECT,
    "invalid_grant": _RECONNECT,
    "invalid_token": _RECONNECT,
    "inactive_user": PlainError(
        "The Salesforce user you connected with was deactivated.",
        "Click Connect and sign in as an active Salesforce user.",
    ),
    "inactive_org": PlainError(
        "Your Salesforce org is inactive or locked.",
        "Check your Salesforce subscription, then click Connect again.",
    ),
    "SERVER_UNAVAILABLE": _BUSY,
    "UNABLE_TO_LOCK_ROW": _BUSY,
    "UNKNOWN_EXCEPTION": _BUSY,
    "TIMEOUT": _BUSY,
    "CONNECTION_ERROR": _BUSY,
    "TIME_LIMIT": _BUSY,
    "SALESFORCE_UNAVAILABLE": PlainError(
        "Salesforce is not answering for your org right now.",
        "Nothing to do: it is sent as soon as Salesforce answers again; nothing is lost.",
    ),
    "API_BUDGET": PlainError(
        "Your org has used the share of today's Salesforce API calls set aside for Auto-Respond.",
        "Nothing to do: it is sent when calls are available again.",
    ),
    "REDIS_UNAVAILABLE": PlainError(
        "Our own service had a brief hiccup (not Salesforce, not you).",
        "Nothing to do: it is tried again in a few seconds.",
    ),
    "DATABASE_UNAVAILABLE": PlainError(
        "Our own service had a brief hiccup (not Salesforce, not you).",
        "Nothing to do: it is tried again in a few seconds.",
    ),
    "PERSON_BUSY": PlainError(
        "Another inquiry of the same person was being sent at that moment.",
        "Nothing to do: this one follows right after.",
    ),
    "INTERNAL_ERROR": PlainError(
        "The sync stopped because of a fault on our side, not yours.",
        "Press Retry; if it fails again, email support@auto-respond.com with the details below.",
    ),
    "INVALID_HEADER_OPTIONS": PlainError(
        "The Advanced API headers text of this card is not valid.",
        "Open Advanced on the card, correct the text, save, then press Retry.",
    ),
}

_ASSIGNMENT_RULE_MISSING = PlainError(
    "Salesforce says the assignment rule chosen on this card does not exist.",
    "Choose one of your org's assignment rules on this card (or the default rule), "
    "save, then press Retry.",
)

_UNKNOWN = PlainError(
    "Salesforce refused this inquiry.",
    "The details below say why; correct what they name and press Retry, or email "
    "support@auto-respond.com with them.",
)


def explain_error(code: str, message: str = "", *, rule_id_chosen: bool = False) -> PlainError:
    """The plain-words explanation of a stored error code (never None).

    `rule_id_chosen`: the card asks Salesforce for a specific assignment rule, which makes a
    missing cross reference almost always that rule.
    """
    if code in ("INVALID_CROSS_REFERENCE_KEY", "MALFORMED_ID") and (
        rule_id_chosen or "assignment" in message.lower()
    ):
        return _ASSIGNMENT_RULE_MISSING
    if code == "DUPLICATES_DETECTED" or code == "BLOCKED_DUPLICATE":
        return PLAIN_ERRORS["DUPLICATES_DETECTED"]
    return PLAIN_ERRORS.get(code) or PLAIN_ERRORS.get(code.upper()) or _UNKNOWN
