"""The support console's pages (/support/salesforce/). Thin: check staff, call console, render.

Only staff (`is_staff`) see the console. Anyone else who is logged in gets a 404, as for a source
they may not see, so the console's existence is not advertised; anonymous users go to the login
page. Actions are POST forms that redirect back with a message (post/redirect/get); the one
piece of JavaScript polls the progress of Validate all, and without it a reload shows the same.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from integrations.salesforce.models import (
    InquirySync,
    SalesforceConnection,
    StaffActionKind,
    ValidationRun,
)
from integrations.salesforce.support import console, validation_runs

PAGE_SIZE = 50


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Logged in (else the login page) and staff (else 404)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapper


def _back(request: HttpRequest, default: str) -> HttpResponse:
    """Redirect to the page the form came from (a console page), or to `default`."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(default)


def _connection_url(connection_id: int) -> str:
    return reverse("salesforce:console_connection", args=[connection_id])


def run_progress(run: ValidationRun) -> dict[str, Any]:
    """What the page and the status endpoint say about a run."""
    return {
        "id": run.pk,
        "done": run.done,
        "total": run.total,
        "failed": run.failed,
        "finished": run.is_finished,
        "text": f"{run.done} of {run.total}",
        "status_url": reverse("salesforce:console_validate_all_status", args=[run.pk]),
    }


@staff_required
@require_GET
def console_home(request: HttpRequest) -> HttpResponse:
    """Every connection, broken ones first; filter by status, search by business/source/user."""
    status = request.GET.get("status", "")
    query = request.GET.get("q", "").strip()
    tree = console.SourceTree()
    connections = console.console_connections(status=status, query=query, tree=tree)
    page = Paginator(connections, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = console.console_connection_rows(connections=page.object_list, tree=tree)
    latest_run = validation_runs.validation_run_latest()
    return render(
        request,
        "salesforce/console/list.html",
        {
            "rows": rows,
            "page": page,
            "status": status,
            "query": query,
            "status_filters": console.STATUS_FILTERS,
            "run": latest_run,
            "progress": run_progress(latest_run) if latest_run else None,
            "run_failures": latest_run.results.filter(ok=False) if latest_run else [],
        },
    )


@staff_required
@require_GET
def console_connection(request: HttpRequest, pk: int) -> HttpResponse:
    """One connection: its details, the sources using it, its sync history and errors."""
    connection = get_object_or_404(SalesforceConnection.objects.select_related("source"), pk=pk)
    tree = console.SourceTree()
    [row] = console.console_connection_rows(connections=[connection], tree=tree)
    sync_filter = request.GET.get("syncs", "")
    syncs = console.console_connection_syncs(row=row, status=sync_filter)
    page = Paginator(syncs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "salesforce/console/connection.html",
        {
            "row": row,
            "connection": connection,
            "sources": [tree.sources[pk] for pk in row.source_ids],
            "page": page,
            "sync_filter": sync_filter,
            "actions": console.staff_actions(connection_id=connection.pk)[:20],
        },
    )


@staff_required
@require_POST
def console_validate(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(SalesforceConnection.objects.select_related("source"), pk=pk)
    result = console.console_connection_validate(connection=connection, actor=request.user)
    if result.ok:
        messages.success(request, f"Validated {connection.source.name}: {result.message}")
    else:
        messages.error(request, f"Validation of {connection.source.name} failed: {result.message}")
    return _back(request, _connection_url(connection.pk))


@staff_required
@require_POST
def console_validate_all(request: HttpRequest) -> HttpResponse:
    running = validation_runs.validation_run_in_progress()
    if running is not None:
        messages.info(
            request,
            f"Validate all is already running ({running.done} of {running.total}); "
            "its progress is below.",
        )
        return redirect(reverse("salesforce:console") + "#validate-all")
    run = validation_runs.validation_run_start(actor=request.user)
    what = "the 1 connection" if run.total == 1 else f"all {run.total} connections"
    messages.info(request, f"Validating {what} in the background; progress below.")
    return redirect(reverse("salesforce:console") + "#validate-all")


@staff_required
@require_GET
def console_validate_all_status(request: HttpRequest, run_pk: int) -> HttpResponse:
    """The progress of a run as JSON, for the page's poller."""
    run = get_object_or_404(ValidationRun, pk=run_pk)
    return JsonResponse(run_progress(run))


@staff_required
@require_POST
def console_retry(request: HttpRequest, sync_pk: int) -> HttpResponse:
    sync = get_object_or_404(
        InquirySync.objects.select_related("inquiry", "inquiry__source"), pk=sync_pk
    )
    label = f"Inquiry {sync.inquiry.external_id} of {sync.inquiry.source.name}"
    if console.console_sync_retry(sync=sync, actor=request.user):
        messages.success(request, f"{label} will be sent again.")
    else:
        messages.info(request, f"{label} is not failed, so there is nothing to retry.")
    return _back(request, reverse("salesforce:console"))


@staff_required
@require_POST
def console_retry_all(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(SalesforceConnection.objects.select_related("source"), pk=pk)
    count = console.console_connection_retry_failed(connection=connection, actor=request.user)
    if count:
        messages.success(request, f"{_count(count, 'failed sync')} will be sent again.")
    else:
        messages.info(request, "This connection has no failed syncs to retry.")
    return _back(request, _connection_url(connection.pk))


@staff_required
@require_http_methods(["GET", "POST"])
def console_disconnect(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: what disconnecting does, with a confirm button. POST: disconnect and log it."""
    connection = get_object_or_404(SalesforceConnection.objects.select_related("source"), pk=pk)
    if request.method == "GET":
        row = console.console_connection_row(connection=connection)
        return render(
            request, "salesforce/console/disconnect.html", {"row": row, "connection": connection}
        )
    result = console.console_connection_disconnect(connection=connection, actor=request.user)
    (messages.success if result.revoked else messages.warning)(request, result.message)
    return redirect("salesforce:console")


@staff_required
@require_GET
def console_audit(request: HttpRequest) -> HttpResponse:
    """The audit log of staff actions, newest first."""
    action = request.GET.get("action", "")
    actions = console.staff_actions()
    if action in StaffActionKind.values:
        actions = actions.filter(action=action)
    page = Paginator(actions, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "salesforce/console/audit.html",
        {"page": page, "action": action, "kinds": StaffActionKind.choices},
    )


def _count(number: int, noun: str) -> str:
    """ "1 failed sync", "3 failed syncs": English plurals of the console's nouns."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
