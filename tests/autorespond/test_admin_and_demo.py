"""Staff revoke API keys in the admin; the demo data loads once and its logins work."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.test import Client

from autorespond.models import ApiKey, BusinessMembership, Source
from autorespond.services import api_key_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_staff_revoke_an_api_key_in_the_admin_and_it_stops_working(client, business):
    key, raw = api_key_create(name="auto-respond")
    admin = Client()
    admin.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    changelist = admin.get("/admin/autorespond/apikey/").content.decode()
    assert "auto-respond" in changelist
    assert raw not in changelist  # only the prefix is ever shown
    response = admin.post(
        "/admin/autorespond/apikey/", {"action": "revoke", "_selected_action": [key.pk]}
    )
    assert response.status_code == 302
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    denied = client.post(
        "/api/v1/inquiries",
        data=json.dumps({"id": "1", "source": business.slug}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert denied.status_code == 401


def test_demo_data_loads_once_and_its_logins_work(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    call_command("load_demo_data")
    first = json.loads((tmp_path / "demo-logins.json").read_text())
    call_command("load_demo_data")
    assert json.loads((tmp_path / "demo-logins.json").read_text()) == first
    assert set(Source.objects.values_list("slug", flat=True)) == {
        "joes-plumbing",
        "joes-plumbing-east",
        "joes-plumbing-west",
    }
    assert BusinessMembership.objects.filter(user__username="owner").count() == 1
    printed = capsys.readouterr().out
    assert f"owner / {first['owner']}" in printed
    for username in ("owner", "support"):
        client = Client()
        assert client.login(username=username, password=first[username])
    staff_home = Client()
    staff_home.login(username="support", password=first["support"])
    assert "Joe&#x27;s Plumbing West" in staff_home.get("/").content.decode()
