"""System checks: the integration cannot work without its connected app's credentials."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


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
    return errors
