"""A lock per Salesforce org and match key, so one person is looked up and created by one worker
at a time: redis-py locks, or a database row without Redis. See docs/architecture.md ("Locks").
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import secrets
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


# Release or renew a lock only while it still holds our token (the same check redis-py's Lock
# makes; written here because a batch does it for hundreds of keys in one pipeline).
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)


class PersonLocks:
    """The person locks one drain holds for a batch of inquiries of one org.

    `take(keys, wait)` locks one inquiry's keys (keys this batch already holds count as held)
    or raises `LockBusy` having taken none of them, so a batch locks the people it can and
    retries the others a little later instead of waiting for them; `take_many` does that for a
    whole batch in one Redis round trip. `renew()` is the heartbeat's (a killed holder's locks
    expire `lock_ttl_seconds()` after its last beat); `release()` drops them all. With Redis a
    lock is `SET key token NX PX ttl`, as redis-py's Lock; without, a row (see `person_lock`).
    Taken outside a database transaction (the row fallback commits its rows).
    """

    def __init__(self, org_id: str) -> None:
        self.org_id = org_id
        self.ttl = lock_ttl_seconds()
        self._redis = redis_client()
        self._held: dict[str, str] = {}  # key -> our token ("" for a row lock)

    @property
    def keys(self) -> list[str]:
        return list(self._held)

    def take(self, keys: Sequence[str], *, wait: float = 0.0) -> None:
        """Lock one inquiry's keys, waiting up to `wait` seconds; LockBusy if they stay busy."""
        deadline = time.monotonic() + wait
        while not self.take_many([keys])[0]:
            if time.monotonic() >= deadline:
                raise LockBusy("person lock busy")
            time.sleep(0.1)

    def take_many(self, key_sets: Sequence[Sequence[str]]) -> list[bool]:
        """Lock the keys of each inquiry of a batch where all of them are free; returns, per
        inquiry, whether it is locked. Keys taken for an inquiry that could not have all of
        its keys are given back at once."""
        wanted = sorted({k for keys in key_sets for k in keys if k not in self._held})
        got: dict[str, bool] = {}
        if wanted and self._redis is not None:
            tokens = {key: secrets.token_hex(16) for key in wanted}
            pipe = self._redis.pipeline(transaction=False)
            for key in wanted:
                pipe.set(_lock_name(self.org_id, key), tokens[key], nx=True, px=self.ttl * 1000)
            for key, ok in zip(wanted, pipe.execute(), strict=True):
                got[key] = bool(ok)
                if ok:
                    self._held[key] = tokens[key]
        else:
            for key in wanted:
                got[key] = _take_row_lock(self.org_id, key, self.ttl)
                if got[key]:
                    self._held[key] = ""
        answers = [all(got.get(k, k in self._held) for k in keys) for keys in key_sets]
        needed = {k for keys, ok in zip(key_sets, answers, strict=True) if ok for k in keys}
        self._drop([k for k in wanted if got.get(k) and k not in needed])
        return answers

    def renew(self) -> None:
        """Give every held lock its full time-to-live again (the heartbeat)."""
        held = dict(self._held)
        if not held:
            return
        if self._redis is not None:
            pipe = self._redis.pipeline(transaction=False)
            for key, token in held.items():
                pipe.eval(_RENEW, 1, _lock_name(self.org_id, key), token, self.ttl * 1000)
            pipe.execute()
        else:
            SalesforcePerson.objects.filter(
                org_id=self.org_id, match_key__in=[LOCK_PREFIX + k for k in held]
            ).update(created_at=timezone.now())

    def release(self) -> None:
        self._drop(list(self._held))

    def _drop(self, keys: Sequence[str]) -> None:
        dropped = {k: self._held.pop(k) for k in keys if k in self._held}
        if not dropped:
            return
        if self._redis is not None:
            # Expired and taken by someone else meanwhile: the script leaves theirs alone.
            with contextlib.suppress(redis.RedisError):
                pipe = self._redis.pipeline(transaction=False)
                for key, token in dropped.items():
                    pipe.eval(_RELEASE, 1, _lock_name(self.org_id, key), token)
                pipe.execute()
        else:
            SalesforcePerson.objects.filter(
                org_id=self.org_id, match_key__in=[LOCK_PREFIX + k for k in dropped]
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
