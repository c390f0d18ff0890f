"""Where an owner signs in to Salesforce: production, sandbox or a My Domain host.

A My Domain entry must match Salesforce's own host patterns, so a typo or a look-alike host never
receives the user's credentials or our client secret; `login_url_is_allowed` applies the same
rule before a refresh token is sent anywhere. See docs/architecture.md ("Connecting").
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from integrations.salesforce.models import Environment

logger = logging.getLogger(__name__)

# What the owner picks on the card.
CHOICE_PRODUCTION = "production"
CHOICE_SANDBOX = "sandbox"
CHOICE_MY_DOMAIN = "mydomain"

# Salesforce's My Domain login hosts (help.salesforce.com "My Domain URL formats"):
# production `<name>.my.salesforce.com`, Developer Edition `<name>.develop.my.salesforce.com`,
# sandbox `<name>--<sandbox>.sandbox.my.salesforce.com`, scratch `<name>.scratch.my.salesforce.com`.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_MY_DOMAIN_HOSTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"^{_LABEL}\.my\.salesforce\.com$"), Environment.PRODUCTION),
    (re.compile(rf"^{_LABEL}\.develop\.my\.salesforce\.com$"), Environment.PRODUCTION),
    (re.compile(rf"^{_LABEL}--{_LABEL}\.sandbox\.my\.salesforce\.com$"), Environment.SANDBOX),
    (re.compile(rf"^{_LABEL}\.scratch\.my\.salesforce\.com$"), Environment.SANDBOX),
)

MY_DOMAIN_HELP = (
    "Enter your org's My Domain host, for example acme.my.salesforce.com, or "
    "acme--uat.sandbox.my.salesforce.com for a sandbox. Salesforce shows it under "
    "Setup → My Domain."
)


class InvalidLoginHost(ValueError):
    """The owner's My Domain entry is not a Salesforce login host; the text says what to enter."""


@dataclass(frozen=True)
class LoginChoice:
    """Where the owner signs in, and whether that is a production org or a sandbox."""

    login_url: str
    environment: str


def is_loopback_host(host: str) -> bool:
    """Whether a login host is this machine (the local emulator), where plain http is fine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _base_url(url: str) -> str:
    """scheme://host[:port] of a URL, lower-cased, without path or trailing slash."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def extra_login_urls() -> dict[str, str]:
    """settings.SALESFORCE_EXTRA_LOGIN_HOSTS as {host[:port]: base URL}.

    An entry may be a bare host (plain http for loopback hosts such as the local emulator's,
    https otherwise) or a full URL.
    """
    urls: dict[str, str] = {}
    for entry in settings.SALESFORCE_EXTRA_LOGIN_HOSTS:
        entry = entry.strip().lower().rstrip("/")
        if not entry:
            continue
        if "://" not in entry:
            host = urlsplit(f"//{entry}").hostname or ""
            entry = f"{'http' if is_loopback_host(host) else 'https'}://{entry}"
        urls[urlsplit(entry).netloc] = _base_url(entry)
    return urls


def login_url_for(*, choice: str, my_domain: str = "") -> LoginChoice:
    """The login URL and environment for the owner's choice on the card.

    Raises InvalidLoginHost with a message for the owner when a My Domain entry is not a
    Salesforce login host (or one of settings.SALESFORCE_EXTRA_LOGIN_HOSTS).
    """
    if choice == CHOICE_PRODUCTION:
        return LoginChoice(_base_url(settings.SALESFORCE_LOGIN_URL), Environment.PRODUCTION)
    if choice == CHOICE_SANDBOX:
        return LoginChoice(_base_url(settings.SALESFORCE_SANDBOX_LOGIN_URL), Environment.SANDBOX)
    if choice != CHOICE_MY_DOMAIN:
        raise InvalidLoginHost("Choose Production, Sandbox or My Domain.")

    entry = my_domain.strip().lower()
    if not entry:
        raise InvalidLoginHost(MY_DOMAIN_HELP)
    try:
        parts = urlsplit(entry if "://" in entry else f"https://{entry}")
        port = parts.port
    except ValueError:  # e.g. a port that is not a number, an unclosed [IPv6 bracket
        raise InvalidLoginHost(
            f"“{my_domain.strip()}” is not a Salesforce My Domain host. {MY_DOMAIN_HELP}"
        ) from None
    if (
        parts.scheme not in ("http", "https")
        or parts.username
        or parts.password
        or parts.query
        or parts.fragment
        or parts.path not in ("", "/")
    ):
        raise InvalidLoginHost(f"Enter only the host name, without a path. {MY_DOMAIN_HELP}")

    extras = extra_login_urls()
    if parts.netloc in extras:
        login_url = extras[parts.netloc]
        sandbox = _base_url(settings.SALESFORCE_SANDBOX_LOGIN_URL)
        environment = Environment.SANDBOX if login_url == sandbox else Environment.PRODUCTION
        return LoginChoice(login_url, environment)

    host = parts.hostname or ""
    if parts.scheme == "https" and port in (None, 443):
        for pattern, environment in _MY_DOMAIN_HOSTS:
            if pattern.match(host):
                return LoginChoice(f"https://{host}", environment)
    raise InvalidLoginHost(
        f"“{my_domain.strip()}” is not a Salesforce My Domain host. {MY_DOMAIN_HELP}"
    )


def login_url_is_allowed(login_url: str) -> bool:
    """Whether a stored login URL is one we would send a refresh token to."""
    base = _base_url(login_url)
    allowed = {
        _base_url(settings.SALESFORCE_LOGIN_URL),
        _base_url(settings.SALESFORCE_SANDBOX_LOGIN_URL),
        *extra_login_urls().values(),
    }
    if base in allowed:
        return True
    parts = urlsplit(base)
    return (
        parts.scheme == "https"
        and parts.port is None
        and any(pattern.match(parts.hostname or "") for pattern, _ in _MY_DOMAIN_HOSTS)
    )
