"""The lease contract, as checks run both against fakeredis (unit) and a real Redis
(integration): the same assertions, two backends."""

from __future__ import annotations

import asyncio
from typing import Any

from services.store.lease import Lease, LeaseBusy, force_release, holder


async def atomic_release_only_by_owner(redis: Any, name: str) -> None:
    first = Lease(redis, name, 5)
    assert await first.acquire()
    assert not await Lease(redis, name, 5).acquire()  # held: a second taker is refused
    stranger = Lease.held(redis, name, 5, "not-the-owner")
    assert not await stranger.release()  # someone else's token releases nothing
    assert await holder(redis, name) == first.token
    assert await first.release()
    assert await holder(redis, name) is None
    assert not await first.release()  # already released: nothing to do, no error


async def expiry_frees_and_old_owner_cannot_release(redis: Any, name: str) -> None:
    dead = Lease(redis, name, 0.2)
    assert await dead.acquire()
    await asyncio.sleep(0.35)  # the holder "died": its lease expires
    newer = Lease(redis, name, 5)
    assert await newer.acquire()
    assert not await dead.release()  # the expired owner cannot drop the newer holder's lease
    assert not await dead.extend()
    assert await holder(redis, name) == newer.token
    assert await newer.release()


async def extend_by_owner_only(redis: Any, name: str) -> None:
    lease = Lease(redis, name, 1)
    assert await lease.acquire()
    await redis.pexpire(name, 100)
    assert await lease.extend()
    assert await redis.pttl(name) > 500  # reset to the full TTL
    assert not await Lease.held(redis, name, 1, "someone-else").extend()
    assert await lease.release()


async def renewal_keeps_it_and_notices_loss(redis: Any, name: str) -> None:
    async with Lease(redis, name, 0.3) as lease:
        await asyncio.sleep(0.7)  # longer than the TTL: renewal keeps it
        assert await holder(redis, name) == lease.token
        assert not lease.lost
        assert await force_release(redis, name)  # ops unlock
        await asyncio.sleep(0.25)
        assert lease.lost  # renewal noticed
    assert await holder(redis, name) is None
    taken = Lease(redis, name, 5)
    assert await taken.acquire()
    try:
        async with Lease(redis, name, 5):
            raise AssertionError("a held lease must not be entered twice")
    except LeaseBusy as exc:
        assert exc.name == name
    assert await holder(redis, name) == taken.token  # the refused taker released nothing
    assert await taken.release()


async def token_carries_holder_info(redis: Any, name: str) -> None:
    info = '{"host": "h", "pid": 1}'
    lease = Lease(redis, name, 5, token=info)
    assert await lease.acquire()
    assert await holder(redis, name) == info == lease.token
    assert await Lease.held(redis, name, 5, info).release()


async def waiting_acquire(redis: Any, name: str) -> None:
    first = Lease(redis, name, 0.3)
    assert await first.acquire()
    assert not await Lease(redis, name, 5).acquire(wait=0.05)
    second = Lease(redis, name, 5)
    assert await second.acquire(wait=2.0)  # the first expires meanwhile
    assert await second.release()


ALL = [
    atomic_release_only_by_owner,
    expiry_frees_and_old_owner_cannot_release,
    extend_by_owner_only,
    renewal_keeps_it_and_notices_loss,
    token_carries_holder_info,
    waiting_acquire,
]
