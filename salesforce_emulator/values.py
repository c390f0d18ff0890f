"""Small values shared by the emulator's modules: the API error, phone digits, record URLs.

Kept apart from `core` so that `soql` (which `core` runs queries with) needs nothing of `core`
at run time.
"""

from __future__ import annotations

import re
from typing import Any


class SalesforceError(Exception):
    """One API error as Salesforce reports it (REST error-array item / SOAP fault or error)."""

    def __init__(
        self,
        status_code: int,
        error_code: str,
        message: str,
        fields: list[str] | None = None,
    ) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status_code = status_code
        self.error_code = error_code
        self.message = message
        self.fields = list(fields or [])

    def as_rest(self) -> dict[str, Any]:
        """The REST error-array item."""
        return {"message": self.message, "errorCode": self.error_code, "fields": self.fields}


def phone_digits(value: str | None) -> str:
    """Digits of a phone number with a leading North American country code 1 dropped.

    SALESFORCE.md section 2: how Salesforce normalises phone search is UNCONFIRMED; comparing
    digits-only forms is the suggested behaviour, so 4155551212 matches +1 (415) 555-1212.
    """
    digits = re.sub(r"\D", "", value or "")
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits


def record_url(sobject: str, record_id: str, version: str) -> str:
    return f"/services/data/v{version}/sobjects/{sobject}/{record_id}"
