"""A connection's state changes: the one place a connection turns invalid, or valid again.

Whoever notices that Salesforce no longer accepts a connection (a token refresh refused, a
validation, a sync) calls `connection_mark_needs_reconnect`. It changes the status under the
row's lock, so when several workers notice at the same moment exactly one of them sees the
transition from connected to needs reconnect, and only that one emails the business's owners:
one email per broken connection, not one per failed inquiry. The card shows the same state and
reason to the owner.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from integrations.salesforce.models import ConnectionStatus, SalesforceConnection

logger = logging.getLogger(__name__)

EMAIL_SUBJECT_TEMPLATE = "email/salesforce_connection_broken_subject.txt"
EMAIL_TEXT_TEMPLATE = "email/salesforce_connection_broken.txt"
EMAIL_HTML_TEMPLATE = "email/salesforce_connection_broken.html"


def connection_mark_needs_reconnect(*, connection: SalesforceConnection, reason: str) -> bool:
    """Mark the connection unusable until the owner reconnects; True if it was connected before.

    On that transition the business's owners get one email (sent once the change commits). A
    connection that already needs reconnecting keeps its status and gets the newer reason, and
    nobody is emailed again. `connection` is updated in place; a deleted connection is ignored.
    """
    with transaction.atomic():
        row = SalesforceConnection.objects.select_for_update().filter(pk=connection.pk).first()
        if row is None:
            return False
        transitioned = row.status == ConnectionStatus.CONNECTED
        row.status = ConnectionStatus.NEEDS_RECONNECT
        row.status_reason = reason
        row.save(update_fields=["status", "status_reason"])
        if transitioned:
            connection_id = row.pk
            transaction.on_commit(lambda: connection_broken_email_send(connection_id=connection_id))
    connection.status = ConnectionStatus.NEEDS_RECONNECT
    connection.status_reason = reason
    if transitioned:
        logger.warning(
            "salesforce connection needs reconnect source_id=%s org=%s: %s",
            row.source_id,
            row.org_id,
            reason,
        )
    return transitioned


def connection_mark_valid(*, connection: SalesforceConnection) -> bool:
    """Mark the connection usable again (a reconnect stored fresh tokens); True if it changed.

    No email: the owner is the one who just reconnected.
    """
    with transaction.atomic():
        row = SalesforceConnection.objects.select_for_update().filter(pk=connection.pk).first()
        if row is None:
            return False
        transitioned = row.status != ConnectionStatus.CONNECTED
        if transitioned:
            row.status = ConnectionStatus.CONNECTED
            row.status_reason = ""
            row.save(update_fields=["status", "status_reason"])
    connection.status = ConnectionStatus.CONNECTED
    connection.status_reason = ""
    return transitioned


def connection_owner_emails(*, connection: SalesforceConnection) -> list[str]:
    """The addresses of the active users who own the business the connection belongs to."""
    business = connection.source.business()
    users = get_user_model().objects.filter(business_memberships__business=business, is_active=True)
    return sorted({email for email in users.values_list("email", flat=True) if email})


def card_link(*, connection: SalesforceConnection) -> str:
    """The card's address; absolute when SITE_URL says where the service is served."""
    path = reverse("salesforce:card", args=[connection.source.slug])
    base = getattr(settings, "SITE_URL", "").rstrip("/")
    return f"{base}{path}" if base else path


def connection_broken_email_send(*, connection_id: int) -> int:
    """Email the owners that the connection needs reconnecting; returns how many were emailed.

    Runs after the status change commits. Sending may fail (a mail server down); that is logged
    and not raised, because the change itself stands and the card shows it either way.
    """
    connection = (
        SalesforceConnection.objects.select_related("source").filter(pk=connection_id).first()
    )
    if connection is None or connection.status != ConnectionStatus.NEEDS_RECONNECT:
        return 0  # reconnected or disconnected before the email went out: nothing to say
    recipients = connection_owner_emails(connection=connection)
    if not recipients:
        logger.warning(
            "salesforce connection needs reconnect but its business has no owner with an email "
            "source_id=%s",
            connection.source_id,
        )
        return 0
    context = {
        "connection": connection,
        "source": connection.source,
        "business": connection.source.business(),
        "reason": connection.status_reason,
        "card_url": card_link(connection=connection),
    }
    subject = " ".join(render_to_string(EMAIL_SUBJECT_TEMPLATE, context).split())
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(EMAIL_TEXT_TEMPLATE, context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
    )
    message.attach_alternative(render_to_string(EMAIL_HTML_TEMPLATE, context), "text/html")
    try:
        message.send()
    except Exception:  # any mail failure: the card still shows the state
        logger.exception(
            "salesforce: could not email the owners of source_id=%s", connection.source_id
        )
        return 0
    logger.info(
        "salesforce connection broken email sent source_id=%s recipients=%s",
        connection.source_id,
        len(recipients),
    )
    return len(recipients)
