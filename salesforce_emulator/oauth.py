"""OAuth 2.0 web server flow on the login hosts (production and sandbox).

Endpoints (SALESFORCE.md section 1): GET/POST /services/oauth2/authorize (consent page with Allow
and Deny, or an immediate redirect when the org has auto_approve on), POST /services/oauth2/token
(authorization_code with PKCE S256, refresh_token), POST /services/oauth2/revoke,
GET /services/oauth2/userinfo and the identity URL GET /id/<orgId>/<userId>.

Token and revoke requests appear in the call log of the org they concern with ``api`` "oauth"
(grant type, client authentication method, status, error), and are not counted as API requests.

Token responses carry no ``expires_in``; ``issued_at`` is in milliseconds and ``signature`` is
Base64(HMAC-SHA256(client_secret, id + issued_at)). Tokens are never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from werkzeug import Request, Response

from .core import AuthCode, EmulatorState, Org, SalesforceError, User
from .rest import bearer_token

SUPPORTED_SCOPES = ("api", "refresh_token", "offline_access", "id", "web", "full", "openid")
DEFAULT_SCOPES = ["api", "refresh_token", "id"]
REFRESH_SCOPES = {"refresh_token", "offline_access"}
CONSENT_TTL_SECONDS = 15 * 60
# UNCONFIRMED texts and statuses (SALESFORCE.md section 1 lists them as observed, unsourced).
INVALID_CLIENT_STATUS = 400
ERROR_DESCRIPTIONS = {
    "invalid_client_id": "client identifier invalid",
    "invalid_client": "invalid client credentials",
    "invalid_code": "invalid authorization code",
    "expired_code": "expired authorization code",
    "redirect_mismatch": "redirect_uri must match configuration",
    "expired_token": "expired access/refresh token",
    "code_verifier_missing": "code verifier required",
    "code_verifier_invalid": "invalid code verifier",
    "unsupported_grant_type": "grant type not supported",
    "access_denied": "end-user denied authorization",
}
IDENTITY_BAD_TOKEN_STATUS = 403  # UNCONFIRMED: the identity URL answers Bad_OAuth_Token


def _oauth_error(error: str, key: str, status: int = 400) -> Response:
    return Response(
        json.dumps({"error": error, "error_description": ERROR_DESCRIPTIONS[key]}),
        status=status,
        content_type="application/json;charset=UTF-8",
    )


def _redirect(uri: str, params: dict[str, str | None]) -> Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return Response(status=302, headers={"Location": f"{uri}{'&' if '?' in uri else '?'}{query}"})


def _page(title: str, body: str, status: int = 200) -> Response:
    return Response(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:34em;margin:3em auto;color:#181818}"
        ".card{border:1px solid #ddd;border-radius:8px;padding:1.5em}"
        "button{font-size:1em;padding:.5em 1.5em;margin-right:1em}"
        "select{font-size:1em;width:100%;margin:.5em 0 1em}</style></head>"
        f"<body><div class='card'>{body}</div></body></html>",
        status=status,
        content_type="text/html; charset=utf-8",
    )


def _error_page(error: str, key: str) -> Response:
    # Salesforce shows an error page (not a redirect) for an unknown client or redirect URI.
    return _page(
        "Error",
        f"<h1>OAuth Error</h1><p>error={html.escape(error)}&amp;"
        f"error_description={html.escape(ERROR_DESCRIPTIONS[key])}</p>",
        400,
    )


class LoginHost:
    """The OAuth endpoints of one login host (``kind`` = "production" or "sandbox")."""

    def __init__(self, state: EmulatorState, kind: str) -> None:
        self.state = state
        self.kind = kind

    @property
    def url(self) -> str:
        return self.state.login_urls[self.kind]

    def handle(self, request: Request) -> Response | None:
        path = request.path.rstrip("/")
        if path == "/services/oauth2/authorize":
            if request.method == "POST":
                return self.consent_submitted(request)
            return self.authorize(request)
        if path == "/services/oauth2/token" and request.method == "POST":
            return self.token(request)
        if path == "/services/oauth2/revoke" and request.method in ("POST", "GET"):
            return self.revoke(request)
        if path == "/services/oauth2/userinfo":
            return self.userinfo(request)
        if path.startswith("/id/"):
            return self.identity(request, path.split("/")[2:])
        return None

    # ------------------------------------------------------------------ authorize

    def _orgs(self) -> list[Org]:
        return [org for org in self.state.orgs.values() if org.kind == self.kind]

    def authorize(self, request: Request) -> Response:
        args = request.args
        with self.state.lock:
            app = self.state.apps.get(args.get("client_id", ""))
            if app is None:
                return _error_page("invalid_client_id", "invalid_client_id")
            redirect_uri = args.get("redirect_uri", "")
            if redirect_uri not in app.callback_urls:
                return _error_page("redirect_uri_mismatch", "redirect_mismatch")
            if args.get("response_type") != "code":
                return _redirect(
                    redirect_uri,
                    {
                        "error": "unsupported_response_type",
                        "error_description": "response type not supported",
                        "state": args.get("state"),
                    },
                )
            requested = args.get("scope", "").replace("+", " ").split()
            scopes = [s for s in requested if s in SUPPORTED_SCOPES] or list(DEFAULT_SCOPES)
            pending = {
                "client_id": app.client_id,
                "app_name": app.name,
                "redirect_uri": redirect_uri,
                "state": args.get("state"),
                "scopes": scopes,
                "code_challenge": args.get("code_challenge"),
                "expires_at": time.time() + CONSENT_TTL_SECONDS,
            }
            hint = args.get("login_hint")
            user = self.state.find_user_by_username(hint) if hint else None
            if user is not None and self.state.orgs[user.org_id].kind != self.kind:
                user = None
            auto_user = self._auto_approve_user(user, hint)
            if auto_user is not None:
                return self._approve(pending, auto_user)
            consent_id = secrets.token_urlsafe(24)
            self.state.pending_consents[consent_id] = pending
            return self._consent_page(consent_id, pending, user)

    def _auto_approve_user(self, hinted: User | None, hint: str | None) -> User | None:
        """Tests switch auto_approve on per org: the hinted user, else the newest such org's
        first user, is approved without showing the page."""
        if hinted is not None:
            return hinted if self.state.orgs[hinted.org_id].auto_approve else None
        if hint:
            return None
        candidates = [org for org in self._orgs() if org.auto_approve and org.users]
        return candidates[-1].admin if candidates else None

    def _consent_page(
        self, consent_id: str, pending: dict[str, Any], user: User | None
    ) -> Response:
        if user is not None:
            chooser = (
                f"<p>Signed in as <b>{html.escape(user.username)}</b></p>"
                f"<input type='hidden' name='username' value='{html.escape(user.username)}'>"
            )
        else:
            options = "".join(
                f"<option value='{html.escape(u.username)}'>{html.escape(u.name)} "
                f"({html.escape(u.username)}, {html.escape(org.name)})</option>"
                for org in self._orgs()
                for u in org.users.values()
                if u.active
            )
            chooser = (
                "<label for='username'>Log in as</label>"
                f"<select id='username' name='username'>{options}</select>"
            )
        scopes = "".join(f"<li>{html.escape(s)}</li>" for s in pending["scopes"])
        host = "Sandbox" if self.kind == "sandbox" else "Salesforce"
        return _page(
            "Allow Access?",
            f"<h1>Allow Access?</h1><p><b>{html.escape(pending['app_name'])}</b> is asking to "
            f"access your {host} data:</p><ul>{scopes}</ul>"
            "<form method='post' action='/services/oauth2/authorize'>"
            f"<input type='hidden' name='consent_id' value='{consent_id}'>{chooser}"
            "<button type='submit' name='action' value='allow' id='oaapprove'>Allow</button>"
            "<button type='submit' name='action' value='deny' id='oadeny'>Deny</button>"
            "</form>",
        )

    def consent_submitted(self, request: Request) -> Response:
        with self.state.lock:
            pending = self.state.pending_consents.pop(request.form.get("consent_id", ""), None)
            if pending is None or pending["expires_at"] < time.time():
                return _page("Error", "<h1>This authorization request has expired.</h1>", 400)
            if request.form.get("action") != "allow":
                return _redirect(
                    pending["redirect_uri"],
                    {
                        "error": "access_denied",
                        "error_description": ERROR_DESCRIPTIONS["access_denied"],
                        "state": pending["state"],
                    },
                )
            user = self.state.find_user_by_username(request.form.get("username", ""))
            if user is None or self.state.orgs[user.org_id].kind != self.kind or not user.active:
                return _page("Error", "<h1>Unknown user for this login host.</h1>", 400)
            return self._approve(pending, user)

    def _approve(self, pending: dict[str, Any], user: User) -> Response:
        code = secrets.token_urlsafe(48)
        self.state.auth_codes[code] = AuthCode(
            code=code,
            client_id=pending["client_id"],
            redirect_uri=pending["redirect_uri"],
            org_id=user.org_id,
            user_id=user.id,
            scopes=pending["scopes"],
            login_kind=self.kind,
            code_challenge=pending["code_challenge"],
            expires_at=time.time() + self.state.auth_code_ttl_seconds,
        )
        return _redirect(pending["redirect_uri"], {"code": code, "state": pending["state"]})

    # ------------------------------------------------------------------ token

    def _client_credentials(self, request: Request) -> tuple[str, str | None]:
        # SALESFORCE.md section 1: accept client auth in the body or as HTTP Basic.
        if request.authorization and request.authorization.type == "basic":
            return request.authorization.username or "", request.authorization.password
        return request.form.get("client_id", ""), request.form.get("client_secret")

    def _client_auth(self, request: Request) -> str:
        """How the client authenticated, in RFC 7591 terms (never the secret itself)."""
        if request.authorization and request.authorization.type == "basic":
            return "client_secret_basic"
        return "client_secret_post" if request.form.get("client_secret") else "none"

    def _concerns(self, request: Request) -> tuple[str | None, str | None]:
        """(org id, user id) a token or revoke request is about, from the code or token sent."""
        with self.state.lock:
            form = request.form
            grant: Any = None
            if request.path.rstrip("/") == "/services/oauth2/revoke":
                token = form.get("token") or request.args.get("token") or ""
                grant = self.state.refresh_tokens.get(token) or self.state.access_tokens.get(token)
            elif form.get("grant_type") == "authorization_code":
                grant = self.state.auth_codes.get(form.get("code", ""))
            elif form.get("grant_type") == "refresh_token":
                grant = self.state.refresh_tokens.get(form.get("refresh_token", ""))
            return (grant.org_id, grant.user_id) if grant is not None else (None, None)

    def _logged(self, request: Request, handler: Any) -> Response:
        """Run a token-endpoint handler and record the request in the org's call log."""
        started = time.monotonic()
        org_id, user_id = self._concerns(request)
        response: Response = handler(request)
        error = None
        if response.status_code >= 400:
            try:
                error = json.loads(response.get_data(as_text=True)).get("error")
            except ValueError:
                error = None
        is_token = request.path.rstrip("/") == "/services/oauth2/token"
        grant_type = (request.form.get("grant_type") or "")[:40] if is_token else ""
        self.state.log_oauth_call(
            method=request.method,
            path=request.path,
            headers=request.headers,
            org_id=org_id,
            user_id=user_id,
            grant_type=grant_type or None,
            client_auth=self._client_auth(request) if is_token else None,
            status=response.status_code,
            error=error,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return response

    def token(self, request: Request) -> Response:
        return self._logged(request, self._token)

    def _token(self, request: Request) -> Response:
        client_id, client_secret = self._client_credentials(request)
        grant = request.form.get("grant_type")
        with self.state.lock:
            app = self.state.apps.get(client_id)
            if app is None:
                return _oauth_error("invalid_client_id", "invalid_client_id")
            if client_secret is not None and not hmac.compare_digest(
                client_secret, app.client_secret
            ):
                return _oauth_error("invalid_client", "invalid_client", INVALID_CLIENT_STATUS)
            if grant == "authorization_code":
                if client_secret is None:
                    return _oauth_error("invalid_client", "invalid_client", INVALID_CLIENT_STATUS)
                return self._code_grant(request, app.client_id)
            if grant == "refresh_token":
                if client_secret is None and app.require_secret_for_refresh:
                    return _oauth_error("invalid_client", "invalid_client", INVALID_CLIENT_STATUS)
                return self._refresh_grant(request, app.client_id)
            return _oauth_error("unsupported_grant_type", "unsupported_grant_type")

    def _code_grant(self, request: Request, client_id: str) -> Response:
        form = request.form
        code = self.state.auth_codes.get(form.get("code", ""))
        if code is None or code.used or code.client_id != client_id or code.login_kind != self.kind:
            return _oauth_error("invalid_grant", "invalid_code")
        code.used = True  # single use, even when the rest of the request is wrong
        if code.expires_at < time.time():
            return _oauth_error("invalid_grant", "expired_code")
        if form.get("redirect_uri") != code.redirect_uri:
            return _oauth_error("invalid_grant", "redirect_mismatch")
        if code.code_challenge:
            verifier = form.get("code_verifier")
            # SALESFORCE.md section 1, PKCE failures: missing verifier -> invalid_grant,
            # wrong verifier -> invalid_request.
            if not verifier:
                return _oauth_error("invalid_grant", "code_verifier_missing")
            digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
            expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if not hmac.compare_digest(expected, code.code_challenge):
                return _oauth_error("invalid_request", "code_verifier_invalid")
        org = self.state.orgs.get(code.org_id)
        if org is None or code.user_id not in org.users:
            return _oauth_error("invalid_grant", "invalid_code")
        user = org.users[code.user_id]
        refresh = None
        if REFRESH_SCOPES & set(code.scopes):
            refresh = self.state.issue_refresh_token(
                client_id=client_id, org=org, user=user, scopes=code.scopes, login_kind=self.kind
            )
        return self._token_response(request, client_id, org, user, code.scopes, refresh, True)

    def _refresh_grant(self, request: Request, client_id: str) -> Response:
        refresh = self.state.refresh_tokens.get(request.form.get("refresh_token", ""))
        if (
            refresh is None
            or refresh.revoked
            or refresh.client_id != client_id
            or refresh.login_kind != self.kind
            or refresh.org_id not in self.state.orgs
        ):
            return _oauth_error("invalid_grant", "expired_token")
        org = self.state.orgs[refresh.org_id]
        user = org.users.get(refresh.user_id)
        if user is None or not user.active:
            return _oauth_error("invalid_grant", "expired_token")
        app = self.state.apps[client_id]
        rotate = app.refresh_token_rotation or org.refresh_token_rotation
        if rotate:
            # Rotation: a new refresh token is returned and the old one stops working.
            refresh.revoked = True
            refresh = self.state.issue_refresh_token(
                client_id=client_id, org=org, user=user, scopes=refresh.scopes, login_kind=self.kind
            )
        return self._token_response(request, client_id, org, user, refresh.scopes, refresh, rotate)

    def _token_response(
        self,
        request: Request,
        client_id: str,
        org: Org,
        user: User,
        scopes: list[str],
        refresh: Any,
        include_refresh: bool,
    ) -> Response:
        access = self.state.issue_access_token(
            client_id=client_id,
            org=org,
            user=user,
            scopes=scopes,
            login_kind=self.kind,
            refresh_token=refresh.token if refresh else None,
        )
        identity = f"{self.url}/id/{org.id}/{user.id}"
        issued_at = str(int(access.issued_at * 1000))
        secret = self.state.apps[client_id].client_secret
        signature = base64.b64encode(
            hmac.new(secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
        ).decode()
        payload: dict[str, str] = {"access_token": access.token}
        if include_refresh and refresh is not None:
            payload["refresh_token"] = refresh.token
        payload.update(
            signature=signature,
            scope=" ".join(scopes),
            instance_url=self.state.instance_url,
            id=identity,
            token_type="Bearer",  # noqa: S106 - the scheme name, not a secret
            issued_at=issued_at,
        )
        if request.form.get("format") == "urlencoded":
            return Response(urlencode(payload), content_type="application/x-www-form-urlencoded")
        return Response(json.dumps(payload), content_type="application/json;charset=UTF-8")

    # ------------------------------------------------------------------ revoke

    def revoke(self, request: Request) -> Response:
        return self._logged(request, self._revoke)

    def _revoke(self, request: Request) -> Response:
        token = request.form.get("token") or request.args.get("token") or ""
        with self.state.lock:
            refresh = self.state.refresh_tokens.get(token)
            access = self.state.access_tokens.get(token)
            if refresh is not None and not refresh.revoked:
                self.state.revoke_refresh_token(refresh)
                return Response(status=200)
            if access is not None and not access.revoked:
                access.revoked = True
                return Response(status=200)
        return Response(
            json.dumps({"error": "invalid_token", "error_description": "invalid token"}),
            status=400,
            content_type="application/json;charset=UTF-8",
        )

    # ------------------------------------------------------------------ identity

    def _identity_user(self, request: Request) -> tuple[Org, User] | None:
        try:
            access = self.state.authenticate(bearer_token(request), need_api=False)
        except SalesforceError:
            return None
        org = self.state.orgs[access.org_id]
        if org.kind != self.kind:
            return None
        return org, org.users[access.user_id]

    def _urls(self, org: Org, user: User, version: str) -> dict[str, str]:
        inst, org15 = self.state.instance_url, org.id[:15]
        return {
            "enterprise": f"{inst}/services/Soap/c/{version}/{org15}",
            "metadata": f"{inst}/services/Soap/m/{version}/{org15}",
            "partner": f"{inst}/services/Soap/u/{version}/{org15}",
            "rest": f"{inst}/services/data/v{version}/",
            "sobjects": f"{inst}/services/data/v{version}/sobjects/",
            "search": f"{inst}/services/data/v{version}/search/",
            "query": f"{inst}/services/data/v{version}/query/",
            "recent": f"{inst}/services/data/v{version}/recent/",
            "tooling_soap": f"{inst}/services/Soap/T/{version}/{org15}",
            "tooling_rest": f"{inst}/services/data/v{version}/tooling/",
            "profile": f"{inst}/{user.id}",
            "feeds": f"{inst}/services/data/v{version}/chatter/feeds",
            "groups": f"{inst}/services/data/v{version}/chatter/groups",
            "users": f"{inst}/services/data/v{version}/chatter/users",
            "feed_items": f"{inst}/services/data/v{version}/chatter/feed-items",
            "feed_elements": f"{inst}/services/data/v{version}/chatter/feed-elements",
            "custom_domain": inst,
        }

    def identity(self, request: Request, parts: list[str]) -> Response:
        found = self._identity_user(request)
        if found is None or len(parts) != 2 or (found[0].id, found[1].id) != tuple(parts):
            return Response("Bad_OAuth_Token", status=IDENTITY_BAD_TOKEN_STATUS)
        org, user = found
        version = request.args.get("version", "{version}")
        body = {
            "id": f"{self.url}/id/{org.id}/{user.id}",
            "asserted_user": True,
            "user_id": user.id,
            "organization_id": org.id,
            "username": user.username,
            "nick_name": user.username.split("@")[0],
            "display_name": user.name,
            "email": user.email,
            "email_verified": True,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "timezone": "America/Los_Angeles",
            "photos": {
                "picture": f"{self.state.instance_url}/profilephoto/005/F",
                "thumbnail": f"{self.state.instance_url}/profilephoto/005/T",
            },
            "addr_street": None,
            "addr_city": None,
            "addr_state": None,
            "addr_country": None,
            "addr_zip": None,
            "mobile_phone": None,
            "mobile_phone_verified": False,
            "is_lightning_login_user": False,
            "status": {"created_date": None, "body": None},
            "urls": self._urls(org, user, version),
            "active": user.active,
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": -28800000,
            "last_modified_date": "2024-01-01T00:00:00.000+0000",
        }
        return Response(json.dumps(body), content_type="application/json;charset=UTF-8")

    def userinfo(self, request: Request) -> Response:
        found = self._identity_user(request)
        if found is None:
            return Response("Bad_OAuth_Token", status=IDENTITY_BAD_TOKEN_STATUS)
        org, user = found
        body = {
            "sub": f"{self.url}/id/{org.id}/{user.id}",
            "user_id": user.id,
            "organization_id": org.id,
            "preferred_username": user.username,
            "nickname": user.username.split("@")[0],
            "name": user.name,
            "email": user.email,
            "email_verified": True,
            "given_name": user.first_name,
            "family_name": user.last_name,
            "zoneinfo": "America/Los_Angeles",
            "photos": {},
            "profile": f"{self.state.instance_url}/{user.id}",
            "picture": f"{self.state.instance_url}/profilephoto/005/F",
            "address": {},
            "is_salesforce_integration_user": False,
            "urls": self._urls(org, user, request.args.get("version", "{version}")),
            "active": user.active,
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": -28800000,
            "updated_at": "2024-01-01T00:00:00Z",
        }
        return Response(json.dumps(body), content_type="application/json;charset=UTF-8")
