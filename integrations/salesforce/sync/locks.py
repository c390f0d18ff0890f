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
    """How long a lock lives without its holder: the sync's lease (`SYNC_LEASE_SECONDS`). The
    holder's heartbeat renews it (`PersonLocks.renew`), so it never expires under a live holder
    and a killed holder's lock frees itself within this many seconds."""
    return int(getattr(settings, "SYNC_LEASE_SECONDS", 15) or 15)


def redis_key(name: str) -> str:
    """A Redis key of the sync engine, under this deployment's (or test run's) key prefix."""
    prefix = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}).get("global_keyprefix", "")
    return f"{prefix}salesforce:{name}"


def _lock_name(org_id: str, key: str) -> str:
    # Hashed: keys contain emails, which do not belong in Redis key listings.
    digest = hashlib.sha256(f"{org_id}:{key}".encode()).hexdigest()[:32]
    return redis_key(f"person-lock:{digest}")


@lru_cache(maxsize=4)
def _redis_client(url: str):  # type: ignore[no-untyped-def]
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


def redis_client() -> redis.Redis | None:
    """The Redis client of `settings.REDIS_URL` (one per process), or None without Redis."""
    return _redis_client(settings.REDIS_URL) if settings.REDIS_URL else None


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


class PersonLocks:
    """The person locks one drain holds for a batch of inquiries of one org.

    `take(keys, wait)` locks one inquiry's keys (sorted; keys this batch already holds count as
    held) or raises `LockBusy` having taken none of them, so a batch locks the people it can and
    retries the others a little later instead of waiting for them. `renew()` is the heartbeat's
    (a killed holder's locks expire `lock_ttl_seconds()` after its last beat); `release()`
    drops them all. Taken outside a database transaction (the row fallback commits its rows).
    """

    def __init__(self, org_id: str) -> None:
        self.org_id = org_id
        self.ttl = lock_ttl_seconds()
        self._redis = bool(settings.REDIS_URL)
        self._held: dict[str, object] = {}  # key -> redis Lock (or True for a row lock)

    @property
    def keys(self) -> list[str]:
        return list(self._held)

    def take(self, keys: Sequence[str], *, wait: float = 0.0) -> None:
        wanted = [k for k in sorted(set(keys)) if k not in self._held]
        taken: list[str] = []
        deadline = time.monotonic() + wait
        try:
            for key in wanted:
                if self._redis:
                    client = _redis_client(settings.REDIS_URL)
                    lock = client.lock(_lock_name(self.org_id, key), timeout=self.ttl)
                    remaining = max(0.0, deadline - time.monotonic())
                    if not lock.acquire(blocking=remaining > 0, blocking_timeout=remaining or None):
                        raise LockBusy("person lock busy")
                    self._held[key] = lock
                else:
                    while not _take_row_lock(self.org_id, key, self.ttl):
                        if time.monotonic() >= deadline:
                            raise LockBusy("person lock busy")
                        time.sleep(0.1)
                    self._held[key] = True
                taken.append(key)
        except BaseException:
            self._drop(taken)
            raise

    def renew(self) -> None:
        """Give every held lock its full time-to-live again (the heartbeat)."""
        if self._redis:
            for lock in list(self._held.values()):
                with contextlib.suppress(Exception):  # expired and taken: not ours to renew
                    lock.reacquire()  # type: ignore[attr-defined]
        elif self._held:
            SalesforcePerson.objects.filter(
                org_id=self.org_id, match_key__in=[LOCK_PREFIX + k for k in self._held]
            ).update(created_at=timezone.now())

    def release(self) -> None:
        self._drop(list(self._held))

    def _drop(self, keys: Sequence[str]) -> None:
        locks = [self._held.pop(k) for k in keys if k in self._held] if keys else []
        if self._redis:
            for lock in reversed(locks):
                with contextlib.suppress(Exception):  # expired and taken by someone else
                    lock.release()  # type: ignore[attr-defined]
        elif keys:
            SalesforcePerson.objects.filter(
                org_id=self.org_id, match_key__in=[LOCK_PREFIX + k for k in keys]
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
