"""Failure scheduling: when a `failed` record is tried again, and how the service recognises
its own EspoCRM writes so that they never count as a person's edit.

Every EspoCRM write of the sync (data, status, syncErrorMessage, syncRetryCount,
advowareLastSync) answers with the record's new `modifiedAt`; the engine stores it here
(`vmh:own:espocrm`, a hash id -> modifiedAt). Any poll that finds a record by its
`modifiedAt` (the sweep's EspoCRM change poll) skips a record whose `modifiedAt` is still
the one our last write produced: nobody has touched it since.

Rules for a `failed` record (one table, applied by the engine whatever path found it - the
sweep's failed-due source, the EspoCRM change poll, the Advoware change poll, a daily check):

| found by                               | modifiedAt vs our last write | runs now?                 |
|----------------------------------------|------------------------------|---------------------------|
| webhook (a person's edit), ops `sync`  | -                            | yes                       |
| breaker release (system answered again)| -                            | yes (no back-off to wait) |
| any sweep source                       | differs (a person edited it) | yes                       |
| any sweep source                       | equal, or unknown            | only once its back-off    |
|                                        |                              | (retry_delay) is due      |

Back-off: base * 2**(attempts-1) after the failure write (10 min, 20, 40 ... capped at 6 h).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.espocrm.fields import SYNC_RETRY_COUNT
from services.store import keys

if TYPE_CHECKING:
    from collections.abc import Mapping

    from redis.asyncio import Redis

RETRY_MAX = timedelta(hours=6)

OWN_WRITES = keys.OWN_WRITES_ESPOCRM


def retry_delay(attempts: int, base: timedelta) -> timedelta:
    """Back-off before retry number `attempts` + 1 (10 min, 20, 40 ... capped at 6 h)."""
    # The exponent is capped: the 6 h cap is reached long before, and timedelta would overflow.
    return min(base * (2 ** max(0, min(attempts, 25) - 1)), RETRY_MAX)


def retry_due_at(record: Mapping[str, Any], base: timedelta) -> datetime | None:
    """When a failed record (its `modifiedAt` is the failure write's) may be tried again;
    None if it carries no modifiedAt (then it is due)."""
    from services.espocrm.datetime import parse_espo_datetime

    modified = record.get("modifiedAt")
    if not modified:
        return None
    return parse_espo_datetime(modified) + retry_delay(int(record.get(SYNC_RETRY_COUNT) or 0), base)


class OwnWrites:
    """The modifiedAt our last EspoCRM write of each record produced."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def put(self, record_id: str, modified_at: str | None) -> None:
        if modified_at:
            await self._redis.hset(OWN_WRITES, record_id, modified_at)

    async def get(self, record_id: str) -> str | None:
        value = await self._redis.hget(OWN_WRITES, record_id)
        return str(value) if value else None

    async def get_many(self, record_ids: list[str]) -> dict[str, str]:
        if not record_ids:
            return {}
        values = await self._redis.hmget(OWN_WRITES, record_ids)
        return {i: str(v) for i, v in zip(record_ids, values, strict=True) if v}

    async def forget(self, record_id: str) -> None:
        await self._redis.hdel(OWN_WRITES, record_id)

    async def untouched_since_our_write(self, record: Mapping[str, Any]) -> bool:
        """True if the record's modifiedAt is the one our last write produced, or unknown
        (Redis lost it: assume ours, so the back-off holds)."""
        own = await self.get(str(record.get("id")))
        return own is None or own == record.get("modifiedAt")
