"""Per-record lock: a `Lease` (services/store/lease.py) on `vmh:lock:<id>`, plus the "again" flag.

- Only the owner's token releases or extends it (atomic, in Redis), so a slow worker whose lock
  expired can never release the lock a newer worker holds; a holder that dies leaves a lock that
  simply expires: no manual reset is needed.
- Events that arrive while a record is locked are not dropped: they set a "again" flag;
  the holder re-runs once after it finishes (see `SyncEngine`). The flag is checked both
  before and after release, and a flag setter retries the lock once, so no interleaving
  loses an event.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.errors import OperationError
from services.store import keys
from services.store.lease import Lease, holder

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass
class RecordLocks:
    """`ttl_seconds`: SYNC_LOCK_TTL_SECONDS (Settings)."""

    redis: Redis
    ttl_seconds: float
    ttl_ms: int = field(init=False)

    def __post_init__(self) -> None:
        self.ttl_ms = int(self.ttl_seconds * 1000)
        self.ttl_seconds = float(self.ttl_seconds)

    def lease(self, record_id: str, token: str | None = None) -> Lease:
        """The record's lease: a fresh attempt, or (with `token`) the one held under it."""
        if token is None:
            return Lease(self.redis, keys.record_lock(record_id), self.ttl_seconds)
        return Lease.held(self.redis, keys.record_lock(record_id), self.ttl_seconds, token)

    async def acquire(self, record_id: str) -> str | None:
        """Return the owner token if the lock was taken, else None."""
        lease = self.lease(record_id)
        return lease.token if await lease.acquire() else None

    async def release(self, record_id: str, token: str) -> bool:
        return await self.lease(record_id, token).release()

    async def extend(self, record_id: str, token: str) -> bool:
        return await self.lease(record_id, token).extend()

    @contextlib.asynccontextmanager
    async def holding(self, record_id: str, wait: float = 0.0) -> AsyncIterator[Lease]:
        """An operator's action on one record: the lock taken (waiting up to `wait` seconds for a
        sync that holds it, then OperationError 409), renewed while the action works, released
        at the end even when it raises. A sync event arriving meanwhile marks "again"."""
        async with self.holding_if_free(record_id, wait) as lease:
            if lease is None:
                raise OperationError(
                    f"record {record_id} is being synced right now; try again in a moment", 409
                )
            yield lease

    @contextlib.asynccontextmanager
    async def holding_if_free(self, record_id: str, wait: float = 0.0) -> AsyncIterator[Lease | None]:
        """`holding` for a batch that skips a busy record: None (nothing held, nothing to release)
        when a sync still holds it after `wait` seconds."""
        lease = self.lease(record_id)
        if not await lease.acquire(wait=wait):
            yield None
            return
        try:
            async with lease.renewing():
                yield lease
        finally:
            await lease.release()

    @contextlib.asynccontextmanager
    async def renewing(self, record_id: str, token: str) -> AsyncIterator[Lease]:
        """Keep the held lock alive while a sync works (a slow connector, retries)."""
        async with self.lease(record_id, token).renewing() as lease:
            yield lease

    async def holder(self, record_id: str) -> str | None:
        return await holder(self.redis, keys.record_lock(record_id))

    async def mark_again(self, record_id: str) -> None:
        await self.redis.set(keys.record_again(record_id), "1", ex=max(60, self.ttl_ms // 1000 * 2))

    async def take_again(self, record_id: str) -> bool:
        return bool(await self.redis.getdel(keys.record_again(record_id)))
