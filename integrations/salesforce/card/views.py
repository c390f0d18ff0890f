"""Views of the Salesforce card. Thin: load, check permission, call a service, render.

The essential flows are plain HTML forms (no JavaScript): the settings form POSTs to the card
itself and redirects back on success (post/redirect/get); a rejected form re-renders with the
messages next to its fields and saves nothing.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from autorespond.models import Source
from autorespond.selectors import source_get_for_user, sources_visible_to
from integrations.salesforce.card import presentation as card_data
from integrations.salesforce.card.forms import (
    EXPLANATIONS,
    RECORD_TYPE_HELP,
    SalesforceSettingsForm,
)
from integrations.salesforce.card.picklists import lead_picklist_choices
from integrations.salesforce.card.services import salesforce_settings_update
from integrations.salesforce.models import PERSON_RETRY_STATUSES, InquirySync
from integrations.salesforce.selectors import (
    effective_salesforce_settings,
    salesforce_settings_of,
)
from integrations.salesforce.sync.scheduling import sync_retry


def _card_url(source: Source) -> str:
    return reverse("salesforce:card", args=[source.slug])


@login_required
@require_http_methods(["GET", "POST"])
def card(request: HttpRequest, slug: str) -> HttpResponse:
    """Messaging Settings → Integrations → Salesforce for one source."""
    source = source_get_for_user(user=request.user, slug=slug)
    current = salesforce_settings_of(source=source)
    picklists = lead_picklist_choices(
        connection=effective_salesforce_settings(source=source).connection, current=current
    )
    if request.method == "POST":
        form = SalesforceSettingsForm(
            request.POST, source=source, current=current, picklists=picklists
        )
        if form.is_valid():
            try:
                salesforce_settings_update(
                    source=source, data=form.settings_data(), user=request.user
                )
            except ValidationError as error:
                for field, problems in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, problems)
            else:
                messages.success(request, "Salesforce settings saved.")
                if form.switches_overridden:
                    messages.warning(
                        request,
                        "You edited Advanced: API headers, so that text decided the automation "
                        "switches; the switch changes made in the same save were not applied.",
                    )
                return HttpResponseRedirect(_card_url(source))
    else:
        form = SalesforceSettingsForm(source=source, current=current, picklists=picklists)
    return render(
        request,
        "salesforce/card.html",
        _card_context(request, source=source, form=form),
        status=400 if form.is_bound else 200,
    )


def _card_context(request: HttpRequest, *, source: Source, form: SalesforceSettingsForm) -> dict:
    effective = effective_salesforce_settings(source=source)
    rows = card_data.inquiry_rows(source=source, connection=effective.connection)
    syncs = [row.sync for row in rows if row.sync is not None]
    owner_visible = (
        not effective.inherited
        or sources_visible_to(user=request.user).filter(pk=effective.owner.pk).exists()
    )
    return {
        "source": source,
        "form": form,
        "effective": effective,
        "owner_visible": owner_visible,
        "owner_automation": card_data.automation_of(effective.settings.header_options),
        "connection": effective.connection,
        "connection_state": card_data.connection_state(effective.connection),
        "hints": card_data.hints_that_apply(effective=effective, syncs=syncs),
        "all_hints": card_data.ALL_HINTS,
        "rows": rows,
        "explanations": EXPLANATIONS,
        "record_type_help": RECORD_TYPE_HELP,
    }


@login_required
@require_POST
def retry(request: HttpRequest, slug: str, inquiry_pk: int) -> HttpResponse:
    """Send a failed inquiry again: the sync row becomes due now and the task is enqueued."""
    source = source_get_for_user(user=request.user, slug=slug)
    sync = get_object_or_404(
        InquirySync.objects.select_related("inquiry"),
        inquiry__pk=inquiry_pk,
        inquiry__source=source,
    )
    if sync.status not in PERSON_RETRY_STATUSES:
        messages.info(request, "Only a failed inquiry can be retried; this one is not failed.")
        return redirect("salesforce:card", slug=source.slug)
    sync_retry(sync=sync)
    messages.success(request, f"Inquiry {sync.inquiry.external_id} will be sent again.")
    return redirect("salesforce:card", slug=source.slug)
