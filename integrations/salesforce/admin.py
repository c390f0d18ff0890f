"""Admin for the Salesforce integration.

Connections are listed and can be looked at, never edited here, and their tokens are not part of
any admin page: not as plain text, not encrypted. Connect and Disconnect are on the source's card.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from integrations.salesforce.models import SalesforceConnection


@admin.register(SalesforceConnection)
class SalesforceConnectionAdmin(admin.ModelAdmin):
    list_display = ["source", "username", "org_id", "environment", "status", "last_validation_ok"]
    list_filter = ["status", "environment"]
    search_fields = ["source__name", "source__slug", "username", "org_id", "user_id"]
    exclude = ["access_token", "refresh_token"]
    readonly_fields = [
        "source",
        "environment",
        "login_url",
        "instance_url",
        "org_id",
        "user_id",
        "username",
        "display_name",
        "status",
        "status_reason",
        "connected_by",
        "connected_at",
        "token_refreshed_at",
        "last_validated_at",
        "last_validation_ok",
        "last_validation_message",
        "api_usage_used",
        "api_usage_max",
        "api_usage_updated_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Deleting here would skip revoking the grant at Salesforce: use Disconnect on the card.
        return False
