"""URLs of the Salesforce integration: the card, OAuth and the support console."""

from django.urls import path

from integrations.salesforce import views, views_oauth

app_name = "salesforce"

urlpatterns = [
    path("sources/<slug:slug>/integrations/salesforce/", views.card, name="card"),
    path(
        "sources/<slug:slug>/integrations/salesforce/inquiries/<int:inquiry_pk>/retry/",
        views.retry,
        name="retry",
    ),
    path(
        "sources/<slug:slug>/integrations/salesforce/connect/",
        views_oauth.connect,
        name="connect",
    ),
    path("integrations/salesforce/callback/", views_oauth.callback, name="callback"),
    path(
        "sources/<slug:slug>/integrations/salesforce/validate/",
        views_oauth.validate,
        name="validate",
    ),
    path(
        "sources/<slug:slug>/integrations/salesforce/disconnect/",
        views_oauth.disconnect,
        name="disconnect",
    ),
]
