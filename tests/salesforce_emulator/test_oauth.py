"""OAuth 2.0 web server flow on the emulator's login hosts, driven with Authlib and requests.

Each test names the fact of ../shared/SALESFORCE.md section 1 ("OAuth 2.0 web server flow") it
checks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.integrations.base_client import OAuthError
from simple_salesforce.exceptions import SalesforceExpiredSession

from salesforce_emulator import EmulatorControl, EmulatorServer

from .conftest import authorize, connect, oauth_session, salesforce


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_token_response_has_salesforce_fields_and_no_expires_in(
    sf_emulator: EmulatorServer, emulator_org: dict[str, Any]
) -> None:
    """Token response fields: instance_url, id, issued_at in ms, signature; no expires_in."""
    token = connect(sf_emulator, emulator_org)
    assert "expires_in" not in token
    assert token["token_type"] == "Bearer"
    assert token["instance_url"] == sf_emulator.instance_url
    user_id = emulator_org["users"][0]["id"]
    assert token["id"] == f"{sf_emulator.login_url}/id/{emulator_org['org_id']}/{user_id}"
    assert re.fullmatch(r"\d{13}", token["issued_at"])
    assert abs(int(token["issued_at"]) / 1000 - time.time()) < 60
    # signature = Base64(HMAC-SHA256(client_secret, id + issued_at))
    expected = hmac.new(
        emulator_org["client_secret"].encode(),
        (token["id"] + token["issued_at"]).encode(),
        hashlib.sha256,
    ).digest()
    assert token["signature"] == base64.b64encode(expected).decode()
    assert set(token["scope"].split()) == {"api", "refresh_token"}
    assert token["refresh_token"]


def test_no_refresh_token_without_refresh_scope(
    sf_emulator: EmulatorServer, emulator_org: dict[str, Any]
) -> None:
    """refresh_token only when the refresh_token/offline_access scope was granted."""
    assert "refresh_token" not in connect(sf_emulator, emulator_org, scope="api")
    assert connect(sf_emulator, emulator_org, scope="api offline_access")["refresh_token"]


def test_client_auth_with_http_basic(
    sf_emulator: EmulatorServer, emulator_org: dict[str, Any]
) -> None:
    """Client authentication: the emulator accepts the body and HTTP Basic."""
    token = connect(sf_emulator, emulator_org, auth_method="client_secret_basic")
    assert token["access_token"]


def test_wrong_client_secret_is_invalid_client(
    sf_emulator: EmulatorServer, emulator_org: dict[str, Any]
) -> None:
    """Token endpoint errors: 400 JSON {error, error_description}."""
    client, callback, verifier = authorize(sf_emulator, emulator_org)
    client.client_secret = "wrong"
    with pytest.raises(OAuthError) as caught:
        client.fetch_token(
            f"{sf_emulator.login_url}/services/oauth2/token",
            authorization_response=callback,
            code_verifier=verifier,
        )
    assert caught.value.error == "invalid_client"


def _post_token(server: EmulatorServer, org: dict[str, Any], **form: str) -> requests.Response:
    body = {"client_id": org["client_id"], "client_secret": org["client_secret"], **form}
    return requests.post(f"{server.login_url}/services/oauth2/token", data=body, timeout=10)


def test_code_is_single_use(sf_emulator: EmulatorServer, emulator_org: dict[str, Any]) -> None:
    """Authorization codes are single-use."""
    _client, callback, verifier = authorize(sf_emulator, emulator_org)
    form = {
        "grant_type": "authorization_code",
        "code": _query(callback)["code"],
        "redirect_uri": emulator_org["callback_urls"][0],
        "code_verifier": verifier,
    }
    assert _post_token(sf_emulator, emulator_org, **form).status_code == 200
    again = _post_token(sf_emulator, emulator_org, **form)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_code_expires(
    sf_emulator: EmulatorServer, emulator_org: dict[str, Any], emulator_control: EmulatorControl
) -> None:
    """Authorization codes are short-lived (lifetime configurable; 5 vs 15 min UNCONFIRMED)."""
    emulator_control.set_auth_code_ttl(0.05)
    _client, callback, verifier = authorize(sf_emulator, emulator_org)
    time.sleep(0.1)
    answer = _post_token(
        sf_emulator,
        emulator_org,
        grant_type="authorization_code",
        code=_query(callback)["code"],
        redirect_uri=emulator_org["callback_urls"][0],
        code_verifier=verifier,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("verifier", "error"),
    [
        (None, "invalid_grant"),  # challenge sent, no code_verifier -> invalid_grant
        ("x" * 50, "invalid_request"),  # verifier mismatched -> invalid_request
    ],
)
def test_pkce_failures(
    sf_emulator: EmulatorServer, emulator_org: dict[str, Any], verifier: str | None, error: str
) -> None:
    """PKCE failures (SF docs 216/224): missing verifier and wrong verifier."""
    _client, callback, _good = authorize(sf_emulator, emulator_org)
    form = {
        "grant_type": "authorization_code",
        "code": _query(callback)["code"],
        "redirect_uri": emulator_org["callback_urls"][0],
    }
    if verifier:
        form["code_verifier"] = verifier
    answer = _post_token(sf_emulator, emulator_org, **form)
    assert answer.status_code == 400
    assert answer.json()["error"] == error


def test_token_request_needs_the_same_redirect_uri(
    sf_emulator: EmulatorServer, emulator_org: dict[str, Any]
) -> None:
    """redirect_uri must match exactly ("redirect uri does not match configuration")."""
    _client, callback, verifier = authorize(sf_emulator, emulator_org)
    answer = _post_token(
        sf_emulator,
        emulator_org,
        grant_type="authorization_code",
        code=_query(callback)["code"],
        redirect_uri=emulator_org["callback_urls"][0] + "x",
        code_verifier=verifier,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"


def test_authorize_rejects_unknown_client_and_redirect_uri_with_an_error_page(
    sf_emulator: EmulatorServer, emulator_org: dict[str, Any]
) -> None:
    """Unknown client_id or unregistered redirect_uri: an error page, never a redirect."""
    url = f"{sf_emulator.login_url}/services/oauth2/authorize"
    params = {
        "response_type": "code",
        "client_id": emulator_org["client_id"],
        "redirect_uri": "https://evil.example/cb",
    }
    answer = requests.get(url, params=params, allow_redirects=False, timeout=10)
    assert answer.status_code == 400
    assert "redirect_uri_mismatch" in answer.text
    params.update(client_id="nope", redirect_uri=emulator_org["callback_urls"][0])
    answer = requests.get(url, params=params, allow_redirects=False, timeout=10)
    assert answer.status_code == 400
    assert "invalid_client_id" in answer.text


def test_consent_page_has_allow_and_deny_and_deny_is_access_denied(
    sf_emulator: EmulatorServer, emulator_control: EmulatorControl
) -> None:
    """Callback on denial: ?error=access_denied&state=... (standard OAuth error names)."""
    org = emulator_control.create_org("Manual")  # auto_approve off: the real consent page
    client = oauth_session(sf_emulator, org)
    url, state = client.create_authorization_url(
        f"{sf_emulator.login_url}/services/oauth2/authorize", code_verifier="v" * 48
    )
    page = requests.get(url, timeout=10)
    assert page.status_code == 200
    assert ">Allow</button>" in page.text and ">Deny</button>" in page.text
    assert org["users"][0]["username"] in page.text
    consent_id = re.search(r"name='consent_id' value='([^']+)'", page.text).group(1)
    denied = requests.post(
        f"{sf_emulator.login_url}/services/oauth2/authorize",
        data={
            "consent_id": consent_id,
            "username": org["users"][0]["username"],
            "action": "deny",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert denied.status_code == 302
    params = _query(denied.headers["Location"])
    assert params["error"] == "access_denied"
    assert params["state"] == state
    assert "code" not in params


def test_consent_page_allow_redirects_with_code_and_state(
    sf_emulator: EmulatorServer, emulator_control: EmulatorControl
) -> None:
    """Callback on success: redirect_uri?code=...&state=...; login_hint picks the user."""
    org = emulator_control.create_org("Manual")
    username = org["users"][0]["username"]
    client = oauth_session(sf_emulator, org)
    url, state = client.create_authorization_url(
        f"{sf_emulator.login_url}/services/oauth2/authorize",
        code_verifier="v" * 48,
        login_hint=username,
    )
    page = requests.get(url, timeout=10)
    assert f"Signed in as <b>{username}</b>" in page.text
    consent_id = re.search(r"name='consent_id' value='([^']+)'", page.text).group(1)
    allowed = requests.post(
        f"{sf_emulator.login_url}/services/oauth2/authorize",
        data={"consent_id": consent_id, "username": username, "action": "allow"},
        allow_redirects=False,
        timeout=10,
    )
    params = _query(allowed.headers["Location"])
    assert params["state"] == state and params["code"]
    token = client.fetch_token(
        f"{sf_emulator.login_url}/services/oauth2/token",
        authorization_response=allowed.headers["Location"],
        code_verifier="v" * 48,
    )
    assert token["id"].endswith(f"/{org['org_id']}/{org['users'][0]['id']}")


def test_refresh_returns_new_access_token_without_refresh_token(
    sf_emulator: EmulatorServer, emulator_org: dict[str, Any]
) -> None:
    """Refresh: no new refresh_token unless rotation is on."""
    token = connect(sf_emulator, emulator_org)
    client = oauth_session(sf_emulator, emulator_org, token=token)
    refreshed = client.refresh_token(f"{sf_emulator.login_url}/services/oauth2/token")
    assert refreshed["access_token"] != token["access_token"]
    assert "expires_in" not in refreshed
    raw = _post_token(
        sf_emulator, emulator_org, grant_type="refresh_token", refresh_token=token["refresh_token"]
    ).json()
    assert "refresh_token" not in raw
    assert salesforce(sf_emulator, raw).limits()["DailyApiRequests"]["Max"] > 0


def test_refresh_token_rotation(
    sf_emulator: EmulatorServer, emulator_org: dict[str, Any], emulator_control: EmulatorControl
) -> None:
    """Rotation on: a new refresh token is returned and the old one is invalidated."""
    emulator_control.set_org_settings(emulator_org["org_id"], refresh_token_rotation=True)
    token = connect(sf_emulator, emulator_org)
    first = _post_token(
        sf_emulator, emulator_org, grant_type="refresh_token", refresh_token=token["refresh_token"]
    ).json()
    assert first["refresh_token"] != token["refresh_token"]
    old = _post_token(
        sf_emulator, emulator_org, grant_type="refresh_token", refresh_token=token["refresh_token"]
    )
    assert old.status_code == 400 and old.json()["error"] == "invalid_grant"


def test_revoked_refresh_token_is_invalid_grant(
    sf_emulator: EmulatorServer, emulator_org: dict[str, Any], emulator_control: EmulatorControl
) -> None:
    """invalid_grant / "expired access/refresh token" after the refresh token is revoked."""
    token = connect(sf_emulator, emulator_org)
    assert emulator_control.revoke_refresh_tokens(emulator_org["org_id"]) == 1
    answer = _post_token(
        sf_emulator, emulator_org, grant_type="refresh_token", refresh_token=token["refresh_token"]
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }
    # Revoking a refresh token also revokes its access tokens.
    with pytest.raises(SalesforceExpiredSession):
        salesforce(sf_emulator, token).limits()


def test_revoke_endpoint(sf_emulator: EmulatorServer, emulator_org: dict[str, Any]) -> None:
    """Revoke: POST token=...; 200 on success, 400 for an unknown token; access tokens die too."""
    token = connect(sf_emulator, emulator_org)
    url = f"{sf_emulator.login_url}/services/oauth2/revoke"
    assert requests.post(url, data={"token": token["refresh_token"]}, timeout=10).status_code == 200
    with pytest.raises(SalesforceExpiredSession):
        salesforce(sf_emulator, token).limits()
    assert requests.post(url, data={"token": "nope"}, timeout=10).status_code == 400


def test_expired_access_token_is_invalid_session_id_and_refresh_recovers(
    sf_emulator: EmulatorServer, emulator_org: dict[str, Any], emulator_control: EmulatorControl
) -> None:
    """401 INVALID_SESSION_ID "Session expired or invalid"; a refresh gives a working token."""
    token = connect(sf_emulator, emulator_org)
    emulator_control.expire_access_tokens(emulator_org["org_id"])
    with pytest.raises(SalesforceExpiredSession) as caught:
        salesforce(sf_emulator, token).limits()
    assert caught.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID", "fields": []}
    ]
    client = oauth_session(sf_emulator, emulator_org, token=token)
    fresh = client.refresh_token(f"{sf_emulator.login_url}/services/oauth2/token")
    assert salesforce(sf_emulator, fresh).limits()["DailyApiRequests"]["Max"] == 15000


def test_identity_url_and_userinfo(
    sf_emulator: EmulatorServer, emulator_org: dict[str, Any], emulator_token: dict[str, Any]
) -> None:
    """Identity URL fields, urls with the literal {version}, and UserInfo's sub."""
    headers = {"Authorization": f"Bearer {emulator_token['access_token']}"}
    identity = requests.get(emulator_token["id"], headers=headers, timeout=10).json()
    assert identity["organization_id"] == emulator_org["org_id"]
    assert identity["username"] == emulator_org["users"][0]["username"]
    assert identity["urls"]["rest"] == f"{sf_emulator.instance_url}/services/data/v{{version}}/"
    assert "/services/Soap/u/{version}/" in identity["urls"]["partner"]
    versioned = requests.get(
        emulator_token["id"], headers=headers, params={"version": "59.0"}, timeout=10
    ).json()
    assert versioned["urls"]["rest"].endswith("/services/data/v59.0/")
    info = requests.get(
        f"{sf_emulator.login_url}/services/oauth2/userinfo", headers=headers, timeout=10
    ).json()
    assert info["sub"] == emulator_token["id"]
    assert info["preferred_username"] == emulator_org["users"][0]["username"]
    bad = requests.get(emulator_token["id"], headers={"Authorization": "Bearer x"}, timeout=10)
    assert bad.status_code == 403


def test_sandbox_org_authorizes_on_the_sandbox_host_only(
    sf_emulator: EmulatorServer, emulator_control: EmulatorControl
) -> None:
    """Hosts: production login vs sandbox (test.salesforce.com); id uses the sandbox host."""
    sandbox = emulator_control.create_org("Acme UAT", kind="sandbox", auto_approve=True)
    token = connect(sf_emulator, sandbox, login_url=sf_emulator.sandbox_login_url)
    assert token["id"].startswith(f"{sf_emulator.sandbox_login_url}/id/{sandbox['org_id']}/")
    assert salesforce(sf_emulator, token).limits()["DailyApiRequests"]["Max"] > 0
    # The production host does not know the sandbox user: the consent page lists nobody.
    client = oauth_session(sf_emulator, sandbox)
    url, _ = client.create_authorization_url(
        f"{sf_emulator.login_url}/services/oauth2/authorize", code_verifier="v" * 48
    )
    page = requests.get(url, allow_redirects=False, timeout=10)
    assert page.status_code == 200
    assert sandbox["users"][0]["username"] not in page.text


# --------------------------------------------------------------------------- call log


def _oauth_calls(control: EmulatorControl, org_id: str) -> list[dict[str, Any]]:
    return [c for c in control.calls(org_id) if c["api"] == "oauth"]


def test_token_requests_are_in_the_orgs_call_log_without_secrets_and_uncounted(
    sf_emulator: EmulatorServer, emulator_org: dict[str, Any], emulator_control: EmulatorControl
) -> None:
    """Token and revoke requests are logged with api "oauth": grant type, client auth method and
    outcome, never a token, code or secret; they are not API requests (UNCONFIRMED: see
    OAUTH_CALLS_COUNT_AGAINST_API_LIMIT)."""
    org_id = emulator_org["org_id"]
    token = connect(sf_emulator, emulator_org, auth_method="client_secret_basic")
    refreshed = _post_token(
        sf_emulator, emulator_org, grant_type="refresh_token", refresh_token=token["refresh_token"]
    )
    revoke_url = f"{sf_emulator.login_url}/services/oauth2/revoke"
    # GET with the token in the query string: the logged path must not carry it.
    revoked = requests.get(revoke_url, params={"token": token["refresh_token"]}, timeout=10)
    again = _post_token(
        sf_emulator, emulator_org, grant_type="refresh_token", refresh_token=token["refresh_token"]
    )

    assert (refreshed.status_code, revoked.status_code, again.status_code) == (200, 200, 400)
    calls = _oauth_calls(emulator_control, org_id)
    user_id = emulator_org["users"][0]["id"]
    assert [
        (c["method"], c["path"], c["grant_type"], c["client_auth"], c["status"], c["error"])
        for c in calls
    ] == [
        ("POST", "/services/oauth2/token", "authorization_code", "client_secret_basic", 200, None),
        ("POST", "/services/oauth2/token", "refresh_token", "client_secret_post", 200, None),
        ("GET", "/services/oauth2/revoke", None, None, 200, None),
        ("POST", "/services/oauth2/token", "refresh_token", "client_secret_post", 400,
         "invalid_grant"),
    ]  # fmt: skip
    assert {(c["org_id"], c["user_id"]) for c in calls} == {(org_id, user_id)}
    assert calls[0]["headers"]["Authorization"] == "Basic <redacted>"
    logged = repr(emulator_control.calls(org_id))
    for secret in (
        token["access_token"],
        token["refresh_token"],
        refreshed.json()["access_token"],
        emulator_org["client_secret"],
    ):
        assert secret not in logged
    assert emulator_control.api_usage(org_id)["used"] == 0


def test_token_requests_for_no_known_org_are_kept_apart(
    sf_emulator: EmulatorServer, emulator_org: dict[str, Any], emulator_control: EmulatorControl
) -> None:
    """A request whose code or token belongs to no org is not put in any org's log."""
    answer = _post_token(
        sf_emulator, emulator_org, grant_type="refresh_token", refresh_token="5Aep861unknown"
    )

    assert answer.status_code == 400
    assert _oauth_calls(emulator_control, emulator_org["org_id"]) == []
    (unmatched,) = sf_emulator.state.unmatched_calls
    assert (unmatched["api"], unmatched["error"], unmatched["org_id"]) == (
        "oauth",
        "invalid_grant",
        None,
    )
    assert "5Aep861unknown" not in repr(unmatched)
