"""A lock per Salesforce org and match key, so one person is looked up and created by one worker
at a time: redis-py locks, or a database row without Redis. See docs/architecture.md ("Locks").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import time
from collections.abc import Iterator, Sequence
from functools import lru_cache

import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from integrations.salesforce.models import SalesforcePerson

LOCK_PREFIX = "lock:"


class LockBusy(Exception):
    """Another worker holds the lock of one of this person's keys for longer than we waited."""


def lock_ttl_seconds() -> int:
    """How long a lock lives without its holder: as long as a task may run (its hard time
    limit), so a lock never expires under a live holder and a killed holder's lock frees
    itself."""
    return int(getattr(settings, "CELERY_TASK_TIME_LIMIT", 150) or 150)


def _lock_name(org_id: str, key: str) -> str:
    # Hashed: keys contain emails, which do not belong in Redis key listings.
    digest = hashlib.sha256(f"{org_id}:{key}".encode()).hexdigest()[:32]
    prefix = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}).get("global_keyprefix", "")
    return f"{prefix}salesforce:person-lock:{digest}"


@lru_cache(maxsize=4)
def _redis_client(url: str):  # type: ignore[no-untyped-def]
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)


@contextlib.contextmanager
def _redis_locks(org_id: str, keys: Sequence[str], wait: float, ttl: int) -> Iterator[None]:
    client = _redis_client(settings.REDIS_URL)
    held = []
    try:
        deadline = time.monotonic() + wait
        for key in keys:
            lock = client.lock(_lock_name(org_id, key), timeout=ttl, blocking=True)
            remaining = max(0.0, deadline - time.monotonic())
            if not lock.acquire(blocking_timeout=remaining):
                raise LockBusy(f"person lock busy for {len(keys)} key(s)")
            held.append(lock)
        yield
    finally:
        for lock in reversed(held):
            # The lock may have expired and been taken by someone else; that is not ours to
            # release, and redis-py refuses to (LockNotOwnedError).
            with contextlib.suppress(Exception):
                lock.release()


def _take_row_lock(org_id: str, key: str, ttl: int) -> bool:
    name = LOCK_PREFIX + key
    stale_before = timezone.now() - dt.timedelta(seconds=ttl)
    SalesforcePerson.objects.filter(
        org_id=org_id, match_key=name, created_at__lt=stale_before
    ).delete()
    try:
        with transaction.atomic():
            SalesforcePerson.objects.create(org_id=org_id, match_key=name)
    except IntegrityError:
        return False
    return True


@contextlib.contextmanager
def _row_locks(org_id: str, keys: Sequence[str], wait: float, ttl: int) -> Iterator[None]:
    held: list[str] = []
    try:
        deadline = time.monotonic() + wait
        for key in keys:
            while not _take_row_lock(org_id, key, ttl):
                if time.monotonic() >= deadline:
                    raise LockBusy(f"person lock busy for {len(keys)} key(s)")
                time.sleep(0.1)
            held.append(key)
        yield
    finally:
        if held:
            SalesforcePerson.objects.filter(
                org_id=org_id, match_key__in=[LOCK_PREFIX + k for k in held]
            ).delete()


@contextlib.contextmanager
def person_lock(*, org_id: str, keys: Sequence[str], wait: float = 30.0) -> Iterator[None]:
    """Hold the lock of every key (`email:…`, `phone:…`) of one person in one org.

    Must be entered outside a database transaction: the row fallback commits its lock rows so
    other workers see them. Raises `LockBusy` when a key stays locked for `wait` seconds.
    """
    ordered = sorted(set(keys))
    if not ordered:
        yield
        return
    ttl = lock_ttl_seconds()
    if settings.REDIS_URL:
        with _redis_locks(org_id, ordered, wait, ttl):
            yield
    else:
        with _row_locks(org_id, ordered, wait, ttl):
            yield
