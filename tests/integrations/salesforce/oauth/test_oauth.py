"""Connect: the OAuth web server flow against the emulator's login hosts, over real HTTP."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from integrations.salesforce.checks import check_salesforce_configuration
from integrations.salesforce.models import (
    ConnectionStatus,
    Environment,
    SalesforceConnection,
    SalesforceSettings,
)
from integrations.salesforce.oauth.hosts import (
    CHOICE_MY_DOMAIN,
    CHOICE_PRODUCTION,
    CHOICE_SANDBOX,
    InvalidLoginHost,
    login_url_for,
)
from tests.emulator_support import create_org
from tests.factories import MembershipFactory, SourceFactory, UserFactory
from tests.integrations.salesforce.oauth_support import (
    approve,
    card_url,
    connect_through_emulator,
    connect_url,
    finish,
    start_connect,
)

pytestmark = pytest.mark.django_db


def test_connect_stores_the_connection_and_validates_it(
    owner_client: Client, business: Any, owner: Any, emulator: Any, org: dict[str, Any]
) -> None:
    connection = connect_through_emulator(owner_client, business)

    admin = org["users"][0]
    assert connection.org_id == org["org_id"]
    assert connection.user_id == admin["id"]
    assert connection.username == admin["username"]
    assert connection.display_name == "Ada Admin"
    assert connection.environment == Environment.PRODUCTION
    assert connection.login_url == emulator.login_url
    assert connection.instance_url == emulator.instance_url
    assert connection.connected_by == owner
    assert connection.status == ConnectionStatus.CONNECTED
    # The tokens are the ones the emulator issued for this org and user.
    access = emulator.state.access_tokens[connection.access_token]
    assert (access.org_id, access.user_id) == (org["org_id"], admin["id"])
    assert emulator.state.refresh_tokens[connection.refresh_token].org_id == org["org_id"]
    # Connecting validates at once, so the card can say whether it works.
    assert connection.last_validation_ok is True
    assert connection.last_validation_message == (
        f"Connected as {admin['username']}, who can create Leads."
    )

    card = owner_client.get(card_url(business))
    text = card.content.decode()
    assert (
        f"Salesforce is connected to Joe&#x27;s Plumbing as Ada Admin ({admin['username']})."
        in (text)
    )


def test_authorize_request_carries_pkce_s256_state_scopes_and_the_fixed_callback(
    owner_client: Client, business: Any, org: dict[str, Any], emulator: Any
) -> None:
    url = start_connect(owner_client, business)

    parts = urlsplit(url)
    params = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        f"{emulator.login_url}/services/oauth2/authorize"
    )
    assert params["response_type"] == "code"
    assert params["client_id"] == org["client_id"]
    assert params["redirect_uri"] == "http://testserver/integrations/salesforce/callback/"
    assert params["scope"] == "api refresh_token"
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43  # base64url(SHA-256) without padding
    assert len(params["state"]) >= 32
    # Nothing about the source or the user travels in the URL.
    assert business.slug not in url


def test_connect_to_a_sandbox_uses_the_sandbox_login_host(
    owner_client: Client, business: Any, control: Any, sf_settings: Any, emulator: Any
) -> None:
    sandbox = create_org(control, kind="sandbox", auto_approve=True)

    connection = connect_through_emulator(owner_client, business, environment="sandbox")

    assert connection.environment == Environment.SANDBOX
    assert connection.login_url == emulator.sandbox_login_url
    assert connection.org_id == sandbox["org_id"]
    assert connection.username.endswith(".sandbox")


def test_connect_through_the_consent_page(
    owner_client: Client, business: Any, control: Any, sf_settings: Any
) -> None:
    create_org(control)  # no auto-approve: the consent page is shown
    response = finish(owner_client, approve(start_connect(owner_client, business)))

    assert response.status_code == 302
    assert SalesforceConnection.objects.get(source=business).is_usable


def test_denying_on_the_consent_page_connects_nothing_and_says_so(
    owner_client: Client, business: Any, control: Any, sf_settings: Any
) -> None:
    create_org(control)
    response = finish(owner_client, approve(start_connect(owner_client, business), deny=True))

    assert response.status_code == 302
    assert response["Location"] == card_url(business)
    assert not SalesforceConnection.objects.filter(source=business).exists()
    card = owner_client.get(card_url(business)).content.decode()
    assert "Salesforce was not connected: end-user denied authorization (access_denied)." in card


def test_reconnect_replaces_tokens_and_makes_the_connection_usable_again(
    owner_client: Client, business: Any, org: dict[str, Any], control: Any
) -> None:
    first = connect_through_emulator(owner_client, business)
    control.revoke_refresh_tokens(org["org_id"])
    SalesforceConnection.objects.filter(pk=first.pk).update(
        status=ConnectionStatus.NEEDS_RECONNECT, status_reason="invalid_grant"
    )

    second = connect_through_emulator(owner_client, business)

    assert second.pk == first.pk
    assert second.status == ConnectionStatus.CONNECTED
    assert second.status_reason == ""
    assert second.access_token != first.access_token
    assert second.refresh_token != first.refresh_token
    assert SalesforceConnection.objects.filter(source=business).count() == 1


def test_a_source_that_inherits_cannot_connect_its_own(
    owner_client: Client, location: Any, org: dict[str, Any]
) -> None:
    SalesforceSettings.objects.create(source=location, inherit_from_parent=True)

    response = owner_client.post(connect_url(location), {"environment": "production"})

    assert response.status_code == 302
    assert response["Location"] == card_url(location)
    card = owner_client.get(card_url(location)).content.decode()
    assert "Joe&#x27;s Plumbing East inherits its Salesforce connection from Joe&#x27;s " in card
    assert "Turn off “Inherit from parent”" in card
    assert not owner_client.session.get("salesforce_oauth_flows")


def test_an_invalid_my_domain_is_shown_next_to_the_field_and_kept(
    owner_client: Client, business: Any, sf_settings: Any
) -> None:
    response = owner_client.post(
        connect_url(business), {"environment": "mydomain", "my_domain": "acme.salesforce.evil.com"}
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="my-domain-error"' in page
    assert "“acme.salesforce.evil.com” is not a Salesforce My Domain host." in page
    assert 'value="acme.salesforce.evil.com"' in page
    assert not owner_client.session.get("salesforce_oauth_flows")


def test_a_my_domain_host_is_where_the_user_signs_in(
    owner_client: Client, business: Any, sf_settings: Any
) -> None:
    url = start_connect(
        owner_client,
        business,
        environment="mydomain",
        my_domain="https://Acme--UAT.sandbox.my.salesforce.com/",
    )

    assert url.startswith("https://acme--uat.sandbox.my.salesforce.com/services/oauth2/authorize?")


@pytest.mark.parametrize(
    ("entry", "host", "environment"),
    [
        ("acme.my.salesforce.com", "acme.my.salesforce.com", "production"),
        ("https://acme.my.salesforce.com/", "acme.my.salesforce.com", "production"),
        ("a-dev-ed.develop.my.salesforce.com", "a-dev-ed.develop.my.salesforce.com", "production"),
        ("acme--uat.sandbox.my.salesforce.com", "acme--uat.sandbox.my.salesforce.com", "sandbox"),
        ("ACME--UAT.Sandbox.My.Salesforce.com", "acme--uat.sandbox.my.salesforce.com", "sandbox"),
    ],
)  # fmt: skip
def test_my_domain_hosts_salesforce_uses_are_accepted(
    entry: str, host: str, environment: str
) -> None:
    choice = login_url_for(choice=CHOICE_MY_DOMAIN, my_domain=entry)
    assert (choice.login_url, choice.environment) == (f"https://{host}", environment)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("", "Enter your org's My Domain host, for example acme.my.salesforce.com"),
        ("acme.salesforce.com.evil.io", "is not a Salesforce My Domain host"),
        ("my.salesforce.com", "is not a Salesforce My Domain host"),
        ("evil.com/acme.my.salesforce.com", "Enter only the host name, without a path."),
        ("http://acme.my.salesforce.com", "is not a Salesforce My Domain host"),
        ("acme.my.salesforce.com:8443", "is not a Salesforce My Domain host"),
        ("user@acme.my.salesforce.com", "Enter only the host name, without a path."),
        ("acme.sandbox.my.salesforce.com", "is not a Salesforce My Domain host"),
        ("acme.my.salesforce.com:https", "is not a Salesforce My Domain host"),
        ("[::1", "is not a Salesforce My Domain host"),
    ],
)
def test_hosts_that_are_not_salesforce_login_hosts_are_refused(entry: str, message: str) -> None:
    with pytest.raises(InvalidLoginHost, match=message.replace(".", r"\.")):
        login_url_for(choice=CHOICE_MY_DOMAIN, my_domain=entry)


def test_production_and_sandbox_come_from_settings(settings: Any) -> None:
    settings.SALESFORCE_LOGIN_URL = "https://login.salesforce.com/"
    settings.SALESFORCE_SANDBOX_LOGIN_URL = "https://test.salesforce.com"
    assert login_url_for(choice=CHOICE_PRODUCTION).login_url == "https://login.salesforce.com"
    assert login_url_for(choice=CHOICE_SANDBOX).environment == "sandbox"


def test_another_owners_source_cannot_be_connected_validated_or_disconnected(
    business: Any, owner_client: Client, org: dict[str, Any]
) -> None:
    connect_through_emulator(owner_client, business)
    other = UserFactory(username="mallory")
    MembershipFactory(user=other, business=SourceFactory(slug="mallorys-mowing"))
    mallory = Client()
    mallory.force_login(other)

    assert mallory.post(connect_url(business), {"environment": "production"}).status_code == 404
    assert mallory.get(connect_url(business)).status_code == 404
    validate = f"/sources/{business.slug}/integrations/salesforce/validate/"
    assert mallory.post(validate).status_code == 404
    disconnect = f"/sources/{business.slug}/integrations/salesforce/disconnect/"
    assert mallory.get(disconnect).status_code == 404
    assert mallory.post(disconnect).status_code == 404
    assert SalesforceConnection.objects.filter(source=business).exists()


def test_the_callback_checks_the_source_against_the_user_again(
    owner_client: Client, business: Any, owner: Any, org: dict[str, Any]
) -> None:
    callback = approve(start_connect(owner_client, business))
    owner.business_memberships.all().delete()  # no longer an owner of the business

    assert finish(owner_client, callback).status_code == 404
    assert not SalesforceConnection.objects.filter(source=business).exists()


def check_ids() -> list[str]:
    return [error.id for error in check_salesforce_configuration()]


def test_the_configuration_check_passes_for_salesforce_and_for_a_local_emulator(
    settings: Any,
) -> None:
    settings.SALESFORCE_LOGIN_URL = "https://login.salesforce.com"
    settings.SALESFORCE_SANDBOX_LOGIN_URL = "http://127.0.0.1:8002"
    assert check_ids() == []


def test_the_configuration_check_fails_clearly_when_something_is_missing(
    settings: Any, tmp_path: Any
) -> None:
    settings.SALESFORCE_CLIENT_SECRET = ""
    settings.SALESFORCE_LOGIN_URL = "http://login.salesforce.com"
    settings.SALESFORCE_CA_BUNDLE = str(tmp_path / "missing.pem")
    settings.FIELD_ENCRYPTION_KEYS = ["not-a-fernet-key"]

    errors = {error.id: error.msg for error in check_salesforce_configuration()}

    assert errors == {
        "salesforce.E001": "SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET are not set.",
        "salesforce.E002": (
            "SALESFORCE_LOGIN_URL must be an https URL (got 'http://login.salesforce.com')."
        ),
        "salesforce.E003": (
            f"SALESFORCE_CA_BUNDLE names a file that does not exist: {tmp_path / 'missing.pem'}."
        ),
        "salesforce.E004": (
            "FIELD_ENCRYPTION_KEYS must hold at least one Fernet key; Salesforce tokens are "
            "stored encrypted with them."
        ),
    }
