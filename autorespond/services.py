"""Writes of the core domain: sources, inquiries and API keys.

Views, the API and commands call these; nothing here knows about HTTP.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from autorespond.hooks import inquiry_changed
from autorespond.models import ApiKey, Inquiry, Source

INQUIRY_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "email",
    "phone",
    "street",
    "city",
    "state",
    "postal_code",
    "job_description",
    "country",
)


def source_upsert(*, slug: str, name: str, parent_slug: str | None = None) -> tuple[Source, bool]:
    """Create or update a source; returns (source, created).

    Raises ValidationError (with a dict of field errors) for an unknown parent or a parent that
    would make a cycle: a source can never be its own ancestor.
    """
    with transaction.atomic():
        parent = None
        if parent_slug:
            parent = Source.objects.select_for_update().filter(slug=parent_slug).first()
            if parent is None:
                raise ValidationError({"parent": f"Unknown source '{parent_slug}'."})
        source = Source.objects.select_for_update().filter(slug=slug).first()
        created = source is None
        if source is None:
            source = Source(slug=slug)
        if (
            parent is not None
            and not created
            and (parent.pk == source.pk or source in parent.ancestors())
        ):
            raise ValidationError(
                {
                    "parent": f"'{parent_slug}' is {slug} or below it: a source cannot be its own "
                    "ancestor."
                }
            )
        source.name = name
        source.parent = parent
        source.full_clean()
        source.save()
    return source, created


@dataclass(frozen=True)
class InquiryUpsertResult:
    inquiry: Inquiry
    created: bool
    changed: bool


def inquiry_upsert(
    *, source: Source, external_id: str, data: dict[str, Any]
) -> InquiryUpsertResult:
    """Create the inquiry, or update the fields present in `data` and keep the others.

    Every create and every real change is told to the integrations (`hooks.inquiry_changed`),
    inside the transaction; the Salesforce one then requests a sync after commit.
    """
    unknown = set(data) - set(INQUIRY_FIELDS)
    if unknown:
        raise ValueError(f"Unknown inquiry fields: {sorted(unknown)}")
    with transaction.atomic():
        inquiry = (
            Inquiry.objects.select_for_update()
            .filter(source=source, external_id=external_id)
            .first()
        )
        created = inquiry is None
        if inquiry is None:
            inquiry = Inquiry(source=source, external_id=external_id)
        changed = created
        for field, value in data.items():
            value = "" if value is None else value
            if getattr(inquiry, field) != value:
                setattr(inquiry, field, value)
                changed = True
        if changed:
            inquiry.full_clean(validate_unique=False)
            inquiry.save()
            inquiry_changed(inquiry)
    return InquiryUpsertResult(inquiry=inquiry, created=created, changed=changed)


def _hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def api_key_create(*, name: str) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the raw key, which is shown once and never stored."""
    raw_key = "ar_" + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(name=name, prefix=raw_key[:10], key_hash=_hash_key(raw_key))
    return key, raw_key


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key matching `raw_key`, or None (looked up by its hash)."""
    key = ApiKey.objects.filter(key_hash=_hash_key(raw_key), revoked_at__isnull=True).first()
    if key is not None:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return key


def api_key_revoke(*, key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
