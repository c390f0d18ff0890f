"""The intake's drain marks on PostgreSQL: an inquiry whose org already has a drain on its way
sends no wake-up of its own.

Every intake POST used to end with a Redis `SET NX` of the source's drain-queued mark
(`scheduling.enqueue_drain`), after its commit: a round trip that cost a tenth of the POST
(benchmarks/ingest_api.py, issue 11). The mark now also lives in PostgreSQL (`DrainMark`), and
the intake's own statement reads and sets it (`intake_ctes`), so a burst of one source pays the
Redis round trip once per drain instead of once per inquiry.

Why no inquiry is left behind: an intake statement takes a shared transaction-level advisory
lock on its source before it looks at the mark, and keeps it until it commits; a drain clears
the marks under the exclusive lock of each source (`clear`) before it looks for due rows. So
either the drain's clear came first (the intake sets a new mark and wakes a drain as before),
or the clear waits for the intake's commit and the drain then sees its row. A mark is only
ever trusted while a drain that will clear it is still to come: the intake that set it sent a
message, or met the Redis mark of a drain that has not cleared yet, because a drain clears the
Redis marks before these (`scheduling.drain_started`; the other order left a window, found in
a try-out, where a new mark vouched for a drain that had already cleared). The
intake only tries the lock: when a drain holds it or waits for it, the intake sends its wake-up
the usual way, so an intake never waits on a drain and the two cannot deadlock.

A mark older than `FRESH_SECONDS` is not trusted: its drain may have been lost (a Redis restart
drops queued messages; a web process can die between its commit and its send), and the intake
then sends its wake-up the usual way. A wake-up the broker refused removes the mark (`forget`),
as it removes the Redis one. Anything else left over is cleared by the next drain, which the
sweeper sends for rows that wait. SQLite keeps the Redis marks alone.

PostgreSQL: advisory locks and `INSERT … ON CONFLICT DO NOTHING` (see the PostgreSQL manual,
"Advisory Locks" and "INSERT"). The lock key is (`LOCK_CLASS`, source id modulo 2^31 - 1): a
shared key between two sources only makes one wait for the other's drain.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import DatabaseError, connection, transaction

from autorespond.db import quote, vendor
from integrations.salesforce.models import DrainMark

logger = logging.getLogger(__name__)

# The first key of the two-key advisory locks of drain marks (any constant no other code uses).
LOCK_CLASS = 4_113_307
# How long a mark vouches for a drain on its way. A drain normally starts well within a second
# of its mark; a mark this old is treated as lost (see the module docstring).
FRESH_SECONDS = 2.0
_KEY_MODULUS = 2_147_483_647


def intake_ctes(changed: str) -> tuple[str, str]:
    """The CTEs the intake statement adds for the inquiry of CTE `changed` (none when it did not
    change), and the SQL expression, for its result row, that is true when a fresh mark shows a
    drain of its source on its way (so no wake-up is needed). One parameter, in the expression:
    `FRESH_SECONDS`. Kept short: the joined statement must stay under psycopg's 4096-character
    parse cache (tests/autorespond/test_api_intake.py)."""
    table = quote(DrainMark._meta.db_table)
    # Only constants and quoted identifiers are formatted in; the one value is a parameter.
    ctes = (
        f"sf_lock AS (SELECT source_id, pg_try_advisory_xact_lock_shared({LOCK_CLASS},"  # noqa: S608
        f" (source_id %% {_KEY_MODULUS})::int) AS held FROM {changed}),"
        f" sf_mark AS (INSERT INTO {table} (source_id, marked_at) SELECT source_id, now()"
        " FROM sf_lock WHERE held ON CONFLICT (source_id) DO NOTHING RETURNING 1)"
    )
    # Held, not set by this statement (so another intake's committed or committing mark was
    # there), and fresh.
    expression = (
        "(SELECT held FROM sf_lock) AND NOT EXISTS (SELECT FROM sf_mark) AND EXISTS (SELECT FROM"  # noqa: S608
        f" {table} JOIN sf_lock USING (source_id) WHERE marked_at > now() - %s * interval '1s')"
    )
    return ctes, expression


def lock_key(source_id: int) -> int:
    """The second key of `source_id`'s advisory lock, as the intake statement computes it."""
    return source_id % _KEY_MODULUS


def clear(source_ids: Iterable[int]) -> None:
    """Before a drain of `source_ids` looks for due rows (after their Redis marks, see
    `scheduling.drain_started`): clear their marks, once every intake statement that may have
    seen them has committed (see the module docstring). The locks are taken one by one in key
    order, so two drains of overlapping groups cannot deadlock. Raises the database's errors:
    a drain that could not clear the marks must not look, since an intake may be relying on
    one (the drain retries in a few seconds instead)."""
    if vendor() != "postgresql":
        return
    ids = set(source_ids)
    if not ids:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        for key in sorted({lock_key(source_id) for source_id in ids}):
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_CLASS, key])
        DrainMark.objects.filter(source_id__in=ids).delete()


def forget(source_id: int) -> None:
    """The wake-up of `source_id` could not be sent: remove its mark, so the next intake sends
    one rather than trusting a drain that is not coming. Needs no lock (a missing mark only
    makes intakes send their own wake-up); a database error leaves the mark to turn stale."""
    if vendor() != "postgresql":
        return
    try:
        DrainMark.objects.filter(source_id=source_id).delete()
    except DatabaseError:
        logger.warning("could not remove the drain mark of source %s", source_id, exc_info=True)
