"""Admin for the Salesforce integration.

Connections are listed and can be looked at, never edited here, and their tokens are not part of
any admin page: not as plain text, not encrypted. Connect and Disconnect are on the source's card.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from integrations.salesforce.models import (
    InquirySync,
    SalesforceConnection,
    SalesforceOrgSchema,
    SalesforcePerson,
    SalesforceSettings,
    StaffAction,
    SyncAttempt,
    ValidationRun,
    ValidationRunResult,
)


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


# --- Settings, sync state and the support console (issue 7) ----------------------------------
# Sync rows and the audit log are records of what happened: readable here, changed only through
# the card and the support console, which log what they do.


@admin.register(SalesforceSettings)
class SalesforceSettingsAdmin(admin.ModelAdmin):
    list_display = ["source", "enabled", "inherit_from_parent", "record_type", "updated_at"]
    list_filter = ["enabled", "inherit_from_parent", "record_type"]
    search_fields = ["source__name", "source__slug"]
    list_select_related = ["source"]
    autocomplete_fields = ["source"]


class SyncAttemptInline(admin.TabularInline):
    model = SyncAttempt
    extra = 0
    can_delete = False
    fields = [
        "started_at",
        "finished_at",
        "api_calls",
        "outcome",
        "error_code",
        "error_message",
        "error_fields",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(InquirySync)
class InquirySyncAdmin(admin.ModelAdmin):
    list_display = [
        "inquiry",
        "status",
        "sobject",
        "record_id",
        "attempt_count",
        "error_code",
        "updated_at",
    ]
    list_filter = ["status", "sobject"]
    search_fields = [
        "inquiry__external_id",
        "inquiry__source__slug",
        "inquiry__email",
        "record_id",
        "error_code",
    ]
    list_select_related = ["inquiry", "inquiry__source"]
    readonly_fields = [f.name for f in InquirySync._meta.fields]
    inlines = [SyncAttemptInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(SalesforcePerson)
class SalesforcePersonAdmin(admin.ModelAdmin):
    list_display = ["match_key", "org_id", "sobject", "record_id", "created_at"]
    search_fields = ["match_key", "org_id", "record_id"]
    list_filter = ["sobject"]


@admin.register(SalesforceOrgSchema)
class SalesforceOrgSchemaAdmin(admin.ModelAdmin):
    """The org's schema as the sync read it (describe); staff may mark it stale so the next
    sync reads it again (Validate Connection does that too)."""

    list_display = ["org_id", "connection", "fetched_at", "stale"]
    list_filter = ["stale"]
    search_fields = ["org_id"]
    readonly_fields = ["connection", "org_id", "data", "fetched_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class ValidationRunResultInline(admin.TabularInline):
    model = ValidationRunResult
    extra = 0
    can_delete = False
    fields = ["connection_id", "description", "ok", "message", "checked_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ValidationRun)
class ValidationRunAdmin(admin.ModelAdmin):
    list_display = ["pk", "started_at", "started_by", "total", "done", "failed", "finished_at"]
    readonly_fields = ["started_by", "started_at", "finished_at", "total", "done", "failed"]
    exclude = ["connection_ids"]
    inlines = [ValidationRunResultInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # started from the support console or by the daily schedule


@admin.register(StaffAction)
class StaffActionAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_name", "action", "target"]
    list_filter = ["action"]
    search_fields = ["actor_name", "target"]
    readonly_fields = [
        "created_at",
        "actor",
        "actor_name",
        "action",
        "target",
        "connection_id",
        "source_id",
        "detail",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # an audit log is only useful if nobody can edit it
