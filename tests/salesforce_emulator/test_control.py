"""The control API (EmulatorControl), the HTML page and the command line.

These are the emulator's own tools, not Salesforce facts; the call log and seeded records are
what other tests in other processes rely on.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from salesforce_emulator import EmulatorControl, EmulatorControlError, EmulatorServer

ROOT = Path(__file__).resolve().parents[2]


def test_create_org_returns_users_and_connected_app(emulator_control: EmulatorControl) -> None:
    """Org ids use key prefix 00D, users 005; the app accepts the service's callback URL."""
    org = emulator_control.create_org(
        "Acme",
        users=[{"username": "u@acme.example.com", "first_name": "U", "last_name": "Ser"}],
        client_id="my-id",
        client_secret="my-secret",
    )
    assert org["org_id"].startswith("00D") and len(org["org_id"]) == 18
    assert org["users"][0]["id"].startswith("005")
    assert (org["client_id"], org["client_secret"]) == ("my-id", "my-secret")
    assert "http://127.0.0.1:8000/integrations/salesforce/callback/" in org["callback_urls"]
    assert emulator_control.org(org["org_id"])["name"] == "Acme"


def test_insert_record_is_not_an_api_call(
    emulator_control: EmulatorControl, emulator_org: dict[str, Any]
) -> None:
    """Seeding bypasses the API: no usage, no call log; a converted seed has its Contact."""
    org_id = emulator_org["org_id"]
    lead = emulator_control.insert_record(
        org_id, "Lead", {"LastName": "Doe", "Company": "Acme", "Email": "d@x.com"}, converted=True
    )
    record = emulator_control.record(org_id, "Lead", lead)
    assert record["IsConverted"] is True
    contact = emulator_control.record(org_id, "Contact", record["ConvertedContactId"])
    assert contact["Email"] == "d@x.com"
    assert emulator_control.api_usage(org_id)["used"] == 0
    assert emulator_control.calls(org_id) == []


def test_call_log_keeps_headers_that_matter_and_never_the_token(
    sf: Salesforce,
    emulator_control: EmulatorControl,
    emulator_org: dict[str, Any],
    emulator_token: dict[str, Any],
) -> None:
    """The call log: method, path, Sforce-* headers, status; Authorization is redacted."""
    sf.Lead.create({"LastName": "Doe", "Company": "Acme"}, headers={"Sforce-Auto-Assign": "FALSE"})
    # The token request that connected is in the log too (api "oauth"); the create is the one
    # REST call.
    (call,) = [c for c in emulator_control.calls(emulator_org["org_id"]) if c["api"] == "rest"]
    assert call["method"] == "POST" and call["path"] == "/services/data/v59.0/sobjects/Lead/"
    assert call["status"] == 201 and call["api"] == "rest"
    assert call["headers"]["Sforce-Auto-Assign"] == "FALSE"
    assert call["headers"]["Authorization"] == "Bearer <redacted>"
    assert emulator_token["access_token"] not in str(call)


def test_control_api_errors(emulator_control: EmulatorControl) -> None:
    with pytest.raises(EmulatorControlError):
        emulator_control.org("00D000000000000AAA")
    org = emulator_control.create_org("Acme")
    with pytest.raises(EmulatorControlError):
        emulator_control.add_fault(org["org_id"], "meteor_strike")


def test_ui_page_shows_records_and_emails(
    sf_emulator: EmulatorServer,
    sf: Salesforce,
    emulator_control: EmulatorControl,
    emulator_org: dict[str, Any],
) -> None:
    """The demo page lists each org's records and sent emails."""
    sf.Lead.create({"LastName": "Visible", "Company": "Shown Inc", "Email": "v@x.com"})
    page = requests.get(f"{sf_emulator.login_url}/_emulator/ui", timeout=10)
    assert page.status_code == 200
    assert "Shown Inc" in page.text and "Emails sent" in page.text
    assert emulator_org["name"] in page.text


def test_control_api_on_the_instance_host(sf_emulator: EmulatorServer) -> None:
    """The control API is served on all three hosts (https one with the CA)."""
    control = EmulatorControl(sf_emulator.instance_url, verify=str(sf_emulator.ca_path))
    control.session.trust_env = False
    assert control.summary()["instance_url"] == sf_emulator.instance_url
    assert EmulatorControl(sf_emulator.sandbox_login_url).summary()["orgs"] == []


def test_command_line_runs_the_demo(tmp_path: Path) -> None:
    """python -m salesforce_emulator --seed demo prints its URLs and serves the demo app."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "salesforce_emulator",
            "--login-port",
            "0",
            "--sandbox-port",
            "0",
            "--instance-port",
            "0",
            "--certs-dir",
            str(tmp_path),
            "--seed",
            "demo",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = process.stdout.readline()  # type: ignore[union-attr]
            lines.append(line)
            if "Ctrl-C" in line or not line:
                break
        output = "".join(lines)
        assert "demo-client-id" in output, output
        login = re.search(r"login \(production\): (\S+)", output).group(1)
        summary = EmulatorControl(login).summary()
        (org,) = summary["orgs"]
        assert org["name"] == "Demo Plumbing Co"
        assert org["queues"] and org["assignment_rules"] and org["auto_response_rules"]
        (app,) = summary["connected_apps"]
        assert app["client_id"] == "demo-client-id"
        assert "http://127.0.0.1:8000/integrations/salesforce/callback/" in app["callback_urls"]
        assert (tmp_path / "emulator-ca.pem").exists()
    finally:
        process.terminate()
        process.wait(timeout=10)
