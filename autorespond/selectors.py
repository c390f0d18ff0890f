"""Reads of the core domain, with the permission rules in one place."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.http import Http404

from autorespond.models import Inquiry, Source


def source_descendant_ids(*, root_ids: list[int]) -> set[int]:
    """Ids of the given sources and every source below them (breadth-first, one query a level)."""
    found: set[int] = set(root_ids)
    frontier = list(root_ids)
    while frontier:
        frontier = [
            pk
            for pk in Source.objects.filter(parent_id__in=frontier).values_list("pk", flat=True)
            if pk not in found
        ]
        found.update(frontier)
    return found


def sources_visible_to(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Source]:
    """Staff see every source; an owner sees their businesses and everything below them."""
    if not user.is_authenticated:
        return Source.objects.none()
    if user.is_staff:
        return Source.objects.all()
    business_ids = list(user.business_memberships.values_list("business_id", flat=True))
    return Source.objects.filter(pk__in=source_descendant_ids(root_ids=business_ids))


def source_get_for_user(*, user: AbstractBaseUser | AnonymousUser, slug: str) -> Source:
    """The source with this slug, or 404 when it does not exist or the user may not see it.

    A 404 rather than a 403 so that an owner cannot learn which slugs other businesses use.
    """
    source = sources_visible_to(user=user).filter(slug=slug).select_related("parent").first()
    if source is None:
        raise Http404("No such source.")
    return source


def source_tree(*, root: Source) -> list[tuple[Source, int]]:
    """The source and its descendants in display order, each with its depth below the root."""
    rows: list[tuple[Source, int]] = []

    def walk(node: Source, depth: int) -> None:
        rows.append((node, depth))
        for child in node.children.order_by("name"):
            walk(child, depth + 1)

    walk(root, 0)
    return rows


def inquiries_recent(*, source: Source, limit: int = 20) -> QuerySet[Inquiry]:
    return source.inquiries.order_by("-updated_at", "-id")[:limit]
