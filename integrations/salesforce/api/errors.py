"""Typed Salesforce errors, shared by the SOAP and REST sides of the integration.

Callers decide by type, never by parsing messages:

* :class:`SalesforceAuthError`: the connection's token is bad (reconnect; retrying won't help).
* :class:`SalesforceRateLimited`: the org's API allowance is used up (pause, retry later).
* :class:`SalesforceTransientError`: Salesforce or the network hiccuped (retry with backoff).
* :class:`SalesforceValidationError`: the request itself is wrong for this org (show the user
  Salesforce's code and message; retrying the same data fails the same way).

Every error keeps Salesforce's own ``error_code``, ``message`` and ``fields``, so the user sees
what Salesforce said. :func:`error_from_code` is the one place that picks the class.
"""

from __future__ import annotations

from typing import Any

import requests

__all__ = [
    "SalesforceAuthError",
    "SalesforceDuplicatesDetected",
    "SalesforceError",
    "SalesforceRateLimited",
    "SalesforceReconnectRequired",
    "SalesforceTransientError",
    "SalesforceValidationError",
    "duplicate_result_ids",
    "duplicate_result_rule",
    "error_from_code",
    "error_from_http",
]


class SalesforceError(Exception):
    """An error Salesforce (or the way to it) reported.

    ``status`` is the HTTP status when it says something (REST); SOAP faults always arrive with
    500, so SOAP callers pass ``None`` and the code alone decides.
    """

    def __init__(
        self,
        error_code: str,
        message: str,
        fields: list[str] | None = None,
        *,
        status: int | None = None,
    ) -> None:
        self.error_code = error_code
        self.message = message
        self.fields = list(fields or [])
        self.status = status
        super().__init__(f"{error_code}: {message}")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(error_code={self.error_code!r}, message={self.message!r}, "
            f"fields={self.fields!r}, status={self.status!r})"
        )


class SalesforceAuthError(SalesforceError):
    """The session or the connection's grant is invalid: the user must reconnect."""


class SalesforceReconnectRequired(SalesforceAuthError):
    """The connection's grant is gone (refresh token revoked or expired: invalid_grant); it is
    marked needs reconnect, and only the owner reconnecting makes it usable again."""


class SalesforceRateLimited(SalesforceError):
    """The org's API request limit is exceeded: wait before calling again."""


class SalesforceTransientError(SalesforceError):
    """A failure that may pass by itself: 5xx, timeouts, dropped connections, row locks."""


class SalesforceValidationError(SalesforceError):
    """Salesforce refused the data or the request; someone has to change something."""


class SalesforceDuplicatesDetected(SalesforceValidationError):
    """A duplicate rule blocked a save (DUPLICATES_DETECTED); `match_ids` are the records it
    matched, `duplicate_rule` the rule's API name and `allow_save` whether the rule lets the
    save through when the request carries the duplicate-rule header (an "Allow" rule, which the
    API still blocks without that header; SALESFORCE.md "DUPLICATES_DETECTED")."""

    def __init__(
        self,
        error_code: str,
        message: str,
        fields: list[str] | None = None,
        *,
        status: int | None = None,
        match_ids: list[str] | None = None,
        duplicate_rule: str = "",
        allow_save: bool = False,
    ) -> None:
        super().__init__(error_code, message, fields, status=status)
        self.match_ids = list(match_ids or [])
        self.duplicate_rule = duplicate_rule
        self.allow_save = allow_save


# Upper-case codes are API exception/status codes; lower-case ones are OAuth token-endpoint
# errors, which the REST side meets when it refreshes a token.
_AUTH_CODES = frozenset(
    {
        "INVALID_SESSION_ID",
        "INVALID_AUTH_HEADER",
        "INVALID_LOGIN",
        "LOGIN_MUST_USE_SECURITY_TOKEN",
        "API_DISABLED_FOR_ORG",
        "invalid_grant",
        "invalid_client",
        "invalid_client_id",
        "invalid_client_credentials",
        "inactive_user",
        "inactive_org",
        "invalid_token",
    }
)
_RATE_LIMIT_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "rate_limit_exceeded"})
# UNKNOWN_EXCEPTION is what Salesforce reports for its own internal errors ("An unexpected
# error occurred"), which usually pass; the other two are documented as retryable.
_TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION"})


def error_from_code(
    error_code: str,
    message: str,
    fields: list[str] | None = None,
    status: int | None = None,
) -> SalesforceError:
    """The typed error for a Salesforce error code (and, for REST, the HTTP status).

    The code wins over the status: REQUEST_LIMIT_EXCEEDED comes with 403 and UNABLE_TO_LOCK_ROW
    with 400. Unknown codes fall back on the status (401 auth, 429 rate limit, 5xx transient);
    everything else is a validation error.
    """
    cls: type[SalesforceError]
    if error_code in _AUTH_CODES:
        cls = SalesforceAuthError
    elif error_code in _RATE_LIMIT_CODES:
        cls = SalesforceRateLimited
    elif error_code in _TRANSIENT_CODES:
        cls = SalesforceTransientError
    elif status == 401:
        cls = SalesforceAuthError
    elif status == 429:
        cls = SalesforceRateLimited
    elif status is not None and status >= 500:
        cls = SalesforceTransientError
    else:
        cls = SalesforceValidationError
    return cls(error_code, message, fields, status=status)


def error_from_http(exc: requests.RequestException, *, host: str) -> SalesforceTransientError:
    """The typed error for a network failure (timeout or dropped connection). The text names
    the host and the kind of failure only: never the path (a query can carry a customer's
    email) and never a token (a SOAP body carries the session id)."""
    kind = type(exc).__name__
    if isinstance(exc, requests.Timeout):
        return SalesforceTransientError("TIMEOUT", f"No answer from {host} in time ({kind}).")
    return SalesforceTransientError("CONNECTION_ERROR", f"Could not reach {host} ({kind}).")


def duplicate_result_ids(duplicate_result: Any) -> list[str]:
    """The ids of the existing records a duplicate rule matched (REST spells it duplicateResut)."""
    ids: list[str] = []
    if not isinstance(duplicate_result, dict):
        return ids
    for match in duplicate_result.get("matchResults") or []:
        for record in match.get("matchRecords") or []:
            record_id = (record.get("record") or {}).get("Id")
            if record_id and record_id not in ids:
                ids.append(record_id)
    return ids


def duplicate_result_rule(duplicate_result: Any) -> dict[str, Any]:
    """The rule's API name and allowSave of a DuplicateResult, as keyword arguments of
    SalesforceDuplicatesDetected."""
    if not isinstance(duplicate_result, dict):
        return {"duplicate_rule": "", "allow_save": False}
    return {
        "duplicate_rule": str(duplicate_result.get("duplicateRule") or ""),
        "allow_save": duplicate_result.get("allowSave") in (True, "true"),
    }
