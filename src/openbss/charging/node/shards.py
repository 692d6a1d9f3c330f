"""Shards of the charging accounts and their leases in PostgreSQL (``charging_shard_lease``).

An account belongs to shard ``crc32(subscriber) % shards`` (its E.164 digits, as ``service.subscriber_key`` gives
them): a Diameter routing agent can route by Subscription-Id without a lookup. A node holds a shard while its lease
runs: it renews the lease every ``lease_seconds / 3``; a lease not renewed expires and another node may take it,
which bumps the shard's ``epoch``. Every group commit of a node checks, in its own transaction, that it still holds
each shard it writes for with the epoch it took it with (the ``fence`` of ``state.COMMIT``, a shared row lock: a
takeover waits for a commit in flight, and a commit after a takeover fails). A node also stops answering for a shard
as soon as its own clock says the lease may have expired (``valid``), a margin before the database would let another
node take it. """

from __future__ import annotations

import time
import zlib
from typing import Any

from openbss.charging.node import metrics

RENEW = """
UPDATE charging_shard_lease l SET expires_at = now() + make_interval(secs => $3), renewed_at = now(), address = $4
FROM unnest($2::int[], $5::bigint[]) AS x(shard, epoch)
WHERE l.shard = x.shard AND l.epoch = x.epoch AND l.owner = $1 AND l.expires_at > now()
RETURNING l.shard, l.epoch
"""
CLAIM = """
INSERT INTO charging_shard_lease AS l (shard, owner, address, epoch, expires_at)
SELECT s, $1, $2, 1, now() + make_interval(secs => $3) FROM unnest($4::int[]) AS s
ON CONFLICT (shard) DO UPDATE SET owner = excluded.owner, address = excluded.address, epoch = l.epoch + 1,
       expires_at = excluded.expires_at, renewed_at = now()
WHERE l.expires_at <= now()
RETURNING l.shard, l.epoch
"""
FREE = "SELECT s FROM unnest($1::int[]) AS s WHERE NOT EXISTS (SELECT 1 FROM charging_shard_lease l " \
       "WHERE l.shard = s AND l.expires_at > now()) ORDER BY s"
RELEASE = "UPDATE charging_shard_lease SET expires_at = now() WHERE owner = $1 AND shard = ANY($2::int[])"
OWNERS = "SELECT shard, owner, address, expires_at > now() AS live FROM charging_shard_lease WHERE shard = $1"


def shard_of(subscriber: str, shards: int) -> int:
    return zlib.crc32(subscriber.encode()) % shards


class Leases:
    """The shards one node holds: ``owned`` (shard -> epoch) and, per shard, until when (monotonic clock) the node
    may answer for it."""

    def __init__(self, node_id: str, address: str, shards: int, lease_seconds: float, wanted: set[int] | None,
                 max_shards: int | None) -> None:
        self.node_id = node_id
        self.address = address
        self.shards = shards
        self.lease_seconds = lease_seconds
        self.wanted = sorted(wanted) if wanted is not None else list(range(shards))
        self.max_shards = max_shards if max_shards is not None else shards
        self.owned: dict[int, int] = {}
        self.valid_until: dict[int, float] = {}

    def valid(self, shard: int) -> bool:
        return shard in self.owned and time.monotonic() < self.valid_until.get(shard, 0.0)

    def margin(self) -> float:
        return min(1.0, self.lease_seconds / 5)

    async def heartbeat(self, conn: Any) -> tuple[set[int], set[int]]:
        """Renew the shards held, claim free ones up to ``max_shards``. Returns (shards gained, shards lost)."""
        started = time.monotonic()
        until = started + self.lease_seconds - self.margin()
        lost: set[int] = set()
        if self.owned:
            shards = sorted(self.owned)
            rows = await conn.fetch(RENEW, self.node_id, shards, float(self.lease_seconds), self.address,
                                    [self.owned[s] for s in shards])
            kept = {r["shard"] for r in rows}
            lost = set(shards) - kept
            for s in lost:
                self.owned.pop(s, None)
                self.valid_until.pop(s, None)
            for s in kept:
                self.valid_until[s] = until
        gained: set[int] = set()
        room = self.max_shards - len(self.owned)
        if room > 0:
            candidates = [s for s in self.wanted if s not in self.owned]
            free = [r["s"] for r in await conn.fetch(FREE, candidates)][:room] if candidates else []
            if free:
                for r in await conn.fetch(CLAIM, self.node_id, self.address, float(self.lease_seconds), free):
                    self.owned[r["shard"]] = int(r["epoch"])
                    self.valid_until[r["shard"]] = until
                    gained.add(r["shard"])
        metrics.OWNED_SHARDS.set(len(self.owned))
        return gained, lost

    def expire_local(self) -> set[int]:
        """Shards whose lease this node can no longer vouch for (no renewal in time): dropped."""
        now = time.monotonic()
        gone = {s for s in self.owned if self.valid_until.get(s, 0.0) <= now}
        for s in gone:
            self.owned.pop(s, None)
            self.valid_until.pop(s, None)
        if gone:
            metrics.OWNED_SHARDS.set(len(self.owned))
        return gone

    async def release(self, conn: Any) -> None:
        if self.owned:
            await conn.execute(RELEASE, self.node_id, sorted(self.owned))
        self.owned.clear()
        self.valid_until.clear()
        metrics.OWNED_SHARDS.set(0)
