"""Views of the Salesforce integration. Thin: load, check permission, call a service, render."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from autorespond.selectors import inquiries_recent, source_get_for_user
from integrations.salesforce.selectors import effective_salesforce_settings


@login_required
def card(request: HttpRequest, slug: str) -> HttpResponse:
    """Messaging Settings → Integrations → Salesforce for one source (built out in issue 4)."""
    source = source_get_for_user(user=request.user, slug=slug)
    return render(
        request,
        "salesforce/card.html",
        {
            "source": source,
            "effective": effective_salesforce_settings(source=source),
            "inquiries": inquiries_recent(source=source),
        },
    )
