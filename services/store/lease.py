"""One lease implementation: a named, expiring, owner-token lock in Redis on redis-py's
`redis.asyncio.lock.Lock`, used by the record locks, the sweep, the backfill and the Advoware
token single-flight.

- Taking it is `SET name token NX PX ttl`; release, extend and the ownership check are redis-py's
  Lua scripts (compare-and-delete, compare-and-pexpire), so they are atomic: a holder whose lease
  expired can never release or extend the lease a newer holder took.
- A holder that dies leaves a lease that simply expires after its TTL.
- While held, `renewing()` resets the TTL every third of it, so slow work never outlives its lease;
  if renewal finds the lease gone (expired during a Redis outage, or force-released) it stops and
  sets `lost`; `ensure_held()` raises `LeaseLost` once it is gone, the check before each write.
- Operators: `holder(redis, name)` answers who holds a lease (its token), `force_release(redis,
  name)` drops it whoever holds it (ops `unlock`; normally never needed).

The token may carry information for whoever looks (the backfill puts pid and host in it); it is
compared as a whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.lock import Lock

log = logging.getLogger(__name__)


class LeaseBusy(Exception):
    """`async with Lease(...)`: someone else holds it."""

    def __init__(self, name: str) -> None:
        super().__init__(f"lease {name} is held by another worker")
        self.name = name


class LeaseLost(Exception):
    """The lease expired or was taken over while its holder worked: stop before the next write."""

    def __init__(self, name: str) -> None:
        super().__init__(f"lease {name} was lost while held")
        self.name = name


class Lease:
    """One attempt to hold `name` for `ttl` seconds. Not reusable once released."""

    def __init__(self, redis: Redis, name: str, ttl: float, *, token: str | None = None) -> None:
        from redis.asyncio.lock import Lock

        if ttl <= 0:
            raise ValueError("a lease needs a positive TTL")
        self.name = name
        self.ttl = float(ttl)
        self._wanted = token or secrets.token_hex(12)
        self.lost = False
        self._held_scope = contextlib.AsyncExitStack()
        # thread_local=False: asyncio tasks of one thread share the Lease object deliberately.
        self._lock: Lock = Lock(redis, name, timeout=self.ttl, sleep=0.05, blocking=False, thread_local=False)

    @classmethod
    def held(cls, redis: Redis, name: str, ttl: float, token: str) -> Lease:
        """The lease as held under `token` (taken earlier, e.g. by another object), for
        release or extend: both still check the token atomically in Redis."""
        lease = cls(redis, name, ttl, token=token)
        lease._lock.local.token = token.encode("utf-8")  # what Lock.acquire would have stored
        return lease

    @property
    def token(self) -> str | None:
        """The owner token while this object holds the lease (as far as it knows)."""
        raw = self._lock.local.token
        return raw.decode() if isinstance(raw, bytes) else raw

    async def acquire(self, wait: float = 0.0) -> bool:
        """Take the lease; with `wait` > 0, keep trying for that many seconds."""
        if wait > 0:
            return bool(await self._lock.acquire(blocking=True, blocking_timeout=wait, token=self._wanted))
        return bool(await self._lock.acquire(blocking=False, token=self._wanted))

    async def release(self) -> bool:
        """Release if still ours (atomic). False if it had expired or someone else holds it."""
        from redis.exceptions import LockError

        try:
            await self._lock.release()
        except LockError:  # LockNotOwnedError included: expired, taken over, or never held
            return False
        return True

    async def extend(self) -> bool:
        """Reset the TTL to the full `ttl`, only if still ours (atomic)."""
        from redis.exceptions import LockError

        try:
            return bool(await self._lock.reacquire())
        except LockError:
            return False

    async def owned(self) -> bool:
        return bool(await self._lock.owned())

    async def ensure_held(self) -> None:
        """Raise `LeaseLost` (and set `lost`) unless the lease is still ours: renewal found it
        gone, or it expired since the last renewal and someone else may hold it now."""
        if self.lost or not await self.owned():
            self.lost = True
            raise LeaseLost(self.name)

    @contextlib.asynccontextmanager
    async def renewing(self) -> AsyncIterator[Lease]:
        """Keep the held lease alive while the block runs (see the module docstring)."""
        task = asyncio.create_task(self._renew())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _renew(self) -> None:
        interval = max(0.05, self.ttl / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self.extend():
                    self.lost = True
                    log.warning("lease %s expired while held", self.name)
                    return
            except Exception as exc:  # Redis hiccup: try again next interval, the TTL still runs
                log.warning("lease %s renewal failed: %s", self.name, type(exc).__name__)

    async def __aenter__(self) -> Lease:
        if not await self.acquire():
            raise LeaseBusy(self.name)
        await self._held_scope.enter_async_context(self.renewing())
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self._held_scope.aclose()
        finally:
            await self.release()


async def holder(redis: Redis, name: str) -> str | None:
    """The token of whoever holds `name`, or None."""
    value = await redis.get(name)
    return None if value is None else str(value)


async def force_release(redis: Redis, name: str) -> bool:
    """Drop `name` whoever holds it (ops `unlock`). The holder's next release or extend fails."""
    return bool(await redis.delete(name))
