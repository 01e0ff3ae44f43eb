"""What the service records about its own runs, one small store per key family (keys from
keys.py): the cron ticks of the sweep and the health watch, the last sweep's summary, the cached
health report, the start-up Advoware check's findings; and, read only, the depths of Motia's
BullMQ queues in the same Redis."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.store import keys

if TYPE_CHECKING:
    from redis.asyncio import Redis

BULLMQ_PREFIX = "motia:"


@dataclass(frozen=True)
class CronTicks:
    """One run per cron tick across all `make serve` instances sharing the Redis."""

    redis: Redis

    async def claim_sweep(self, tick: str) -> bool:
        return bool(await self.redis.set(keys.sweep_tick(tick), "1", nx=True, ex=keys.SWEEP_TICK_TTL_SECONDS))

    async def claim_watch(self, tick: str) -> bool:
        return bool(await self.redis.set(keys.watch_tick(tick), "1", nx=True, ex=keys.SWEEP_TICK_TTL_SECONDS))


@dataclass(frozen=True)
class JsonRecord:
    """One JSON object under one key (`ttl_seconds`: how long a written one is kept)."""

    redis: Redis
    key: str
    ttl_seconds: int | None = None

    async def get(self) -> dict[str, Any] | None:
        raw = await self.redis.get(self.key)
        return json.loads(raw) if raw else None

    async def put(self, value: Mapping[str, Any]) -> None:
        await self.redis.set(self.key, json.dumps(value), ex=self.ttl_seconds)


def last_sweep(redis: Redis) -> JsonRecord:
    """The last completed sweep: when, and its summary (services/sync/sweep.py)."""
    return JsonRecord(redis, keys.SWEEP_LAST)


def advoware_check(redis: Redis) -> JsonRecord:
    """What the start-up check-advoware found (services/ops/preflight.py)."""
    return JsonRecord(redis, keys.ADVOWARE_CHECK_LAST)


async def ping(redis: Redis) -> None:
    await redis.ping()


async def queue_depths(redis: Redis) -> tuple[int, int, dict[str, int]]:
    """(waiting events, dead-lettered events, per queue) from BullMQ's keys in the same Redis."""
    queues: set[str] = set()
    async for name in redis.scan_iter(match=f"{BULLMQ_PREFIX}*:meta", count=1000):
        queues.add(str(name)[: -len(":meta")])
    waiting = dead = 0
    per_queue: dict[str, int] = {}
    for base in sorted(queues):
        pipe = redis.pipeline(transaction=False)
        pipe.llen(f"{base}:wait")
        pipe.llen(f"{base}:paused")
        pipe.zcard(f"{base}:prioritized")
        pipe.zcard(f"{base}:delayed")
        depth = sum(int(n) for n in await pipe.execute())
        per_queue[base[len(BULLMQ_PREFIX) :]] = depth
        if base.endswith(".dlq"):
            dead += depth
        else:
            waiting += depth
    return waiting, dead, per_queue
