"""Pages of the core domain."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from autorespond.hooks import source_statuses
from autorespond.selectors import source_tree, sources_visible_to


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The businesses the user may see, each with its locations below it, and each source with
    its integrations' status (a pill linking to the integration's card)."""
    visible = sources_visible_to(user=request.user)
    visible_ids = set(visible.values_list("pk", flat=True))
    roots = [s for s in visible.select_related("parent") if s.parent_id not in visible_ids]
    trees = [
        [(source, depth, source_statuses(source)) for source, depth in source_tree(root=root)]
        for root in sorted(roots, key=lambda s: s.name)
    ]
    return render(request, "home.html", {"trees": trees})
