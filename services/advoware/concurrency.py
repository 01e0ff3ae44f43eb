"""A counting semaphore in Redis: caps in-flight Advoware calls across all worker processes.

The holders are a ZSET ``member = random token, score = lease expiry (ms, Redis server
clock)``. Acquire is one Lua script (one round trip): drop expired holders, and if fewer than
``limit`` remain add ours. A crashed holder's slot frees itself when its lease ends, so
``lease`` must exceed the longest call (default: 60 s; the HTTP timeout is 15 s).

Waiting: a release removes the holder and pushes a wake-up token onto a list ``<name>:wake``
(trimmed to ``limit`` entries), in one Lua script. A waiter whose acquire failed blocks in
``BLPOP`` on that list until a release wakes it, or until the oldest holder's lease could have
ended (the acquire script answers how long that is; at most ``poll_max`` seconds): a freed slot
is taken within a Redis round trip (a bulk sync keeps the slots busy instead of idling through a
polling back-off), Redis wakes the longest-waiting client first, and a crashed holder's expired
lease is noticed when it expires. A stale wake-up token only causes one extra acquire attempt. Within one process at most ``limit`` tasks wait in Redis at a time (a local
gate): a process can never hold more slots than that, and the others wait without Redis
traffic. An acquirer raises ``ConnectFailedError`` (retryable: never sent) when no slot turned over
for ``acquire_timeout``: the oldest holder stayed the same, so every slot is stuck in a call that
does not end (a hung Advoware, services/sync/fault.py). While slots do turn over it keeps waiting
its turn, however long the queue: a burst of 1,000 records released after an outage is a queue
behind an answering Advoware, not a failure (bench figure 9 measured records that waited 60 s in
such a queue counted as failed and left to a 10-minute back-off).

Hand-over: a bulk sync runs many records concurrently in one process. When a call ends while
another task of the same process waits at the gate, the slot goes straight to that task (no
release, no acquire, no other process to wake), at most ``handoff_uses`` times and while the
slot is younger than a quarter of its lease; then it goes back to Redis so other processes get
their turn. A handed-over slot nobody takes (its waiter was cancelled) is released at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

from services.errors import ConnectFailedError

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

# A later oldest-lease end than this beyond the last one seen means another holder is now the
# oldest (the earlier one released): seconds, well above the jitter of deriving it from
# `lease_left` and a Redis round trip.
TURNOVER_SLACK = 0.5

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], lease)
  return 1
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return -math.max(1, tonumber(first[2]) - now)
"""

_RELEASE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('LPUSH', KEYS[2], '1')
  redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return 1
end
return 0
"""


class Limiter(Protocol):
    def slot(self) -> Any:  # async context manager
        ...


class RedisSemaphore:
    def __init__(
        self,
        redis: Redis,
        name: str,
        limit: int,
        *,
        lease: float = 60.0,
        acquire_timeout: float = 60.0,
        poll_initial: float = 0.01,
        poll_max: float = 2.0,
        handoff_uses: int = 16,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self._redis = redis
        self.name = name
        self.limit = limit
        self.lease = lease
        self.acquire_timeout = acquire_timeout
        self._poll_initial = poll_initial
        self._poll_max = poll_max
        self.wake_key = name + ":wake"
        self._script = redis.register_script(_ACQUIRE)
        self._release_script = redis.register_script(_RELEASE)
        self._local: asyncio.Semaphore | None = None  # created on first use (inside the loop)
        self._queued = 0  # tasks of this process waiting at the local gate
        self._spare: list[tuple[str, float, int]] = []  # handed-over slots: token, taken at, uses
        self._handoff_uses = handoff_uses
        self._handoff_age = lease / 4
        self._releasing: set[asyncio.Task[None]] = set()

    async def _try(self) -> tuple[str | None, float]:
        """(token, 0) or (None, seconds until the oldest holder's lease ends)."""
        token = secrets.token_hex(12)
        got = int(await self._script(keys=[self.name], args=[self.limit, int(self.lease * 1000), token]))
        return (token, 0.0) if got > 0 else (None, -got / 1000)

    async def try_acquire(self) -> str | None:
        return (await self._try())[0]

    async def acquire(self) -> str:
        deadline = time.monotonic() + self.acquire_timeout
        delay = self._poll_initial
        oldest_ends: float | None = None  # when the oldest holder's lease ends, as last seen
        while True:
            token, lease_left = await self._try()
            if token is not None:
                return token
            now = time.monotonic()
            if oldest_ends is None or now + lease_left > oldest_ends + TURNOVER_SLACK:
                if oldest_ends is not None:  # the oldest holder left: slots turn over, keep waiting
                    deadline = now + self.acquire_timeout
                oldest_ends = now + lease_left
            remaining = deadline - now
            if remaining <= 0:
                # Never sent (like a pool timeout): safe to repeat, and when Advoware hangs every
                # slot, a sign of the system (services/sync/fault.py; a probe decides).
                raise ConnectFailedError(
                    f"no concurrency slot within {self.acquire_timeout:.0f}s (limit {self.limit})",
                    system="advoware",
                )
            # A release wakes us; otherwise look again when the oldest lease could have ended.
            await self._wait_for_release(min(self._poll_max, remaining, lease_left + 0.005), delay)
            delay = min(delay * 2, 0.2)  # the polling fallback only

    async def _wait_for_release(self, seconds: float, fallback: float) -> None:
        """Block until a holder releases (or `seconds` pass); without BLPOP, sleep a jittered back-off."""
        try:
            await self._redis.blpop([self.wake_key], timeout=max(0.01, seconds))  # type: ignore[misc]
        except Exception as exc:  # e.g. a Redis stand-in without blocking commands
            log.debug("semaphore wait fell back to polling: %s", type(exc).__name__)
            await asyncio.sleep(min(seconds, fallback * random.uniform(0.5, 1.0)))

    async def release(self, token: str) -> None:
        await self._release_script(
            keys=[self.name, self.wake_key], args=[token, self.limit, int(self.lease * 1000)]
        )

    async def _release_quietly(self, token: str) -> None:
        try:
            await self.release(token)
        except Exception as exc:  # the lease frees it anyway
            log.warning("semaphore release failed (%s); slot frees at lease end", type(exc).__name__)

    def _release_spares(self) -> None:
        """Handed-over slots nobody took: back to Redis (scheduled after the gate's own wake-up)."""
        if not self._spare or self._queued:
            return
        spare, self._spare = self._spare, []
        for token, _since, _uses in spare:
            task = asyncio.ensure_future(self._release_quietly(token))
            self._releasing.add(task)
            task.add_done_callback(self._releasing.discard)

    async def close(self) -> None:
        """Release any slot still held for hand-over (normally none)."""
        spare, self._spare = self._spare, []
        for token, _since, _uses in spare:
            await self._release_quietly(token)
        if self._releasing:
            await asyncio.gather(*self._releasing, return_exceptions=True)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[str]:
        if self._local is None:
            self._local = asyncio.Semaphore(self.limit)
        gate = self._local
        self._queued += 1
        try:
            await gate.acquire()
        finally:
            self._queued -= 1
        try:
            if self._spare:
                token, since, uses = self._spare.pop()
            else:
                token, since, uses = await self.acquire(), time.monotonic(), 0
            try:
                yield token
            finally:
                uses += 1
                if (
                    self._queued
                    and uses < self._handoff_uses
                    and time.monotonic() - since < self._handoff_age
                ):
                    self._spare.append((token, since, uses))  # the next waiting task takes it
                else:
                    await self._release_quietly(token)
        finally:
            gate.release()
            if self._spare:
                asyncio.get_running_loop().call_soon(self._release_spares)


class LocalSemaphore:
    """In-process stand-in (tests, single-process tools): same ``slot()`` interface."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._sem = asyncio.Semaphore(limit)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._sem:
            yield None
