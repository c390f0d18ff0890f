"""TLS on the instance host: simple-salesforce always calls https:// (SALESFORCE.md section 5).

The login hosts stay plain http so a browser opens the consent page without a warning.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import requests

from salesforce_emulator import EmulatorServer


def test_instance_host_is_https_trusted_through_the_ca(sf_emulator: EmulatorServer) -> None:
    assert sf_emulator.instance_url.startswith("https://127.0.0.1:")
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sf_emulator.ca_path)
    assert session.get(f"{sf_emulator.instance_url}/services/data/").status_code == 200
    # Also valid for "localhost".
    port = sf_emulator.instance_url.rsplit(":", 1)[1]
    assert session.get(f"https://localhost:{port}/services/data/").status_code == 200


def test_untrusted_client_is_refused(sf_emulator: EmulatorServer) -> None:
    session = requests.Session()
    session.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        session.get(f"{sf_emulator.instance_url}/services/data/", verify=True)


def test_login_hosts_are_plain_http(sf_emulator: EmulatorServer) -> None:
    assert sf_emulator.login_url.startswith("http://127.0.0.1:")
    assert sf_emulator.sandbox_login_url.startswith("http://127.0.0.1:")


def test_bundle_holds_public_roots_and_the_emulator_ca(sf_emulator: EmulatorServer) -> None:
    """ca_bundle_path suits REQUESTS_CA_BUNDLE in a process that also calls real hosts."""
    bundle = sf_emulator.ca_bundle_path.read_text()
    assert sf_emulator.ca_path.read_text().strip() in bundle
    assert bundle.count("BEGIN CERTIFICATE") > 10


def test_certificates_are_reused_across_restarts(tmp_path: Path) -> None:
    """A CA trusted once (browser, service) keeps working after a restart with the same dir."""
    with EmulatorServer(certs_dir=tmp_path) as first:
        ca_before = first.ca_path.read_bytes()
    with EmulatorServer(certs_dir=tmp_path) as second:
        assert second.ca_path.read_bytes() == ca_before
        context = ssl.create_default_context(cafile=str(second.ca_path))
        session = requests.Session()
        session.trust_env = False
        session.verify = str(second.ca_path)
        assert session.get(f"{second.instance_url}/services/data/").status_code == 200
        assert context.verify_mode == ssl.CERT_REQUIRED
