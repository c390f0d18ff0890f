"""The per-person lock: Redis when configured, database rows otherwise (`make run`)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from integrations.salesforce.models import SalesforcePerson
from integrations.salesforce.sync.locks import LOCK_PREFIX, LockBusy, person_lock

pytestmark = pytest.mark.django_db
KEYS = ["phone:+14155551212", "email:ann@example.com"]


@pytest.fixture(params=["redis", "rows"])
def lock_backend(request, settings):  # type: ignore[no-untyped-def]
    if request.param == "redis":
        request.getfixturevalue("redis_url")
    else:
        settings.REDIS_URL = ""
    return request.param


def test_a_held_key_makes_a_second_holder_wait_then_give_up(lock_backend):  # type: ignore[no-untyped-def]
    with person_lock(org_id="00D1", keys=KEYS):
        with pytest.raises(LockBusy), person_lock(org_id="00D1", keys=KEYS[:1], wait=0.3):
            pass
        # Another org, or another person, is not blocked.
        with person_lock(org_id="00D2", keys=KEYS, wait=0.3):
            pass
        with person_lock(org_id="00D1", keys=["email:bo@example.com"], wait=0.3):
            pass
    with person_lock(org_id="00D1", keys=KEYS, wait=0.3):
        pass


def test_row_locks_are_released_and_a_dead_holders_lock_is_taken_over(settings):  # type: ignore[no-untyped-def]
    settings.REDIS_URL = ""
    with person_lock(org_id="00D1", keys=KEYS):
        assert SalesforcePerson.objects.filter(match_key__startswith=LOCK_PREFIX).count() == 2
    assert not SalesforcePerson.objects.filter(match_key__startswith=LOCK_PREFIX).exists()

    # A worker died holding the lock: once older than the lock's lifetime, it is taken over.
    SalesforcePerson.objects.create(org_id="00D1", match_key=LOCK_PREFIX + KEYS[0])
    with pytest.raises(LockBusy), person_lock(org_id="00D1", keys=KEYS, wait=0.3):
        pass
    SalesforcePerson.objects.filter(match_key__startswith=LOCK_PREFIX).update(
        created_at=timezone.now() - dt.timedelta(hours=1)
    )
    with person_lock(org_id="00D1", keys=KEYS, wait=0.3):
        pass


def test_a_person_without_keys_takes_no_lock(settings):  # type: ignore[no-untyped-def]
    settings.REDIS_URL = ""
    with person_lock(org_id="00D1", keys=[]):
        assert not SalesforcePerson.objects.exists()
