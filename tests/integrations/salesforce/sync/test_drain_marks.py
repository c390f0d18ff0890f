"""The intake's drain marks on PostgreSQL (integrations/salesforce/sync/drain_marks.py): a burst
of one source sends one wake-up while its drain waits, and no inquiry is ever left without a
drain that will see it. Real PostgreSQL, Redis and Celery queue; threads with their own
database connections for the simultaneous callers."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable

import pytest
from django.db import connection, transaction
from django.utils import timezone

from autorespond.models import Inquiry
from autorespond.services import inquiry_upsert
from integrations.salesforce.models import DrainMark, InquirySync, SyncStatus
from integrations.salesforce.sync import drain_marks
from integrations.salesforce.sync.locks import redis_client, redis_key
from integrations.salesforce.sync.scheduling import drain_started
from tests.integrations.salesforce.sync.test_drain_groups import queued_drain_sources

pytestmark = pytest.mark.django_db(transaction=True)


def send(source_slug: str, external_id: str) -> None:
    inquiry_upsert(
        source=source_slug, external_id=external_id, data={"email": f"{external_id}@example.com"}
    )


def wake_ups_of(source_id: int, before: list[int]) -> int:
    """Drain messages naming `source_id` sent since `before` was read."""
    return (Counter(queued_drain_sources()) - Counter(before))[source_id]


def in_thread(target: Callable[[], None]) -> threading.Thread:
    """`target` in a thread of its own, with its own database connection (closed after)."""

    def run() -> None:
        try:
            target()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_burst_of_one_source_sends_one_wake_up_while_its_drain_waits(
    postgres, redis_url, business
):  # type: ignore[no-untyped-def]
    before = queued_drain_sources()
    start = threading.Barrier(20)

    def one(n: int) -> Callable[[], None]:
        def post() -> None:
            start.wait(timeout=30)
            send(business.slug, f"burst-{n}")

        return post

    threads = [in_thread(one(n)) for n in range(20)]
    for thread in threads:
        thread.join(timeout=60)

    assert Inquiry.objects.filter(source=business).count() == 20
    assert set(InquirySync.objects.values_list("status", "requested_version")) == {
        (SyncStatus.PENDING, 1)
    }
    # Without the marks, every one of the 20 would have made its own Redis round trip; one
    # message went out either way, and one is all the waiting drain needs.
    assert wake_ups_of(business.pk, before) == 1
    assert DrainMark.objects.filter(source_id=business.pk).count() == 1

    # The drain clears the mark before it looks: the next inquiry sends a new wake-up.
    drain_started([business.pk])
    assert not DrainMark.objects.filter(source_id=business.pk).exists()
    before = queued_drain_sources()
    send(business.slug, "after-the-drain-looked")
    assert wake_ups_of(business.pk, before) == 1


def test_a_drain_clears_a_mark_only_once_an_intake_that_saw_it_has_committed(
    postgres, redis_url, business
):  # type: ignore[no-untyped-def]
    """An intake statement holds its source's shared lock from before it reads the mark until it
    commits; a drain clears the mark under the exclusive lock, then looks. If the clear did not
    wait, the drain could look before the intake's row was committed, and the intake, having
    seen the mark, would have sent no wake-up: its inquiry would wait for the sweeper."""
    send(business.slug, "first")  # sets the mark
    key = drain_marks.lock_key(business.pk)
    intake_holds, intake_may_commit, cleared = (threading.Event() for _ in range(3))

    def intake_in_flight() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_try_advisory_xact_lock_shared(%s, %s)", [drain_marks.LOCK_CLASS, key]
            )
            assert cursor.fetchone()[0] is True
            intake_holds.set()
            assert intake_may_commit.wait(timeout=30)

    def drain() -> None:
        drain_started([business.pk])
        cleared.set()

    intake = in_thread(intake_in_flight)
    try:
        assert intake_holds.wait(timeout=30)
        drainer = in_thread(drain)
        assert not cleared.wait(timeout=0.5), "the drain cleared the mark under an intake in flight"
        assert DrainMark.objects.filter(source_id=business.pk).exists()

        # The drain cleared the Redis mark before it began to wait: the other order let an
        # intake in between set a new mark, meet the old Redis mark and send nothing, so its
        # mark vouched for a drain that had already cleared (found in a try-out).
        assert not redis_client().exists(redis_key(f"drain-queued:{business.pk}"))
        # Meanwhile a new intake does not wait for the drain: its lock attempt fails at once,
        # and it wakes a drain the usual way, through Redis.
        before = queued_drain_sources()
        send(business.slug, "while-the-drain-waits")
        assert wake_ups_of(business.pk, before) == 1
    finally:
        intake_may_commit.set()
        intake.join(timeout=30)
    assert cleared.wait(timeout=30)
    drainer.join(timeout=30)
    assert not DrainMark.objects.filter(source_id=business.pk).exists()


def test_a_stale_mark_does_not_hold_back_a_wake_up(postgres, redis_url, business):  # type: ignore[no-untyped-def]
    """A mark older than FRESH_SECONDS may stand for a drain that was lost (a Redis restart
    drops queued messages): the intake sends its wake-up the usual way."""
    stale = timezone.now() - dt.timedelta(seconds=drain_marks.FRESH_SECONDS + 5)
    DrainMark.objects.create(source_id=business.pk, marked_at=stale)
    before = queued_drain_sources()
    send(business.slug, "after-a-lost-drain")
    assert wake_ups_of(business.pk, before) == 1


def test_an_unchanged_inquiry_neither_marks_nor_wakes(postgres, redis_url, business):  # type: ignore[no-untyped-def]
    send(business.slug, "same")
    drain_started([business.pk])
    before = queued_drain_sources()
    send(business.slug, "same")  # the same body again: nothing changed
    assert wake_ups_of(business.pk, before) == 0
    assert not DrainMark.objects.filter(source_id=business.pk).exists()
