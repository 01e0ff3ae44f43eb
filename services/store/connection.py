"""The Redis connection the service uses for leases, tokens, snapshots and sync state."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # redis is imported lazily: every Motia step start pays the import cost.
    from redis.asyncio import Redis


def connect(url: str) -> Redis:
    from redis.asyncio import Redis

    return Redis.from_url(url, decode_responses=True, health_check_interval=30)
