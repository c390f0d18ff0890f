"""Views of the Salesforce card. Thin: load, check permission, call a service, render.

The essential flows are plain HTML forms (no JavaScript): the settings form POSTs to the card
itself and redirects back on success (post/redirect/get); a rejected form re-renders with the
messages next to its fields and saves nothing.
"""

from __future__ import annotations

from collections.abc import Callable

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
    PreviewForm,
    SalesforceSettingsForm,
)
from integrations.salesforce.card.plain_errors import explain_error
from integrations.salesforce.card.preview import Preview, preview_inquiry
from integrations.salesforce.card.services import (
    NOT_CONNECTED_RULES,
    OrgAssignmentRules,
    org_assignment_rules,
    salesforce_settings_update,
)
from integrations.salesforce.card.status import FAILED_STATUSES, card_status
from integrations.salesforce.models import InquirySync, SalesforceSettings
from integrations.salesforce.selectors import (
    effective_salesforce_settings,
    salesforce_connection_of,
    salesforce_settings_of,
)
from integrations.salesforce.sync.scheduling import sync_retry


def _card_url(source: Source) -> str:
    return reverse("salesforce:card", args=[source.slug])


def _rules_for(
    source: Source, current: SalesforceSettings
) -> tuple[OrgAssignmentRules, Callable[[], OrgAssignmentRules] | None]:
    """The org's assignment rules for the form (cached), and how to read them afresh. A source
    that inherits edits no rule, so Salesforce is not asked."""
    if source.parent_id and current.inherit_from_parent:
        return OrgAssignmentRules.unread(NOT_CONNECTED_RULES), None
    connection = salesforce_connection_of(source=source)

    def reload() -> OrgAssignmentRules:
        return org_assignment_rules(connection=connection, fresh=True)

    return org_assignment_rules(connection=connection), reload


@login_required
@require_http_methods(["GET", "POST"])
def card(request: HttpRequest, slug: str) -> HttpResponse:
    """Messaging Settings → Integrations → Salesforce for one source."""
    source = source_get_for_user(user=request.user, slug=slug)
    current = salesforce_settings_of(source=source)
    rules, reload_rules = _rules_for(source, current)
    if request.method == "POST":
        form = SalesforceSettingsForm(
            request.POST, source=source, current=current, rules=rules, reload_rules=reload_rules
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
                        "You edited the Advanced API headers, so that text decided the automation "
                        "switches; the switch changes made in the same save were not applied.",
                    )
                return HttpResponseRedirect(_card_url(source))
    else:
        form = SalesforceSettingsForm(source=source, current=current, rules=rules)
    return render(
        request,
        "salesforce/card.html",
        _card_context(request, source=source, form=form, preview_form=PreviewForm(source=source)),
        status=400 if form.is_bound else 200,
    )


@login_required
@require_POST
def preview(request: HttpRequest, slug: str) -> HttpResponse:
    """ "Test with a sample inquiry": the card, with what the sync would do for a typed sample or
    one of the source's recent inquiries. POST (the sample holds a person's details, which do
    not belong in a URL) but it writes nothing, here or in Salesforce."""
    source = source_get_for_user(user=request.user, slug=slug)
    current = salesforce_settings_of(source=source)
    rules, _reload = _rules_for(source, current)
    form = SalesforceSettingsForm(source=source, current=current, rules=rules)
    preview_form = PreviewForm(request.POST, source=source)
    result = None
    if preview_form.is_valid():
        inquiry, sync = preview_form.inquiry_and_sync()
        result = preview_inquiry(source=source, inquiry=inquiry, sync=sync)
    return render(
        request,
        "salesforce/card.html",
        _card_context(request, source=source, form=form, preview_form=preview_form, preview=result),
        status=200 if result is not None else 400,
    )


def _card_context(
    request: HttpRequest,
    *,
    source: Source,
    form: SalesforceSettingsForm,
    preview_form: PreviewForm,
    preview: Preview | None = None,
) -> dict:
    effective = effective_salesforce_settings(source=source)
    owner_visible = (
        not effective.inherited
        or sources_visible_to(user=request.user).filter(pk=effective.owner.pk).exists()
    )
    automation = card_data.automation_of(effective.settings.header_options)
    show = request.GET.get("show", "")
    show = show if show in (card_data.SHOW_FAILED, card_data.SHOW_WAITING) else card_data.SHOW_ALL
    rows = card_data.inquiry_rows(
        source=source,
        connection=effective.connection,
        rule_id_chosen=automation.assignment not in (None, "default"),
        show=show,
    )
    return {
        "source": source,
        "form": form,
        "effective": effective,
        "owner_visible": owner_visible,
        "owner_automation": automation,
        "status": card_status(effective=effective, can_open_owner=owner_visible),
        "connection": effective.connection,
        "connection_state": card_data.connection_state(effective.connection),
        "connection_plain": (
            explain_error("invalid_grant")
            if card_data.connection_state(effective.connection) == card_data.NEEDS_RECONNECT
            else None
        ),
        "all_hints": card_data.ALL_HINTS,
        "rows": rows,
        "show": show,
        "explanations": EXPLANATIONS,
        "record_type_help": RECORD_TYPE_HELP,
        "preview_form": preview_form,
        "preview": preview,
    }


@login_required
@require_POST
def retry(request: HttpRequest, slug: str, inquiry_pk: int) -> HttpResponse:
    """Send a failed inquiry again: the sync row becomes due now and the task is enqueued.
    Only an inquiry of a source the user may see, and only one that failed."""
    source = source_get_for_user(user=request.user, slug=slug)
    sync = get_object_or_404(
        InquirySync.objects.select_related("inquiry"),
        inquiry__pk=inquiry_pk,
        inquiry__source=source,
    )
    if sync.status not in FAILED_STATUSES:
        messages.info(request, "Only a failed inquiry can be retried; this one is not failed.")
        return redirect(f"{_card_url(source)}#inquiries")
    sync_retry(sync=sync)
    messages.success(request, f"Inquiry {sync.inquiry.external_id} will be sent again.")
    return redirect(f"{_card_url(source)}#inquiry-{sync.inquiry_id}")
