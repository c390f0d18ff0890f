"""Salesforce API errors as the emulator raises them (shared by the core and its rule modules).

REST renders them as error-array items, SOAP as faults or per-record errors.
"""

from __future__ import annotations

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


class DuplicatesDetected(SalesforceError):
    """A duplicate rule blocked the save; ``duplicate_result`` is the DuplicateResult payload."""

    def __init__(self, duplicate_result: dict[str, Any]) -> None:
        super().__init__(400, "DUPLICATES_DETECTED", duplicate_result.get("errorMessage", ""))
        self.duplicate_result = duplicate_result

    def as_rest(self) -> dict[str, Any]:
        # SALESFORCE.md "DUPLICATES_DETECTED": the real REST key is misspelled duplicateResut.
        return {
            "duplicateResut": self.duplicate_result,
            "errorCode": self.error_code,
            "message": self.message,
        }
