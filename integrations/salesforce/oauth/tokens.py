"""Keeping a connection's access token valid: one refresh at a time per connection, under the
row lock, on INVALID_SESSION_ID; `salesforce_client` hands that refresh to the API client.
See docs/architecture.md ("Tokens").
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import requests
from authlib.integrations.requests_client import OAuthError
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from integrations.salesforce.api.client import SalesforceClient
from integrations.salesforce.api.errors import (
    SalesforceError,
    SalesforceReconnectRequired,
    SalesforceTransientError,
    error_from_http,
)
from integrations.salesforce.connections import connection_mark_needs_reconnect
from integrations.salesforce.models import ConnectionStatus, SalesforceConnection
from integrations.salesforce.oauth.flow import TOKEN_PATH, error_from_oauth, oauth_session
from integrations.salesforce.oauth.hosts import login_url_is_allowed

logger = logging.getLogger(__name__)

# Token-endpoint errors after which only the owner can help: the grant itself is gone or its user
# or org is inactive. Anything else (network, 5xx, rate limit, our own client credentials) leaves
# the connection as it is.
_GRANT_GONE = frozenset({"invalid_grant", "inactive_user", "inactive_org"})


def salesforce_client(
    connection: SalesforceConnection, *, session: requests.Session | None = None
) -> SalesforceClient:
    """A client for `connection` whose expired access token refreshes itself (once per call,
    through `refresh_access_token`). Every caller that talks to an org gets its client here."""
    return SalesforceClient(connection, session=session, refresh=_refresh_for_client)


def _refresh_for_client(connection: SalesforceConnection, stale_token: str) -> SalesforceConnection:
    return refresh_access_token(connection=connection, stale_access_token=stale_token)


@sensitive_variables()
def refresh_access_token(
    *, connection: SalesforceConnection, stale_access_token: str
) -> SalesforceConnection:
    """A connection with a working access token, after `stale_access_token` was refused.

    At most one refresh runs per connection: the row is locked, and if its access token already
    differs from the stale one, another worker refreshed meanwhile and its token is returned
    without calling Salesforce. A rotated refresh token is kept.

    Raises SalesforceReconnectRequired (and marks the connection needs reconnect) when Salesforce
    refuses the refresh token, or when the connection is gone; SalesforceTransientError or
    SalesforceRateLimited when the refresh may work later.
    """
    failure: SalesforceError | None = None
    with transaction.atomic():
        row = SalesforceConnection.objects.select_for_update().filter(pk=connection.pk).first()
        if row is None:
            raise SalesforceReconnectRequired(
                "CONNECTION_REMOVED", "Salesforce was disconnected from this source."
            )
        if row.access_token != stale_access_token:
            logger.info("salesforce token already refreshed by another worker org=%s", row.org_id)
            return row
        if row.status != ConnectionStatus.CONNECTED:
            raise SalesforceReconnectRequired(
                "NEEDS_RECONNECT", row.status_reason or "The connection needs to be reconnected."
            )
        if not row.refresh_token or not login_url_is_allowed(row.login_url):
            failure = SalesforceReconnectRequired(
                "NO_REFRESH_TOKEN", "The connection cannot renew its access to Salesforce."
            )
        else:
            try:
                token = _refresh_at_salesforce(row)
            except SalesforceError as exc:
                failure = exc
            else:
                row.access_token = token["access_token"]
                # Salesforce returns a refresh token only when the connected app rotates them;
                # the old one is then invalid, so the new one must be stored in the same breath.
                if token.get("refresh_token"):
                    row.refresh_token = token["refresh_token"]
                row.token_refreshed_at = timezone.now()
                row.save(update_fields=["access_token", "refresh_token", "token_refreshed_at"])
                logger.info("salesforce token refreshed org=%s user=%s", row.org_id, row.user_id)
                return row
        # Still inside the transaction: the status change must commit before we raise.
        assert failure is not None
        if failure.error_code in _GRANT_GONE or isinstance(failure, SalesforceReconnectRequired):
            reason = (
                f"Salesforce no longer accepts this connection ({failure.error_code}: "
                f"{failure.message})."
            )
            connection_mark_needs_reconnect(connection=row, reason=reason)
            failure = SalesforceReconnectRequired(failure.error_code, reason, status=failure.status)
    raise failure


@sensitive_variables()
def _refresh_at_salesforce(connection: SalesforceConnection) -> dict:
    """POST grant_type=refresh_token to the connection's login host, through Authlib."""
    # No `scope` on the session: Salesforce keeps the scopes of the original grant.
    client = oauth_session(token={"refresh_token": connection.refresh_token})
    host = urlsplit(connection.login_url).netloc
    try:
        token = client.refresh_token(
            connection.login_url + TOKEN_PATH, refresh_token=connection.refresh_token
        )
    except OAuthError as exc:
        raise error_from_oauth(exc) from None
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        raise SalesforceTransientError(
            f"HTTP_{status}", f"{host} answered HTTP {status} to the token refresh."
        ) from None
    except requests.RequestException as exc:
        raise error_from_http(exc, host=host) from None
    except ValueError:
        raise SalesforceTransientError(
            "BAD_TOKEN_RESPONSE", f"{host} did not answer the token refresh with JSON."
        ) from None
    if not token.get("access_token"):
        raise SalesforceTransientError(
            "BAD_TOKEN_RESPONSE", f"{host} answered the token refresh without an access token."
        )
    return dict(token)
