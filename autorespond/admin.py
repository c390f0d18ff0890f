"""Admin for the core domain. API keys are shown by name and prefix only, and can be revoked."""

from django.contrib import admin, messages

from autorespond.models import ApiKey, BusinessMembership, Inquiry, Source
from autorespond.services import api_key_revoke


class MembershipInline(admin.TabularInline):
    model = BusinessMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "parent", "phone_region"]
    search_fields = ["name", "slug"]
    list_filter = ["parent"]
    inlines = [MembershipInline]


@admin.register(Inquiry)
class InquiryAdmin(admin.ModelAdmin):
    list_display = [
        "external_id",
        "source",
        "first_name",
        "last_name",
        "email",
        "phone",
        "updated_at",
    ]
    search_fields = ["external_id", "email", "phone", "last_name", "source__slug"]
    list_select_related = ["source"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    fields = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False  # keys are made with `manage.py create_api_key`, which shows the key once

    @admin.action(description="Revoke selected API keys")
    def revoke(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        for key in queryset:
            api_key_revoke(key=key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).", messages.SUCCESS)
