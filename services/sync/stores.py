"""Small Redis stores the sync keeps besides snapshots (services/sync/snapshot.py) and
create intents (services/sync/intents.py), shaped like them: one class per concern,
constructed with the Redis connection, keys from services/store/keys.py.

- `PendingConflicts`: conflicts whose EspoCRM value is being written to Advoware, until they
  are reported. A PUT can be applied although its answer is lost (timeout, dropped
  connection); the next run then finds both sides equal and sees no conflict, so the person
  is told from this record instead.
- `PendingAdvoware`: records the Advoware poll emitted whose sync has not finished yet
  (id -> emit time, a sorted set; see services/sync/advoware_watch.py). Cleared when a sync
  records an outcome.
- `SyncStats`: the counters `status` shows (one hash).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.store import keys
from services.sync.decide import FieldConflict

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass(frozen=True)
class PendingConflicts:
    redis: Redis

    async def put(self, record_id: str, betnr: int, conflicts: Sequence[FieldConflict]) -> None:
        body = {"betnr": betnr, "conflicts": [[c.field, c.espo_value, c.advo_value] for c in conflicts]}
        await self.redis.set(
            keys.pending_conflicts(record_id), json.dumps(body), ex=keys.PENDING_CONFLICTS_TTL_SECONDS
        )

    async def get(self, record_id: str, betnr: int) -> list[FieldConflict]:
        """The pending conflicts of this pair; none if they were about another betnr."""
        raw = await self.redis.get(keys.pending_conflicts(record_id))
        if not raw:
            return []
        try:
            data = json.loads(raw)
            if data.get("betnr") != betnr:
                return []  # relinked since: those conflicts were about another pair
            return [FieldConflict(str(f), e, a) for f, e, a in data["conflicts"]]
        except (ValueError, TypeError, KeyError, AttributeError):
            return []

    async def delete(self, record_id: str) -> None:
        await self.redis.delete(keys.pending_conflicts(record_id))


@dataclass(frozen=True)
class PendingAdvoware:
    redis: Redis

    async def add(self, record_ids: Iterable[str], at: float) -> None:
        await self.redis.zadd(keys.PENDING_ADVOWARE, dict.fromkeys(record_ids, at))

    async def older_than(self, cutoff: float) -> list[str]:
        return [str(i) for i in await self.redis.zrangebyscore(keys.PENDING_ADVOWARE, "-inf", cutoff)]

    async def discard(self, record_id: str) -> None:
        await self.redis.zrem(keys.PENDING_ADVOWARE, record_id)

    async def count(self) -> int:
        return int(await self.redis.zcard(keys.PENDING_ADVOWARE))


@dataclass(frozen=True)
class SyncStats:
    redis: Redis

    async def count(self, name: str, amount: int = 1) -> None:
        await self.redis.hincrby(keys.STATS, name, amount)

    async def all(self) -> dict[str, int]:
        return {k: int(v) for k, v in (await self.redis.hgetall(keys.STATS)).items()}
