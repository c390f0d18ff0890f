"""Connecting a source to Salesforce: the OAuth 2.0 web server flow with PKCE, through Authlib.

`oauth_start` → (Salesforce) → `oauth_pop_flow` + `oauth_complete`; `oauth_session` is the one
factory for Authlib sessions; `connection_disconnect` revokes. Where each safeguard sits is in
docs/architecture.md ("Connecting").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from autorespond.models import Source
from autorespond.selectors import source_descendant_ids
from integrations.salesforce.api.errors import (
    SalesforceError,
    SalesforceTransientError,
    error_from_code,
    error_from_http,
)
from integrations.salesforce.models import ConnectionStatus, SalesforceConnection
from integrations.salesforce.oauth.hosts import (
    LoginChoice,
    login_url_is_allowed,
)
from integrations.salesforce.selectors import effective_salesforce_settings

logger = logging.getLogger(__name__)

# `refresh_token` is what makes the connection outlive the access token (hours); `api` is the REST
# and SOAP APIs. `openid` is deliberately absent: it would add an id_token we do not need.
SCOPES = "api refresh_token"
AUTHORIZE_PATH = "/services/oauth2/authorize"
TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 (a path, not a secret)
REVOKE_PATH = "/services/oauth2/revoke"
USERINFO_PATH = "/services/oauth2/userinfo"

REVOKE_IN_SALESFORCE_HELP = (
    "Access can also be revoked in Salesforce: a Salesforce admin under Setup → Connected Apps "
    "OAuth Usage, or the connected user under their personal settings → Connected Apps."
)

# Flows kept in one session: enough for a few tabs, few enough that a session stays small.
MAX_PENDING_FLOWS = 5
# How long a started flow may take: logging in to Salesforce (with MFA) and approving.
FLOW_LIFETIME_SECONDS = 30 * 60
SESSION_KEY = "salesforce_oauth_flows"


class OAuthFlowError(Exception):
    """The sign-in could not be completed; `message` is safe to show to the owner."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PendingFlow:
    """One started sign-in, as kept in the session until Salesforce sends the user back."""

    state: str
    source_id: int
    user_id: int
    login_url: str
    environment: str
    code_verifier: str
    redirect_uri: str
    started_at: float


# --- Authlib --------------------------------------------------------------------------------


class _SalesforceOAuth2Session(OAuth2Session):
    def request(
        self, method: str, url: str, withhold_token: bool = False, auth: Any = None, **kwargs: Any
    ) -> requests.Response:  # type: ignore[override]
        # requests lets REQUESTS_CA_BUNDLE from the environment override `session.verify`;
        # passing it per request keeps the configured CA in force.
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, withhold_token=withhold_token, auth=auth, **kwargs)


def oauth_session(**kwargs: Any) -> OAuth2Session:
    """An Authlib OAuth 2.0 session for our connected app.

    The client secret goes in the form body (client_secret_post), as Salesforce documents. Every
    request has a timeout and trusts the configured CA (the local emulator's, in tests).
    """
    session = _SalesforceOAuth2Session(
        client_id=settings.SALESFORCE_CLIENT_ID,
        client_secret=settings.SALESFORCE_CLIENT_SECRET,
        token_endpoint_auth_method="client_secret_post",  # noqa: S106 (a method name)
        revocation_endpoint_auth_method="client_secret_post",
        default_timeout=settings.SALESFORCE_HTTP_TIMEOUT,
        **kwargs,
    )
    session.verify = settings.SALESFORCE_CA_BUNDLE or True
    return session


def error_from_oauth(exc: OAuthError) -> SalesforceError:
    """The typed error for a token-endpoint error such as invalid_grant (SALESFORCE.md §1)."""
    description = exc.description or "Salesforce gave no description"
    return error_from_code(exc.error or "oauth_error", description, None, 400)


# --- Starting and finishing a sign-in --------------------------------------------------------


def _pending_flows(session: SessionBase) -> dict[str, dict[str, Any]]:
    flows = session.get(SESSION_KEY, {})
    now = time.time()
    return {
        state: flow
        for state, flow in flows.items()
        if now - flow.get("started_at", 0) < FLOW_LIFETIME_SECONDS
    }


def oauth_start(
    *,
    session: SessionBase,
    source: Source,
    user: AbstractBaseUser,
    login: LoginChoice,
    redirect_uri: str,
) -> str:
    """Start a sign-in for `source`: remember it in the user's session, return the URL to send
    the user to (the login host's authorize page, with state and PKCE challenge)."""
    code_verifier = generate_token(64)
    state = secrets.token_urlsafe(32)
    client = oauth_session(scope=SCOPES, redirect_uri=redirect_uri, code_challenge_method="S256")
    authorize_url, _ = client.create_authorization_url(
        login.login_url + AUTHORIZE_PATH, state=state, code_verifier=code_verifier
    )
    flows = _pending_flows(session)
    while len(flows) >= MAX_PENDING_FLOWS:
        flows.pop(min(flows, key=lambda key: flows[key]["started_at"]))
    flows[state] = {
        "source_id": source.pk,
        "user_id": user.pk,
        "login_url": login.login_url,
        "environment": login.environment,
        "code_verifier": code_verifier,
        "redirect_uri": redirect_uri,
        "started_at": time.time(),
    }
    session[SESSION_KEY] = flows
    logger.info("salesforce sign-in started source=%s login=%s", source.slug, login.login_url)
    return authorize_url


def oauth_pop_flow(*, session: SessionBase, state: str) -> PendingFlow | None:
    """The flow this state belongs to, removed from the session so it cannot be used again.

    None when the state is missing, unknown, expired, or was started in another session.
    """
    if not state:
        return None
    flows = _pending_flows(session)
    flow = flows.pop(state, None)
    session[SESSION_KEY] = flows
    if flow is None:
        return None
    return PendingFlow(state=state, **flow)


def _signature_matches(token: dict[str, Any]) -> bool:
    """Salesforce signs `id` + `issued_at` with our client secret (HMAC-SHA256, base64): a
    response that does not verify did not come from the org our app is registered with."""
    signature = str(token.get("signature", ""))
    message = f"{token.get('id', '')}{token.get('issued_at', '')}".encode()
    expected = base64.b64encode(
        hmac.new(settings.SALESFORCE_CLIENT_SECRET.encode(), message, hashlib.sha256).digest()
    ).decode()
    return bool(signature) and hmac.compare_digest(signature, expected)


def _ids_from_identity_url(identity_url: str) -> tuple[str, str]:
    """(org id, user id) from `https://login.salesforce.com/id/<org id>/<user id>`."""
    parts = urlsplit(identity_url).path.rstrip("/").split("/")
    if len(parts) < 3 or parts[-3] != "id" or not parts[-2] or not parts[-1]:
        raise OAuthFlowError("Salesforce's answer did not say which org and user signed in.")
    return parts[-2], parts[-1]


def _check_instance_url(instance_url: str) -> str:
    """The org's API host must be https: tokens are sent there with every call."""
    parts = urlsplit(instance_url)
    if parts.scheme != "https" or not parts.hostname:
        raise OAuthFlowError("Salesforce's answer named an API host that is not https.")
    return f"https://{parts.netloc}"


@sensitive_variables()
def oauth_exchange_code(*, flow: PendingFlow, code: str) -> dict[str, Any]:
    """Exchange the authorization code (with the PKCE verifier) for tokens at the login host."""
    client = oauth_session(redirect_uri=flow.redirect_uri)
    host = urlsplit(flow.login_url).netloc
    try:
        token = client.fetch_token(
            flow.login_url + TOKEN_PATH,
            grant_type="authorization_code",
            code=code,
            code_verifier=flow.code_verifier,
        )
    except OAuthError as exc:
        raise OAuthFlowError(
            f"Salesforce refused the sign-in: {exc.error}: {exc.description or ''}".rstrip(": ")
        ) from None
    except requests.RequestException as exc:
        raise OAuthFlowError(error_from_http(exc, host=host).message) from None
    except ValueError:
        raise OAuthFlowError(f"{host} did not answer like a Salesforce login host.") from None
    if not token.get("access_token") or not token.get("instance_url") or not token.get("id"):
        raise OAuthFlowError("Salesforce's answer was missing the access token or the org.")
    if not token.get("refresh_token"):
        raise OAuthFlowError(
            "Salesforce gave no refresh token, so the connection would stop working within "
            "hours. Ask your Salesforce admin to allow the 'refresh_token' scope for the "
            "Auto-Respond connected app."
        )
    if not _signature_matches(token):
        raise OAuthFlowError("Salesforce's answer had an invalid signature; nothing was stored.")
    return dict(token)


@sensitive_variables()
def oauth_userinfo(*, login_url: str, access_token: str) -> dict[str, Any]:
    """The signed-in user as the login host's UserInfo endpoint describes them."""
    client = oauth_session(token={"access_token": access_token, "token_type": "Bearer"})
    host = urlsplit(login_url).netloc
    try:
        response = client.get(login_url + USERINFO_PATH)
    except requests.RequestException as exc:
        raise OAuthFlowError(error_from_http(exc, host=host).message) from None
    if response.status_code != 200:
        raise OAuthFlowError(
            f"Salesforce did not say who signed in (UserInfo answered HTTP {response.status_code})."
        )
    try:
        return dict(response.json())
    except ValueError:
        raise OAuthFlowError(f"{host} did not answer like a Salesforce login host.") from None


@sensitive_variables()
def oauth_complete(
    *, flow: PendingFlow, code: str, source: Source, user: AbstractBaseUser
) -> SalesforceConnection:
    """Finish a sign-in: exchange the code, learn who connected, store the source's connection.

    A reconnect replaces the tokens of the existing connection and makes it usable again; the
    caller then resumes the syncs that waited for it (`sync.scheduling.sync_resume_waiting`).
    """
    token = oauth_exchange_code(flow=flow, code=code)
    org_id, user_id = _ids_from_identity_url(token["id"])
    instance_url = _check_instance_url(token["instance_url"])
    info = oauth_userinfo(login_url=flow.login_url, access_token=token["access_token"])
    if info.get("organization_id", org_id) != org_id or info.get("user_id", user_id) != user_id:
        raise OAuthFlowError("Salesforce described a different user than the one who signed in.")

    with transaction.atomic():
        connection, created = SalesforceConnection.objects.update_or_create(
            source=source,
            defaults={
                "environment": flow.environment,
                "login_url": flow.login_url,
                "instance_url": instance_url,
                "org_id": org_id,
                "user_id": user_id,
                "username": str(info.get("preferred_username") or "")[:255],
                "display_name": str(info.get("name") or "")[:255],
                "access_token": token["access_token"],
                "refresh_token": token["refresh_token"],
                "status": ConnectionStatus.CONNECTED,
                "status_reason": "",
                "connected_by": user,
                "connected_at": timezone.now(),
                "token_refreshed_at": None,
                "last_validated_at": None,
                "last_validation_ok": None,
                "last_validation_message": "",
            },
        )
    logger.info(
        "salesforce connected source=%s org=%s user=%s environment=%s reconnect=%s",
        source.slug,
        org_id,
        user_id,
        flow.environment,
        not created,
    )
    return connection


# --- Disconnecting -----------------------------------------------------------------------------


def sources_sharing_connection(*, source: Source) -> list[Source]:
    """The sources below `source` that use its connection through "Inherit from parent"."""
    below = source_descendant_ids(root_ids=[source.pk]) - {source.pk}
    return [
        other
        for other in Source.objects.filter(pk__in=below).order_by("name")
        if effective_salesforce_settings(source=other).owner.pk == source.pk
    ]


@dataclass(frozen=True)
class DisconnectResult:
    revoked: bool
    message: str


@sensitive_variables()
def token_revoke(*, login_url: str, token: str) -> None:
    """Revoke a token at the login host (a refresh token takes its access tokens with it).

    Raises a typed SalesforceError when Salesforce refuses or cannot be reached.
    """
    client = oauth_session()
    host = urlsplit(login_url).netloc
    try:
        response = client.revoke_token(login_url + REVOKE_PATH, token=token)
    except requests.RequestException as exc:
        raise error_from_http(exc, host=host) from None
    if response.status_code != 200:
        try:
            body = response.json()
        except ValueError:
            body = {}
        code = str(body.get("error") or f"HTTP_{response.status_code}")
        description = str(body.get("error_description") or f"{host} refused the revocation")
        raise error_from_code(code, description, None, response.status_code)


@sensitive_variables()
def connection_disconnect(*, connection: SalesforceConnection) -> DisconnectResult:
    """Revoke the connection's tokens at Salesforce, then delete it (and with it the tokens).

    The connection is deleted even when revoking fails: the owner asked to stop using it, and the
    result says that the grant may still be listed in Salesforce, where it can be revoked too.
    """
    source = connection.source
    revoked = False
    problem = ""
    token = connection.refresh_token or connection.access_token
    if not login_url_is_allowed(connection.login_url):
        problem = f"{connection.login_url} is no longer an allowed Salesforce login host."
    elif token:
        try:
            token_revoke(login_url=connection.login_url, token=token)
            revoked = True
        except SalesforceError as exc:
            # invalid_token: Salesforce no longer knows the token, so nothing is left to revoke.
            revoked = exc.error_code == "invalid_token"
            problem = exc.message if isinstance(exc, SalesforceTransientError) else str(exc)
            problem = problem.rstrip(". ") + "."
    connection.delete()
    logger.info(
        "salesforce disconnected source=%s org=%s revoked=%s",
        source.slug,
        connection.org_id,
        revoked,
    )
    if revoked:
        return DisconnectResult(
            True,
            f"Salesforce is disconnected from {source.name}, and its access was revoked in "
            "Salesforce.",
        )
    return DisconnectResult(
        False,
        f"Salesforce is disconnected from {source.name}, but revoking its access in Salesforce "
        f"failed: {problem} The tokens are deleted here. {REVOKE_IN_SALESFORCE_HELP}",
    )
