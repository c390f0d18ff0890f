"""The org's schema: read from the emulator's describe in one call, stored once per connection
(also when several syncs read it at once), and interpreted (picklists, validFor, required)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import close_old_connections

from integrations.salesforce.models import SalesforceConnection, SalesforceOrgSchema
from integrations.salesforce.oauth.tokens import salesforce_client
from integrations.salesforce.sync.org_schema import (
    OrgSchema,
    PicklistValue,
    org_schema_for,
    org_schema_mark_stale,
    org_schema_stored,
)
from tests.integrations.salesforce.sync_support import connect_source


def test_valid_for_reads_describes_bit_set_most_significant_bit_first() -> None:
    # "oAAA" = 0xA0 0x00 0x00: valid for controlling values 0 and 2.
    entry = PicklistValue("CA", "California", valid_for="oAAA")
    assert [entry.valid_for_index(i) for i in range(4)] == [True, False, True, False]
    assert PicklistValue("X", "X").valid_for_index(7)  # not dependent: valid everywhere


def test_the_assumed_schema_is_a_new_orgs_and_survives_storing() -> None:
    schema = OrgSchema.assumed()
    lead_source = schema.field("Lead", "LeadSource")
    assert lead_source is not None and lead_source.picklist_value("web") == "Web"
    assert schema.field("Lead", "LastName").required  # type: ignore[union-attr]
    assert not schema.state_country_picklists
    again = OrgSchema.from_json(schema.to_json(), None)
    assert again.objects == schema.objects


@pytest.mark.django_db
def test_the_schema_is_read_in_one_call_and_stored_then_reused(emulator, control, org, business):  # type: ignore[no-untyped-def]
    control.set_org_settings(
        org["org_id"],
        state_country_picklists=True,
        restricted_picklists=["Lead.LeadSource"],
        picklist_values={"Lead.LeadSource": ["Web", "Referral"]},
    )
    connection = connect_source(emulator, org, business)  # reads and stores it
    calls = len(control.calls(org["org_id"]))

    schema = org_schema_for(client=salesforce_client(connection))

    assert len(control.calls(org["org_id"])) == calls  # stored: no call
    assert schema.state_country_picklists
    lead_source = schema.field("Lead", "LeadSource")
    assert lead_source is not None and lead_source.restricted
    assert [p.value for p in lead_source.picklist] == ["Web", "Referral"]
    state = schema.state("Lead", "CountryCode", "StateCode", "US", "california")
    assert state is not None and state.value == "CA"
    assert schema.state("Lead", "CountryCode", "StateCode", "CA", "California") is None

    org_schema_mark_stale(connection=connection)
    assert org_schema_stored(connection=connection) is None
    org_schema_for(client=salesforce_client(connection))
    assert len(control.calls(org["org_id"])) == calls + 1  # one Composite for three describes


@pytest.mark.django_db(transaction=True)
def test_simultaneous_first_reads_store_one_schema(emulator, control, org, business):  # type: ignore[no-untyped-def]
    connection = connect_source(emulator, org, business)
    SalesforceOrgSchema.objects.all().delete()
    barrier = threading.Barrier(4)
    errors: list[Any] = []

    def read() -> None:
        try:
            barrier.wait()
            row = SalesforceConnection.objects.get(pk=connection.pk)
            org_schema_for(client=salesforce_client(row))
        except Exception as exc:
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert SalesforceOrgSchema.objects.filter(connection=connection).count() == 1
    assert org_schema_stored(connection=connection) is not None
