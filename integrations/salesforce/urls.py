"""URLs of the Salesforce integration: the card, OAuth and the support console."""

from django.urls import path

from integrations.salesforce import views

app_name = "salesforce"

urlpatterns = [
    path("sources/<slug:slug>/integrations/salesforce/", views.card, name="card"),
    path(
        "sources/<slug:slug>/integrations/salesforce/inquiries/<int:inquiry_pk>/retry/",
        views.retry,
        name="retry",
    ),
]
