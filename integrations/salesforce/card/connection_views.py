"""Connect, the OAuth callback, Validate Connection and Disconnect.

Thin views: each loads the source the user may see (404 otherwise), checks what the source's
state allows, calls `oauth` / `validation`, and goes back to the Salesforce card with a message.
"""

from __future__ import annotations

import logging

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from autorespond.models import Source
from autorespond.selectors import source_get_for_user, sources_visible_to
from integrations.salesforce.oauth.flow import (
    REVOKE_IN_SALESFORCE_HELP,
    OAuthFlowError,
    connection_disconnect,
    oauth_complete,
    oauth_pop_flow,
    oauth_start,
    sources_sharing_connection,
)
from integrations.salesforce.oauth.hosts import (
    CHOICE_MY_DOMAIN,
    CHOICE_PRODUCTION,
    CHOICE_SANDBOX,
    InvalidLoginHost,
    login_url_for,
)
from integrations.salesforce.selectors import (
    effective_salesforce_settings,
    salesforce_connection_of,
)
from integrations.salesforce.sync.scheduling import sync_resume_waiting
from integrations.salesforce.validation import connection_validate

logger = logging.getLogger(__name__)


class ConnectForm(forms.Form):
    """Where to sign in to Salesforce. The card renders the same two fields."""

    environment = forms.ChoiceField(
        label="Salesforce login",
        choices=[
            (CHOICE_PRODUCTION, "Production (login.salesforce.com)"),
            (CHOICE_SANDBOX, "Sandbox (test.salesforce.com)"),
            (CHOICE_MY_DOMAIN, "My Domain"),
        ],
        initial=CHOICE_PRODUCTION,
        widget=forms.RadioSelect,
    )
    my_domain = forms.CharField(label="My Domain", required=False, max_length=255)

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        choice = cleaned.get("environment")
        if choice:
            try:
                cleaned["login"] = login_url_for(
                    choice=choice, my_domain=cleaned.get("my_domain", "")
                )
            except InvalidLoginHost as exc:
                field = "my_domain" if choice == CHOICE_MY_DOMAIN else "environment"
                self.add_error(field, str(exc))
        return cleaned


def _card(source: Source) -> HttpResponse:
    return redirect("salesforce:card", slug=source.slug)


def _inherit_blocks(request: HttpRequest, source: Source) -> bool:
    """A source that inherits uses its parent's connection; it cannot have its own meanwhile."""
    effective = effective_salesforce_settings(source=source)
    if not effective.inherited:
        return False
    messages.error(
        request,
        f"{source.name} inherits its Salesforce connection from {effective.owner.name}. Turn off "
        f"“Inherit from parent” to connect {source.name} to its own Salesforce, or manage the "
        f"connection on the card of {effective.owner.name}.",
    )
    return True


@login_required
@require_http_methods(["GET", "POST"])
def connect(request: HttpRequest, slug: str) -> HttpResponse:
    """Start the sign-in: send the user to Salesforce's login and consent page."""
    source = source_get_for_user(user=request.user, slug=slug)
    if _inherit_blocks(request, source):
        return _card(source)
    form = ConnectForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        authorize_url = oauth_start(
            session=request.session,
            source=source,
            user=request.user,  # type: ignore[arg-type]
            login=form.cleaned_data["login"],
            redirect_uri=request.build_absolute_uri(reverse("salesforce:callback")),
        )
        return redirect(authorize_url)
    return render(
        request,
        "salesforce/oauth/connect.html",
        {"source": source, "form": form},
        status=400 if form.is_bound else 200,
    )


@sensitive_variables()
@login_required
@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    """Where Salesforce sends the user back (the connected app's one callback URL)."""
    flow = oauth_pop_flow(session=request.session, state=request.GET.get("state", ""))
    if flow is None or flow.user_id != request.user.pk:
        logger.warning("salesforce callback with an unknown state (user=%s)", request.user.pk)
        return render(request, "salesforce/oauth/callback_error.html", status=400)
    source = sources_visible_to(user=request.user).filter(pk=flow.source_id).first()
    if source is None:
        raise Http404("No such source.")
    if "error" in request.GET:
        error = request.GET.get("error", "")
        description = request.GET.get("error_description") or "no reason given"
        messages.error(request, f"Salesforce was not connected: {description} ({error}).")
        return _card(source)
    code = request.GET.get("code", "")
    if not code:
        messages.error(request, "Salesforce was not connected: Salesforce sent no authorization.")
        return _card(source)
    if _inherit_blocks(request, source):
        return _card(source)
    try:
        connection = oauth_complete(flow=flow, code=code, source=source, user=request.user)  # type: ignore[arg-type]
    except OAuthFlowError as exc:
        messages.error(request, f"Salesforce was not connected: {exc.message}")
        return _card(source)
    # Syncs of this source (and of sources inheriting from it) that waited for a connection.
    resumed = sync_resume_waiting(connection=connection)
    logger.info("salesforce resumed %s waiting sync(s) source_id=%s", resumed, source.pk)
    who = connection.display_name or connection.user_id
    if connection.username:
        who += f" ({connection.username})"
    messages.success(request, f"Salesforce is connected to {source.name} as {who}.")
    result = connection_validate(connection=connection)
    if not result.ok:
        messages.warning(request, f"Validation failed: {result.message}")
    return _card(source)


@login_required
@require_POST
def validate(request: HttpRequest, slug: str) -> HttpResponse:
    """Validate Connection: check the connection that applies to this source."""
    source = source_get_for_user(user=request.user, slug=slug)
    connection = effective_salesforce_settings(source=source).connection
    if connection is None:
        messages.error(request, "Salesforce is not connected yet: click Connect first.")
        return _card(source)
    result = connection_validate(connection=connection)
    if result.ok:
        messages.success(request, f"Validation succeeded: {result.message}")
    else:
        messages.error(request, f"Validation failed: {result.message}")
    return _card(source)


@login_required
@require_http_methods(["GET", "POST"])
def disconnect(request: HttpRequest, slug: str) -> HttpResponse:
    """GET asks for confirmation; POST revokes the tokens at Salesforce and deletes them here."""
    source = source_get_for_user(user=request.user, slug=slug)
    connection = salesforce_connection_of(source=source)
    if connection is None:
        if not _inherit_blocks(request, source):
            messages.info(request, f"Salesforce is not connected to {source.name}.")
        return _card(source)
    if request.method == "GET":
        return render(
            request,
            "salesforce/oauth/disconnect.html",
            {
                "source": source,
                "connection": connection,
                "sharing": sources_sharing_connection(source=source),
                "revoke_help": REVOKE_IN_SALESFORCE_HELP,
            },
        )
    result = connection_disconnect(connection=connection)
    (messages.success if result.revoked else messages.warning)(request, result.message)
    return _card(source)
