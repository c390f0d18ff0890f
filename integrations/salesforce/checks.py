"""System checks: the integration cannot work without its connected app's credentials, login
hosts it may safely send them to, and keys to encrypt the tokens it receives."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, register

from integrations.salesforce.oauth.hosts import is_loopback_host


@register()
def check_salesforce_configuration(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors = []
    if not settings.SALESFORCE_CLIENT_ID or not settings.SALESFORCE_CLIENT_SECRET:
        errors.append(
            Error(
                "SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET are not set.",
                hint="Create a connected app in Salesforce (OAuth, scopes 'api refresh_token', "
                "callback <your host>/integrations/salesforce/callback/) and put its consumer key "
                "and secret in the environment. `make run` sets them for the local emulator.",
                id="salesforce.E001",
            )
        )
    for name in ("SALESFORCE_LOGIN_URL", "SALESFORCE_SANDBOX_LOGIN_URL"):
        url = getattr(settings, name)
        parts = urlsplit(url)
        # The client secret and refresh tokens are sent there: https, except to a local emulator.
        if not parts.hostname or (
            parts.scheme != "https"
            and not (parts.scheme == "http" and is_loopback_host(parts.hostname))
        ):
            errors.append(
                Error(
                    f"{name} must be an https URL (got {url!r}).",
                    hint="Use https://login.salesforce.com / https://test.salesforce.com; plain "
                    "http is accepted only for a local emulator on 127.0.0.1 or localhost.",
                    id="salesforce.E002",
                )
            )
    if settings.SALESFORCE_CA_BUNDLE and not Path(settings.SALESFORCE_CA_BUNDLE).is_file():
        errors.append(
            Error(
                f"SALESFORCE_CA_BUNDLE names a file that does not exist: "
                f"{settings.SALESFORCE_CA_BUNDLE}.",
                hint="Leave it empty for real Salesforce; set it to the emulator's CA file only.",
                id="salesforce.E003",
            )
        )
    keys = settings.FIELD_ENCRYPTION_KEYS
    try:
        valid = bool(keys) and all(Fernet(key.encode()) for key in keys)
    except (ValueError, TypeError, AttributeError):
        valid = False
    if not valid:
        errors.append(
            Error(
                "FIELD_ENCRYPTION_KEYS must hold at least one Fernet key; Salesforce tokens are "
                "stored encrypted with them.",
                hint="Generate one with python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'. To rotate, put the new key first, run "
                "`manage.py rotate_encryption_keys`, then drop the old key.",
                id="salesforce.E004",
            )
        )
    return errors
