"""The lease contract against a real redis-server (Lua scripts, EVALSHA, server-side expiry)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from services.store import keys
from services.store.lease import Lease, holder
from tests.support import lease_cases


@pytest.mark.parametrize("case", lease_cases.ALL, ids=lambda c: c.__name__)
async def test_lease(redis: Any, case: Callable[[Any, str], Awaitable[None]]) -> None:
    await case(redis, keys.scratch("lease", uuid.uuid4().hex))


async def test_release_survives_a_flushed_script_cache(redis: Any) -> None:
    """After a Redis restart the Lua script cache is empty: release still works (EVALSHA
    falls back to loading the script)."""
    name = keys.scratch("lease", uuid.uuid4().hex)
    lease = Lease(redis, name, 5)
    assert await lease.acquire()
    await redis.script_flush()
    assert await lease.extend()
    assert await lease.release()
    assert await holder(redis, name) is None
