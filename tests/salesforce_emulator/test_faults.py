"""API usage limits and fault injection, per org.

Facts: ../shared/SALESFORCE.md section 2 (REQUEST_LIMIT_EXCEEDED 403, SERVER_UNAVAILABLE 503,
UNABLE_TO_LOCK_ROW, Sforce-Limit-Info).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
)

from salesforce_emulator import EmulatorControl, EmulatorServer

from .conftest import connect, salesforce

LEAD = {"LastName": "Doe", "Company": "Acme"}


def test_daily_limit_gives_request_limit_exceeded(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """REQUEST_LIMIT_EXCEEDED 403 "TotalRequests Limit exceeded." once the daily cap is used."""
    emulator_control.set_org_settings(emulator_org["org_id"], daily_api_limit=2)
    sf.limits()
    sf.limits()
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.limits()
    assert caught.value.content == [
        {
            "message": "TotalRequests Limit exceeded.",
            "errorCode": "REQUEST_LIMIT_EXCEEDED",
            "fields": [],
        }
    ]
    assert emulator_control.api_usage(emulator_org["org_id"]) == {
        "used": 2,
        "max": 2,
        "remaining": 0,
    }


def test_usage_is_per_org(
    sf_emulator: EmulatorServer,
    sf: Salesforce,
    emulator_control: EmulatorControl,
    emulator_org: dict[str, Any],
) -> None:
    """API usage is counted per org; the access token decides the org."""
    other = emulator_control.create_org("Other", auto_approve=True)
    sf.limits()
    # The newest auto-approving org answers the next login.
    other_sf = salesforce(sf_emulator, connect(sf_emulator, other))
    other_sf.limits()
    other_sf.limits()
    assert emulator_control.api_usage(emulator_org["org_id"])["used"] == 1
    assert emulator_control.api_usage(other["org_id"])["used"] == 2


def test_set_usage_near_the_limit(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """Sforce-Limit-Info reflects usage; simple-salesforce parses it into api_usage."""
    emulator_control.set_api_usage(emulator_org["org_id"], 14000)
    sf.query("SELECT Id FROM Lead")
    assert sf.api_usage["api-usage"].used == 14001
    assert sf.api_usage["api-usage"].total == 15000


def test_scripted_server_unavailable_then_success(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """SERVER_UNAVAILABLE 503 for the next N calls, then normal service."""
    emulator_control.add_fault(emulator_org["org_id"], "server_unavailable", count=1)
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.Lead.create(LEAD)
    assert caught.value.status == 503
    assert caught.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"
    assert sf.Lead.create(LEAD)["success"]
    assert len(emulator_control.records(emulator_org["org_id"], "Lead")) == 1


def test_unable_to_lock_row(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """UNABLE_TO_LOCK_ROW 400 "unable to obtain exclusive access to this record ..."."""
    emulator_control.add_fault(emulator_org["org_id"], "unable_to_lock_row", count=1, method="POST")
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create(LEAD)
    error = caught.value.content[0]
    assert error["errorCode"] == "UNABLE_TO_LOCK_ROW"
    assert error["message"].startswith("unable to obtain exclusive access to this record")


def test_dropped_connection(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """A dropped connection: the client gets no response at all."""
    emulator_control.add_fault(emulator_org["org_id"], "drop_connection", count=1)
    with pytest.raises(requests.ConnectionError):
        sf.Lead.create(LEAD)
    assert emulator_control.records(emulator_org["org_id"], "Lead") == []
    calls = emulator_control.calls(emulator_org["org_id"])
    assert calls[-1]["status"] == 0 and calls[-1]["fault"] == "drop_connection"


def test_drop_after_processing_keeps_the_record(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """The nasty case for idempotency: written in Salesforce, but the client saw a drop."""
    emulator_control.add_fault(emulator_org["org_id"], "drop_after_processing", count=1)
    with pytest.raises(requests.ConnectionError):
        sf.Lead.create(LEAD)
    assert len(emulator_control.records(emulator_org["org_id"], "Lead")) == 1


def test_latency_and_slow_response(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """Added latency per call, and a slow response that trips a client timeout."""
    emulator_control.add_fault(emulator_org["org_id"], "latency", latency_ms=200, count=1)
    started = time.monotonic()
    sf.limits()
    assert time.monotonic() - started >= 0.2
    emulator_control.add_fault(emulator_org["org_id"], "slow_response", latency_ms=1500, count=1)
    with pytest.raises(requests.Timeout):
        sf.restful("limits", timeout=0.3)


def test_probability_and_clear(
    sf: Salesforce, emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """Faults by probability (1.0 here: always) until cleared."""
    emulator_control.add_fault(emulator_org["org_id"], "server_unavailable", probability=1.0)
    for _ in range(2):
        with pytest.raises(SalesforceGeneralError):
            sf.limits()
    emulator_control.clear_faults(emulator_org["org_id"])
    assert sf.limits()


def test_faults_are_per_org(
    sf_emulator: EmulatorServer, sf: Salesforce, emulator_control: EmulatorControl
) -> None:
    """A fault on one org leaves another org alone."""
    other = emulator_control.create_org("Other")
    emulator_control.add_fault(other["org_id"], "server_unavailable")
    assert sf.limits()
