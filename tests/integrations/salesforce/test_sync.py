"""The sync service against the emulator: gates, the records it writes, and their fields."""

from __future__ import annotations

from typing import Any

import pytest

from integrations.salesforce.models import SyncStatus
from tests.integrations.salesforce.sync_support import (  # noqa: F401 (fixtures)
    PERSON,
    connection,
    control,
    emulator,
    enable,
    org,
    send,
    sync_emulator_server,
)

pytestmark = pytest.mark.django_db


def test_new_inquiry_becomes_one_lead_in_two_api_calls(business, connection, control, org):  # type: ignore[no-untyped-def]
    enable(business)
    sync = send(business, **PERSON)

    assert sync.status == SyncStatus.CREATED
    (lead,) = control.records(org["org_id"], "Lead")
    assert sync.record_id == lead["Id"]
    assert sync.sobject == "Lead"
    assert lead["FirstName"] == "Ann"
    attempt = sync.attempts.get()
    assert attempt.api_calls == 2
    assert attempt.outcome == SyncStatus.CREATED
