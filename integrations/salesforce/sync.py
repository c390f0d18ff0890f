"""Sending inquiries to Salesforce.

`request_sync` records that an inquiry needs sending and enqueues the task once the transaction
commits. (The sync itself is built in issue 6.)
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from autorespond.models import Inquiry
from integrations.salesforce.models import InquirySync, SyncStatus


def request_sync(*, inquiry: Inquiry) -> InquirySync:
    """Mark the inquiry as due for a sync and enqueue it after commit (ids only)."""
    sync, _ = InquirySync.objects.get_or_create(inquiry=inquiry)
    InquirySync.objects.filter(pk=sync.pk).update(
        requested_version=F("requested_version") + 1,
        due_at=timezone.now(),
        status=SyncStatus.PENDING,
    )
    sync.refresh_from_db()

    def enqueue() -> None:
        from integrations.salesforce.tasks import sync_inquiry

        sync_inquiry.delay(inquiry.pk)

    transaction.on_commit(enqueue)
    return sync
