"""The Redis connection the service uses for locks, tokens, snapshots and sync state.

Key prefix `vmh:` keeps the service's keys apart from Motia's own (`motia:*`, `bull:*`)
on the one Redis an operator runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # redis is imported lazily: every Motia step start pays the import cost.
    from redis.asyncio import Redis

KEY_PREFIX = "vmh:"


def key(*parts: object) -> str:
    """Build a namespaced Redis key, e.g. key("lock", "abc") -> "vmh:lock:abc"."""
    return KEY_PREFIX + ":".join(str(p) for p in parts)


def connect(url: str) -> Redis:
    from redis.asyncio import Redis

    return Redis.from_url(url, decode_responses=True, health_check_interval=30)
