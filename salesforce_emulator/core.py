"""Shared core of the Salesforce emulator: orgs, records, rules, emails, tokens, faults.

REST (``rest.py``) and SOAP (``soap.py``) are thin transports over this module. Everything that
Salesforce does to a record on write (validation, duplicate rules, assignment rules, auto-response
and notification emails) lives here so both APIs behave the same way.

This first version fixes the interface; bodies are filled in by the following commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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


class DuplicatesDetected(SalesforceError):
    """A duplicate rule blocked the save; ``duplicate_result`` is the DuplicateResult payload."""

    def __init__(self, duplicate_result: dict[str, Any]) -> None:
        super().__init__(400, "DUPLICATES_DETECTED", duplicate_result.get("errorMessage", ""))
        self.duplicate_result = duplicate_result


class DropConnection(ConnectionError):
    """Raised to make the transport close the socket without writing any response."""


@dataclass
class WriteOptions:
    """How a write was requested: which API and which headers came with it."""

    api: str = "rest"  # "rest" | "soap"
    assignment: str | None = None  # None = no rule; "default"; or an AssignmentRule id (01Q...)
    trigger_auto_response: bool = False
    trigger_user_email: bool = False
    trigger_other_email: bool = False
    duplicate_allow_save: bool = False
    allow_field_truncation: bool = False


class Org:
    """One org's data (stub; filled in next)."""

    def create(self, sobject: str, fields: dict[str, Any], options: WriteOptions) -> str:
        raise NotImplementedError

    def update(
        self, sobject: str, record_id: str, fields: dict[str, Any], options: WriteOptions
    ) -> None:
        raise NotImplementedError


@dataclass
class CallContext:
    """One authenticated API call in progress."""

    org: Org
    user: Any
    entry: dict[str, Any] = field(default_factory=dict)

    @property
    def limit_info(self) -> tuple[int, int]:
        raise NotImplementedError

    def finish(self, status_code: int) -> None:
        raise NotImplementedError


class EmulatorState:
    """Everything the emulator holds in memory (stub; filled in next)."""

    def begin_call(
        self,
        *,
        access_token: str | None,
        api: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
    ) -> CallContext:
        raise NotImplementedError
