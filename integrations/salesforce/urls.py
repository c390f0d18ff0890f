"""URLs of the Salesforce integration: the card, OAuth and the support console."""

from django.urls import path

from integrations.salesforce.card import connection_views, views
from integrations.salesforce.support import views as views_console

app_name = "salesforce"

urlpatterns = [
    path("sources/<slug:slug>/integrations/salesforce/", views.card, name="card"),
    path(
        "sources/<slug:slug>/integrations/salesforce/inquiries/<int:inquiry_pk>/retry/",
        views.retry,
        name="retry",
    ),
    path(
        "sources/<slug:slug>/integrations/salesforce/preview/",
        views.preview,
        name="preview",
    ),
    path(
        "sources/<slug:slug>/integrations/salesforce/connect/",
        connection_views.connect,
        name="connect",
    ),
    path("integrations/salesforce/callback/", connection_views.callback, name="callback"),
    path(
        "sources/<slug:slug>/integrations/salesforce/validate/",
        connection_views.validate,
        name="validate",
    ),
    path(
        "sources/<slug:slug>/integrations/salesforce/disconnect/",
        connection_views.disconnect,
        name="disconnect",
    ),
]

# The support console (staff only; issue 7).
urlpatterns += [
    path("support/salesforce/", views_console.console_home, name="console"),
    path(
        "support/salesforce/connections/<int:pk>/",
        views_console.console_connection,
        name="console_connection",
    ),
    path(
        "support/salesforce/connections/<int:pk>/validate/",
        views_console.console_validate,
        name="console_validate",
    ),
    path(
        "support/salesforce/connections/<int:pk>/retry-failed/",
        views_console.console_retry_all,
        name="console_retry_all",
    ),
    path(
        "support/salesforce/connections/<int:pk>/disconnect/",
        views_console.console_disconnect,
        name="console_disconnect",
    ),
    path(
        "support/salesforce/syncs/<int:sync_pk>/retry/",
        views_console.console_retry,
        name="console_retry",
    ),
    path(
        "support/salesforce/validate-all/",
        views_console.console_validate_all,
        name="console_validate_all",
    ),
    path(
        "support/salesforce/validate-all/<int:run_pk>/",
        views_console.console_validate_all_status,
        name="console_validate_all_status",
    ),
    path("support/salesforce/audit/", views_console.console_audit, name="console_audit"),
]
