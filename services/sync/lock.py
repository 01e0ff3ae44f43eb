"""Per-record lock in Redis: atomic, with a TTL and an owner token.

- `SET key token NX PX ttl` takes it; only the owner's token releases or extends it
  (compare-and-delete in Lua), so a slow worker whose lock expired can never release
  the lock a newer worker holds.
- A holder that dies leaves a lock that simply expires: no manual reset is needed.
- Events that arrive while a record is locked are not dropped: they set a "again" flag;
  the holder re-runs once after it finishes (see `SyncEngine`). The flag is checked both
  before and after release, and a flag setter retries the lock once, so no interleaving
  loses an event.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from services.redis_store import key

if TYPE_CHECKING:
    from redis.asyncio import Redis

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""

DEFAULT_LOCK_TTL_SECONDS = 120.0


class RecordLocks:
    def __init__(self, redis: Redis, ttl_seconds: float = DEFAULT_LOCK_TTL_SECONDS) -> None:
        self._redis = redis
        self.ttl_ms = int(ttl_seconds * 1000)

    @staticmethod
    def lock_key(record_id: str) -> str:
        return key("lock", record_id)

    @staticmethod
    def again_key(record_id: str) -> str:
        return key("again", record_id)

    async def acquire(self, record_id: str) -> str | None:
        """Return the owner token if the lock was taken, else None."""
        token = secrets.token_hex(12)
        ok = await self._redis.set(self.lock_key(record_id), token, nx=True, px=self.ttl_ms)
        return token if ok else None

    async def release(self, record_id: str, token: str) -> bool:
        return bool(await self._redis.eval(_RELEASE, 1, self.lock_key(record_id), token))

    async def extend(self, record_id: str, token: str) -> bool:
        return bool(await self._redis.eval(_EXTEND, 1, self.lock_key(record_id), token, str(self.ttl_ms)))

    async def holder(self, record_id: str) -> str | None:
        value = await self._redis.get(self.lock_key(record_id))
        return str(value) if value is not None else None

    async def force_release(self, record_id: str) -> bool:
        """Ops `unlock`: drop the lock whoever holds it (normally never needed)."""
        return bool(await self._redis.delete(self.lock_key(record_id)))

    async def mark_again(self, record_id: str) -> None:
        await self._redis.set(self.again_key(record_id), "1", ex=max(60, self.ttl_ms // 1000 * 2))

    async def take_again(self, record_id: str) -> bool:
        return bool(await self._redis.getdel(self.again_key(record_id)))
