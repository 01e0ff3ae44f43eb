"""The lease (services/store/lease.py) against fakeredis; the same cases run against a real
Redis in tests/integration/test_store_lease_redis.py."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from services.store import keys
from services.store.lease import Lease, force_release
from services.sync.lock import RecordLocks
from tests.support import lease_cases


@pytest.mark.parametrize("case", lease_cases.ALL, ids=lambda c: c.__name__)
async def test_lease(redis: Any, case: Callable[[Any, str], Awaitable[None]]) -> None:
    await case(redis, keys.scratch("lease", uuid.uuid4().hex))


def test_lease_needs_a_positive_ttl(redis: Any) -> None:
    with pytest.raises(ValueError, match="positive TTL"):
        Lease(redis, "x", 0)


async def test_record_locks_are_leases(redis: Any) -> None:
    locks = RecordLocks(redis, ttl_seconds=5)
    token = await locks.acquire("r1")
    assert token is not None
    assert await locks.acquire("r1") is None
    assert await locks.holder("r1") == token
    assert not await locks.release("r1", "not-the-owner")
    assert await locks.extend("r1", token)
    assert not await locks.extend("r1", "not-the-owner")
    assert await locks.release("r1", token)
    assert await locks.holder("r1") is None


async def test_record_lock_renewal_outlives_the_ttl(redis: Any) -> None:
    import asyncio

    locks = RecordLocks(redis, ttl_seconds=0.3)
    token = await locks.acquire("r2")
    assert token is not None
    async with locks.renewing("r2", token) as lease:
        await asyncio.sleep(0.7)
        assert await locks.holder("r2") == token
    assert not lease.lost
    assert await force_release(redis, keys.record_lock("r2"))  # ops `unlock`
    assert not await locks.release("r2", token)


async def test_record_holding_for_an_operator_and_for_a_batch(redis: Any) -> None:
    """`holding` refuses a busy record (409); `holding_if_free` skips it (None, nothing taken
    or released); both release their own hold at the end, also when the work raises."""
    from services.errors import OperationError

    locks = RecordLocks(redis, ttl_seconds=5)
    token = await locks.acquire("r3")
    assert token is not None
    with pytest.raises(OperationError) as refused:
        async with locks.holding("r3"):
            pass
    assert refused.value.status == 409
    async with locks.holding_if_free("r3") as lease:
        assert lease is None
    assert await locks.holder("r3") == token  # the sync's hold untouched
    assert await locks.release("r3", token)
    with pytest.raises(RuntimeError):
        async with locks.holding_if_free("r3") as lease:
            assert lease is not None
            assert await locks.holder("r3") == lease.token
            raise RuntimeError("the action failed")
    assert await locks.holder("r3") is None
