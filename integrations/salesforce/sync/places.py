"""Places for drains of small batches: at most `SYNC_SMALL_DRAINS` at once over all orgs, the
other orgs waiting in line, oldest first (`DrainSlot`).

See docs/architecture.md ("Scheduling").
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

from integrations.salesforce.sync.locks import redis_client, redis_key
from integrations.salesforce.sync.scheduling import enqueue_drain, lease_seconds

logger = logging.getLogger(__name__)


def small_drains() -> int:
    """How many drains of small batches (fewer than `SYNC_BATCH_SIZE` due) run at once over
    all orgs (`SYNC_SMALL_DRAINS`); see `DrainSlot`."""
    return max(1, int(getattr(settings, "SYNC_SMALL_DRAINS", 4) or 1))


# Admission of a drain of small batches, atomic in Redis. KEYS: the running drains (token →
# lease end), the waiting orgs (owner → when it began to wait). ARGV: now, token, owner, lease
# end, slots, waits older than this are forgotten, the keys' time-to-live. A drain is admitted
# while a slot is free that no org waiting longer is owed; else its org waits in line (keeping
# its place). Returns 1 when admitted.
_ADMIT = """
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[1])
redis.call('zremrangebyscore', KEYS[2], '-inf', ARGV[6])
local free = tonumber(ARGV[5]) - redis.call('zcard', KEYS[1])
local ahead = 0
local since = redis.call('zscore', KEYS[2], ARGV[3])
if since then
  ahead = redis.call('zcount', KEYS[2], '-inf', '(' .. since)
else
  ahead = redis.call('zcard', KEYS[2])
end
if free <= ahead then
  redis.call('zadd', KEYS[2], 'NX', ARGV[1], ARGV[3])
  redis.call('expire', KEYS[2], ARGV[7])
  return 0
end
redis.call('zrem', KEYS[2], ARGV[3])
redis.call('zadd', KEYS[1], ARGV[4], ARGV[2])
redis.call('expire', KEYS[1], ARGV[7])
return 1
"""


class DrainSlot:
    """One of the `small_drains()` places for drains of small batches, over all orgs.

    Why: with no fixed wait, a drain takes whatever is due, so the batches of a burst spread
    over many orgs are as small as drains are frequent. Every worker free for a drain made each
    org's drains frequent and small (a look-up and a write for a dozen inquiries). With a few
    places, what arrives for the other orgs meanwhile waits for the next place to free, so
    their batches grow with the load; an idle service admits a drain at once (a lone inquiry
    is not delayed), and a place frees within one batch (about half a second).

    Fair: waiting orgs are admitted oldest first, and a drain that ends hands its place to the
    org that waited longest (`release` sends that org's drain). A backlog (a full batch due)
    does not need a place: its drains are bounded by `SYNC_DRAINS_PER_ORG`. Kept in Redis;
    without Redis every drain is admitted, as before.
    """

    def __init__(self, owner_id: int, token: str) -> None:
        self.owner_id = owner_id
        self.token = token
        self.held = False
        self._client = redis_client()
        self._running = redis_key("small-drains")
        self._waiting = redis_key("small-drains-waiting")

    def acquire(self) -> bool:
        """Take a place, or put the org in line; True when admitted (or without Redis)."""
        if self._client is None:
            return True
        now = time.time()
        try:
            admitted = self._client.eval(
                _ADMIT,
                2,
                self._running,
                self._waiting,
                now,
                self.token,
                self.owner_id,
                now + lease_seconds(),
                small_drains(),
                now - lease_seconds(),
                lease_seconds() * 4,
            )
        except Exception:  # Redis down: admit (leases still keep drains apart)
            logger.warning("drain admission unavailable; admitting", exc_info=True)
            return True
        self.held = bool(admitted)
        return self.held

    def renew(self) -> None:
        """The heartbeat's: keep the place while the drain runs (a killed worker's place frees
        within a lease)."""
        if self.held and self._client is not None:
            self._client.zadd(self._running, {self.token: time.time() + lease_seconds()}, xx=True)

    def others_waiting(self) -> bool:
        """Whether another org's drain waits for a place (then a drain of small batches stops
        after its batch rather than take the next small one)."""
        if self._client is None:
            return False
        try:
            since = time.time() - lease_seconds()
            return bool(self._client.zcount(self._waiting, since, "+inf"))
        except Exception:
            return False

    def release(self) -> None:
        """Give the place back and send the drain of the org that waited longest, so the place
        is used at once rather than at that drain's next retry."""
        if not self.held or self._client is None:
            return
        self.held = False
        try:
            self._client.zrem(self._running, self.token)
            oldest = self._client.zrangebyscore(
                self._waiting, time.time() - lease_seconds(), "+inf", start=0, num=1
            )
        except Exception:
            return
        if oldest:
            enqueue_drain(int(oldest[0]), force=True)
