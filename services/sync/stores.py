"""Small Redis stores the sync keeps besides snapshots (services/sync/snapshot.py) and
create intents (services/sync/intents.py), shaped like them: one class per concern,
constructed with the Redis connection, keys from services/store/keys.py.

- `PendingConflicts`: conflicts whose EspoCRM value is being written to Advoware, until they
  are reported. A PUT can be applied although its answer is lost (timeout, dropped
  connection); the next run then finds both sides equal and sees no conflict, so the person
  is told from this record instead. Each conflict (record, field, both values) is notified once:
  its notified mark is claimed together with the notice (services/sync/notify.py
  `Notifier.notify_once`), so a pending entry that outlived its report (a worker killed, a Redis
  failure before the entry was cleared) is not counted or notified again; a new detection of
  the same conflict (A -> B -> A) clears the mark and is told again.
- `PendingAdvoware`: records the Advoware poll emitted whose sync has not finished yet
  (id -> emit time, a sorted set; see services/sync/advoware_watch.py). Cleared when a sync
  records an outcome.
- `RecentEvents`: the recent-events lists `status` and the console show (failures, conflicts,
  deletes, breakers), the newest `RECENT_LIMIT` of each kind.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from services.store import keys
from services.store.counters import EventKind
from services.sync.decide import FieldConflict

if TYPE_CHECKING:
    from redis.asyncio import Redis

RECENT_LIMIT = 100  # entries kept per recent-events list (and in the notices list)


@dataclass(frozen=True)
class PendingConflicts:
    redis: Redis

    async def put(self, record_id: str, betnr: int, conflicts: Sequence[FieldConflict]) -> None:
        """Conflicts a plan just found: pending until reported; being a new detection, their
        notified marks are cleared (a conflict that recurs with the same values is told again)."""
        body = {"betnr": betnr, "conflicts": [[c.field, c.espo_value, c.advo_value] for c in conflicts]}
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(keys.pending_conflicts(record_id), json.dumps(body), ex=keys.PENDING_CONFLICTS_TTL_SECONDS)
        pipe.delete(*self.notified_keys(record_id, conflicts))
        await pipe.execute()

    @staticmethod
    def notified_keys(record_id: str, conflicts: Sequence[FieldConflict]) -> list[str]:
        return [keys.conflict_notified(record_id, conflict_digest(c)) for c in conflicts]

    async def unreported(self, record_id: str, conflicts: Sequence[FieldConflict]) -> list[FieldConflict]:
        """Those of `conflicts` not notified yet."""
        if not conflicts:
            return []
        marks = await self.redis.mget(self.notified_keys(record_id, conflicts))
        return [c for c, mark in zip(conflicts, marks, strict=True) if mark is None]

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


def conflict_digest(conflict: FieldConflict) -> str:
    """One conflict's identity: its field and both values (no personal data in the key)."""
    raw = json.dumps([conflict.field, conflict.espo_value, conflict.advo_value], sort_keys=True, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


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
class RecentEvents:
    redis: Redis

    async def record(self, kind: EventKind, record_id: str, reason: str | None = None) -> None:
        """Append to the recent-events list shown by `status` (failures, conflicts, deletes)."""
        entry: dict[str, Any] = {"at": datetime.now(UTC).isoformat(), "kind": kind, "id": record_id}
        if reason:
            entry["reason"] = reason
        pipe = self.redis.pipeline(transaction=False)
        pipe.lpush(keys.recent(kind), json.dumps(entry))
        pipe.ltrim(keys.recent(kind), 0, RECENT_LIMIT - 1)
        await pipe.execute()

    async def read(self, kind: EventKind, limit: int = 20) -> Sequence[dict[str, Any]]:
        raws = await self.redis.lrange(keys.recent(kind), 0, limit - 1)
        return [json.loads(r) for r in raws]
