"""Validate Connection: does the connection work, and can it do what the sync needs?

`connection_validate` asks Salesforce who the connected user is (the identity URL) and describes
the record type the source creates (one cheap API call), through the REST client, so an expired
access token is refreshed on the way like any other call. The result is kept on the connection
(`last_validated_at`, `last_validation_ok`, `last_validation_message`) for the card and the support
console, and says what to do when it failed: reconnect when the token is expired or revoked, ask a
Salesforce admin when a permission is missing, wait when Salesforce is out of reach.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from integrations.salesforce.api.client import SalesforceClient
from integrations.salesforce.api.errors import (
    SalesforceAuthError,
    SalesforceError,
    SalesforceRateLimited,
    SalesforceReconnectRequired,
    SalesforceTransientError,
)
from integrations.salesforce.models import RecordType, SalesforceConnection
from integrations.salesforce.oauth.tokens import salesforce_client
from integrations.salesforce.selectors import salesforce_settings_of
from integrations.salesforce.sync.org_schema import org_schema_refresh

logger = logging.getLogger(__name__)

ACTION_RECONNECT = (
    "Reconnect Salesforce on this card: its access has expired or was revoked in Salesforce."
)
ACTION_WAIT = "Salesforce could not be reached; try Validate Connection again in a few minutes."
ACTION_LIMIT = (
    "The org's daily API limit is used up; inquiries are sent once Salesforce allows it again. "
    "A Salesforce admin can see the usage under Setup → Company Information."
)


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of one Validate Connection. `message` is what the card shows."""

    ok: bool
    reason: str
    action: str
    checked_at: datetime
    api_calls: int = 0

    @property
    def message(self) -> str:
        return f"{self.reason} {self.action}".strip()


def _said(exc: SalesforceError) -> str:
    """Salesforce's code and message as one sentence."""
    return f"{exc.error_code}: {exc.message}".rstrip(". ") + "."


def _permission_action(username: str, label: str) -> str:
    return (
        f"Ask a Salesforce admin to give {username or 'the connected user'} the “Create” "
        f"permission on {label} (in their profile or a permission set), or reconnect as a user "
        "who has it."
    )


def _check(connection: SalesforceConnection, client: SalesforceClient) -> tuple[bool, str, str]:
    """(ok, reason, action) from Salesforce's answers; raises SalesforceError on a failed call."""
    identity = client.identity()
    if (
        identity.get("organization_id", connection.org_id) != connection.org_id
        or identity.get("user_id", connection.user_id) != connection.user_id
    ):
        return (
            False,
            "Salesforce answered for a different org or user than the one connected.",
            ACTION_RECONNECT,
        )
    username = str(identity.get("username") or connection.username)
    record_type = salesforce_settings_of(source=connection.source).record_type
    label = RecordType(record_type).label
    # The describes of Lead, Contact and Account in one call, kept as the org's schema: Validate
    # is also how an owner makes the sync see the org's new fields and picklist values.
    schema = org_schema_refresh(client=client)
    if record_type not in schema.createable_objects:
        return (
            False,
            f"The connected Salesforce user {username} cannot create {label}.",
            _permission_action(username, label),
        )
    return True, f"Connected as {username}, who can create {label}.", ""


def connection_validate(*, connection: SalesforceConnection) -> ValidationResult:
    """Check the connection against Salesforce and record the outcome on it."""
    client: SalesforceClient | None = None
    if not connection.is_usable:
        ok, reason, action = (
            False,
            connection.status_reason or "The connection needs to be reconnected.",
            ACTION_RECONNECT,
        )
    else:
        client = salesforce_client(connection)
        try:
            ok, reason, action = _check(connection, client)
        except SalesforceReconnectRequired as exc:
            ok, reason, action = False, exc.message, ACTION_RECONNECT
        except SalesforceAuthError as exc:
            ok, reason, action = (
                False,
                f"Salesforce refused the connection: {_said(exc)}",
                ACTION_RECONNECT,
            )
        except SalesforceRateLimited as exc:
            ok, reason, action = False, f"Salesforce refused the call: {_said(exc)}", ACTION_LIMIT
        except SalesforceTransientError as exc:
            ok, reason, action = False, f"Salesforce did not answer: {_said(exc)}", ACTION_WAIT
        except SalesforceError as exc:
            ok, reason, action = (
                False,
                f"Salesforce refused the check: {_said(exc)}",
                "Ask a Salesforce admin to check the connected user's access to the API and to "
                "the chosen record type.",
            )
    checked_at = timezone.now()
    result = ValidationResult(
        ok=ok,
        reason=reason,
        action=action,
        checked_at=checked_at,
        api_calls=client.api_calls if client else 0,
    )
    SalesforceConnection.objects.filter(pk=connection.pk).update(
        last_validated_at=checked_at,
        last_validation_ok=ok,
        last_validation_message=result.message,
    )
    if SalesforceConnection.objects.filter(pk=connection.pk).exists():
        # Picks up what the client changed too: a refreshed token, a needs-reconnect status.
        connection.refresh_from_db()
    logger.info(
        "salesforce connection validated source_id=%s org=%s ok=%s",
        connection.source_id,
        connection.org_id,
        ok,
    )
    return result
