"""Salesforce API errors as the emulator raises them (shared by the core and its rule modules).

``SalesforceError`` itself is in values.py (soql needs it without core); it is re-exported here.

REST renders them as error-array items, SOAP as faults or per-record errors.
"""

from __future__ import annotations

from typing import Any

from .values import SalesforceError

__all__ = ["DuplicatesDetected", "SalesforceError"]


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
