"""Security of the sign-in and of the stored tokens: state, PKCE, and no token anywhere visible."""

from __future__ import annotations

import logging
import sys
from typing import Any

import pytest
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection as db
from django.test import Client
from django.views.debug import ExceptionReporter

from integrations.salesforce.api.errors import SalesforceTransientError
from integrations.salesforce.models import SalesforceConnection
from integrations.salesforce.oauth.tokens import refresh_access_token
from integrations.salesforce.validation import connection_validate
from tests.factories import MembershipFactory, UserFactory
from tests.integrations.salesforce.oauth_support import (
    approve,
    callback_params,
    card_url,
    connect_through_emulator,
    finish,
    issued_tokens,
    start_connect,
)

pytestmark = pytest.mark.django_db

CALLBACK = "/integrations/salesforce/callback/"
REFUSED = "The Salesforce sign-in could not be completed"


def _refused(response: Any) -> bool:
    return response.status_code == 400 and REFUSED in response.content.decode()


def test_a_callback_without_state_is_refused(
    owner_client: Client, business: Any, org: dict[str, Any]
) -> None:
    code = callback_params(approve(start_connect(owner_client, business)))["code"]

    assert _refused(owner_client.get(CALLBACK, {"code": code}))
    assert not SalesforceConnection.objects.exists()


def test_a_callback_with_a_wrong_state_is_refused(
    owner_client: Client, business: Any, org: dict[str, Any]
) -> None:
    params = callback_params(approve(start_connect(owner_client, business)))

    assert _refused(owner_client.get(CALLBACK, {"code": params["code"], "state": "forged"}))
    assert not SalesforceConnection.objects.exists()


def test_a_state_works_once(owner_client: Client, business: Any, org: dict[str, Any]) -> None:
    callback = approve(start_connect(owner_client, business))
    assert finish(owner_client, callback).status_code == 302
    stored = SalesforceConnection.objects.get(source=business)

    assert _refused(finish(owner_client, callback))
    assert SalesforceConnection.objects.get(source=business).access_token == stored.access_token


def test_a_state_older_than_the_flow_lifetime_is_refused(
    owner_client: Client, business: Any, org: dict[str, Any]
) -> None:
    callback = approve(start_connect(owner_client, business))
    session = owner_client.session
    flows = session["salesforce_oauth_flows"]
    for flow in flows.values():
        flow["started_at"] -= 31 * 60  # started more than 30 minutes ago
    session["salesforce_oauth_flows"] = flows
    session.save()

    assert _refused(finish(owner_client, callback))
    assert not SalesforceConnection.objects.exists()


def test_a_state_from_another_session_is_refused(
    owner_client: Client, owner: Any, business: Any, org: dict[str, Any]
) -> None:
    callback = approve(start_connect(owner_client, business))
    # The same user in another browser, and another owner of the same business.
    other_browser = Client()
    other_browser.force_login(owner)
    co_owner = UserFactory(username="jane")
    MembershipFactory(user=co_owner, business=business)
    co_owner_client = Client()
    co_owner_client.force_login(co_owner)

    assert _refused(finish(other_browser, callback))
    assert _refused(finish(co_owner_client, callback))
    assert not SalesforceConnection.objects.exists()
    # The flow is still usable where it started.
    assert finish(owner_client, callback).status_code == 302


def test_a_token_exchange_without_the_pkce_verifier_fails(
    owner_client: Client, business: Any, org: dict[str, Any], emulator: Any
) -> None:
    code = callback_params(approve(start_connect(owner_client, business)))["code"]
    # Someone who intercepted the code, and knows even the client secret, but not the verifier.
    thief = OAuth2Session(
        org["client_id"],
        org["client_secret"],
        token_endpoint_auth_method="client_secret_post",
    )

    with pytest.raises(OAuthError) as refused:
        thief.fetch_token(
            f"{emulator.login_url}/services/oauth2/token",
            grant_type="authorization_code",
            code=code,
            redirect_uri="http://testserver/integrations/salesforce/callback/",
        )

    assert refused.value.error == "invalid_grant"
    assert refused.value.description == "code verifier required"


def test_tokens_are_encrypted_in_the_database_column(
    owner_client: Client, business: Any, org: dict[str, Any]
) -> None:
    stored = connect_through_emulator(owner_client, business)

    with db.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token FROM salesforce_salesforceconnection WHERE id = %s",
            [stored.pk],
        )
        raw_access, raw_refresh = cursor.fetchone()

    assert stored.access_token not in raw_access
    assert stored.refresh_token not in raw_refresh
    key = Fernet(settings.FIELD_ENCRYPTION_KEYS[0].encode())
    assert key.decrypt(raw_access.encode()).decode() == stored.access_token
    assert key.decrypt(raw_refresh.encode()).decode() == stored.refresh_token


def test_no_token_in_logs_pages_or_the_admin(
    owner_client: Client,
    business: Any,
    location: Any,
    org: dict[str, Any],
    control: Any,
    emulator: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    stored = connect_through_emulator(owner_client, business)
    control.expire_access_tokens(org["org_id"])
    assert connection_validate(connection=stored).ok  # refreshes on the way
    pages = [
        owner_client.get(card_url(business)),
        owner_client.get(card_url(location)),
        owner_client.get(f"/sources/{business.slug}/integrations/salesforce/disconnect/"),
    ]
    admin_user = UserFactory(username="root", is_staff=True, is_superuser=True)
    admin = Client()
    admin.force_login(admin_user)
    admin_pages = [
        admin.get("/admin/salesforce/salesforceconnection/"),
        admin.get(f"/admin/salesforce/salesforceconnection/{stored.pk}/change/"),
    ]
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT access_token, refresh_token FROM salesforce_salesforceconnection WHERE id = %s",
            [stored.pk],
        )
        ciphertexts = list(cursor.fetchone())
    disconnect = owner_client.post(
        f"/sources/{business.slug}/integrations/salesforce/disconnect/", follow=True
    )

    secrets = [*issued_tokens(emulator), *ciphertexts, settings.SALESFORCE_CLIENT_SECRET]
    assert len(secrets) >= 6  # two access tokens, one refresh token, two ciphertexts, the secret
    for response in [*pages, *admin_pages, disconnect]:
        assert response.status_code == 200
        body = response.content.decode()
        assert not [secret for secret in secrets if secret in body]
    assert "Ada Admin" in admin_pages[1].content.decode()
    assert caplog.records, "the flow logs what it does"
    assert not [secret for secret in secrets if secret in caplog.text]


def _error_report_of_refresh(connection: SalesforceConnection) -> tuple[str, str]:
    """The error report Django would email for a refresh that failed (as in a task or view)."""
    try:
        refresh_access_token(connection=connection, stale_access_token=connection.access_token)
    except SalesforceTransientError:
        report = ExceptionReporter(None, *sys.exc_info(), is_email=True)
        return report.get_traceback_text(), report.get_traceback_html()
    raise AssertionError("the refresh should have failed")


def test_no_token_in_error_reports(
    owner_client: Client, business: Any, org: dict[str, Any], settings: Any
) -> None:
    stored = connect_through_emulator(owner_client, business)
    # A login host that does not answer: the refresh fails deep inside requests.
    settings.SALESFORCE_EXTRA_LOGIN_HOSTS = ["127.0.0.1:9"]
    SalesforceConnection.objects.filter(pk=stored.pk).update(login_url="http://127.0.0.1:9")
    stored.refresh_from_db()

    text, html = _error_report_of_refresh(stored)

    assert "refresh_access_token" in text
    assert "Could not reach 127.0.0.1:9" in text
    for secret in (stored.access_token, stored.refresh_token, settings.SALESFORCE_CLIENT_SECRET):
        assert secret not in text
        assert secret not in html
