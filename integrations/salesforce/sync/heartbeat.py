"""The heartbeat of a running drain: it renews the drain's leases, person locks and claims, so
they can be short and a killed worker's syncs are free again within a lease
(`SYNC_LEASE_SECONDS`). See docs/architecture.md ("Scheduling").

A daemon thread with its own database connection beats every quarter of a lease. It renews only
what the drain holds: rows leased under its token, its own locks, and the claims (record-less
`SalesforcePerson` rows) of the keys it has locked.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from types import TracebackType

from django.db import connection as db_connection
from django.utils import timezone

from integrations.salesforce.models import InquirySync, SalesforcePerson
from integrations.salesforce.sync.locks import PersonLocks, lock_ttl_seconds

logger = logging.getLogger(__name__)


class Heartbeat:
    """Renew a drain's leases (rows with `lease_token` = `token`) and what it `watch`es.

    Use as a context manager around the drain. Inside a database transaction (in-process tests
    under pytest-django's transaction) the thread is not started: another connection could
    neither see nor update the uncommitted rows.
    """

    def __init__(self, token: str, sync_ids: list[int]) -> None:
        self.token = token
        self.sync_ids = list(sync_ids)
        self.seconds = lock_ttl_seconds()
        self._locks: list[PersonLocks] = []
        self._also: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, locks: PersonLocks) -> None:
        self._locks.append(locks)

    def also(self, renew: Callable[[], None]) -> None:
        """Call `renew` on every beat too."""
        self._also.append(renew)

    def __enter__(self) -> Heartbeat:
        if not db_connection.in_atomic_block:
            self._thread = threading.Thread(target=self._run, name="sync-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.seconds / 4):
                try:
                    self.beat()
                except Exception:  # a missed beat is survivable: the next one renews
                    logger.warning("sync heartbeat failed", exc_info=True)
        finally:
            db_connection.close()

    def beat(self) -> None:
        """Renew everything once (the thread calls this; tests may too)."""
        now = timezone.now()
        InquirySync.objects.filter(pk__in=self.sync_ids, lease_token=self.token).update(
            lease_expires_at=now + dt.timedelta(seconds=self.seconds)
        )
        for renew in list(self._also):
            renew()
        for locks in list(self._locks):
            locks.renew()
            if locks.keys:
                SalesforcePerson.objects.filter(
                    org_id=locks.org_id, match_key__in=locks.keys, record_id=""
                ).update(created_at=now)
