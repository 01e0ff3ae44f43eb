"""The Redis connection the service uses for leases, tokens, snapshots and sync state."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # redis is imported lazily: every Motia step start pays the import cost.
    from redis.asyncio import Redis


def connect(url: str, *, timeout: float | None = None) -> Redis:
    """`timeout` bounds connecting and each reply (seconds), for callers on someone else's clock
    (the webhook answer); the default waits as long as the OS does, which the blocking calls of
    the Advoware semaphore need."""
    from redis.asyncio import Redis

    return Redis.from_url(
        url,
        decode_responses=True,
        health_check_interval=30,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
    )
