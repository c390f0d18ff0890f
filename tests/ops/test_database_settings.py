"""The database settings a deployed process gets from its environment (autorespond/settings.py),
read by a fresh interpreter as `manage.py` or gunicorn would: no test-only variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

_PRINT_DATABASE = (
    "import django, json; django.setup(); from django.conf import settings; "
    "d = settings.DATABASES['default']; "
    "print(json.dumps({k: d.get(k) for k in ('ENGINE', 'OPTIONS', 'CONN_MAX_AGE', "
    "'CONN_HEALTH_CHECKS')}))"
)


def database_settings(**environment: str) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DB_", "TEST_DATABASE", "CONN_"))
    }
    env.update(DJANGO_SETTINGS_MODULE="autorespond.settings", **environment)
    result = subprocess.run(
        [sys.executable, "-c", _PRINT_DATABASE],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_postgresql_prepares_statements_by_default_in_a_deployed_process():
    found = database_settings(DATABASE_URL="postgres://u:p@db.invalid:5432/leadsync")
    assert found["ENGINE"] == "django.db.backends.postgresql"
    assert found["OPTIONS"] == {"server_side_binding": True, "prepare_threshold": 5}
    assert found["CONN_MAX_AGE"] == 60
    assert found["CONN_HEALTH_CHECKS"] is True


def test_server_side_binding_can_be_turned_off_for_a_transaction_pooler():
    found = database_settings(
        DATABASE_URL="postgres://u:p@db.invalid:5432/leadsync", DB_SERVER_SIDE_BINDING="false"
    )
    assert "server_side_binding" not in found["OPTIONS"]


@pytest.mark.parametrize("threshold", ["0", "12"])
def test_the_prepare_threshold_comes_from_the_environment(threshold):
    found = database_settings(
        DATABASE_URL="postgres://u:p@db.invalid:5432/leadsync", DB_PREPARE_THRESHOLD=threshold
    )
    assert found["OPTIONS"]["prepare_threshold"] == int(threshold)


def test_sqlite_gets_no_postgresql_options(tmp_path):
    found = database_settings(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert "server_side_binding" not in found["OPTIONS"]
    assert found["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
