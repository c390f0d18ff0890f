"""`manage.py load_demo_data`: a business with two locations, an owner and a staff login.

Idempotent. Passwords (and a demo API key) are generated on first run and kept in
var/demo-logins.json, which is never committed, then printed on every run so `make run` can
show them.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from autorespond.models import BusinessMembership
from autorespond.services import api_key_create, source_upsert

DEMO_FILE_NAME = "demo-logins.json"


def _demo_file() -> Path:
    return Path(settings.VAR_DIR) / DEMO_FILE_NAME


class Command(BaseCommand):
    help = "Load the demo business, its two locations and the demo logins (idempotent)."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        demo_file = _demo_file()
        saved: dict[str, str] = json.loads(demo_file.read_text()) if demo_file.exists() else {}
        business, _ = source_upsert(slug="joes-plumbing", name="Joe's Plumbing")
        source_upsert(
            slug="joes-plumbing-east", name="Joe's Plumbing East", parent_slug=business.slug
        )
        source_upsert(
            slug="joes-plumbing-west", name="Joe's Plumbing West", parent_slug=business.slug
        )

        users = get_user_model().objects
        logins = {"owner": saved.get("owner"), "support": saved.get("support")}
        for username, password in list(logins.items()):
            user = users.filter(username=username).first()
            if user is None or password is None:
                password = password or secrets.token_urlsafe(9)
                user = user or users.create_user(username=username, email=f"{username}@example.com")
                user.set_password(password)
                user.is_staff = username == "support"
                user.save()
                logins[username] = password
        BusinessMembership.objects.get_or_create(
            user=users.get(username="owner"), business=business
        )
        api_key = saved.get("api_key")
        if not api_key:
            _, api_key = api_key_create(name="demo")
        demo_file.parent.mkdir(parents=True, exist_ok=True)
        demo_file.write_text(json.dumps({**logins, "api_key": api_key}, indent=2))
        demo_file.chmod(0o600)
        self.stdout.write(
            "Demo logins (local only):\n"
            f"  owner of Joe's Plumbing: owner / {logins['owner']}\n"
            f"  support staff:           support / {logins['support']}\n"
            f"  ingestion API key:       {api_key}"
        )
