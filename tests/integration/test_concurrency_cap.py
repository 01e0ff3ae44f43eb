"""The Redis semaphore caps in-flight Advoware calls across clients/processes (real redis-server)."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from services.advoware.client import AdvowareClient
from services.advoware.concurrency import RedisSemaphore
from services.errors import UnavailableError
from services.store import keys
from services.store.connection import connect
from tests.support.processes import RedisServer
from tests.support.retry import RETRY_SETTINGS


def semaphore_key(client: AdvowareClient) -> str:
    """The Redis key of the client's shared semaphore (a RedisSemaphore when given a Redis)."""
    limiter = client.limiter
    assert isinstance(limiter, RedisSemaphore)
    return limiter.name


class SlowServer:
    """Advoware stand-in measuring in-flight requests server-side."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.active = 0
        self.max_active = 0
        self.calls = 0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 3600})
        self.calls += 1
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.active -= 1
        betnr = int(request.url.path.rsplit("/", 1)[1])
        return httpx.Response(200, json={"betNr": betnr})


def settings(kanzlei: str, cap: int) -> SimpleNamespace:
    return SimpleNamespace(
        ADVOWARE_API_BASE_URL="http://advo.test/",
        ADVOWARE_SECURITY_URL="http://security.test/",
        ADVOWARE_PRODUCT_ID=64,
        ADVOWARE_APP_ID="app",
        ADVOWARE_API_KEY=base64.b64encode(b"k").decode(),
        ADVOWARE_KANZLEI=kanzlei,
        ADVOWARE_DATABASE="DB",
        ADVOWARE_USER="u",
        ADVOWARE_ROLE=2,
        ADVOWARE_PASSWORD="pw",
        ADVOWARE_MAX_CONCURRENCY=cap,
        HTTP_TIMEOUT_SECONDS=5.0,
        **RETRY_SETTINGS,
    )


@pytest.mark.parametrize("cap", [1, 3])
async def test_parallel_callers_never_exceed_the_cap(redis_server: RedisServer, cap: int) -> None:
    kanzlei = uuid.uuid4().hex
    server = SlowServer(delay=0.02 if cap == 1 else 0.05)
    transport = httpx.MockTransport(server.handle)
    # Three "worker processes": each its own Redis connection, HTTP pool and client.
    conns = [connect(redis_server.url) for _ in range(3)]
    clients = [AdvowareClient(settings(kanzlei, cap), c, transport=transport) for c in conns]
    try:
        results = await asyncio.gather(*(clients[i % 3].get_beteiligter(i) for i in range(24)))
        assert sorted(r["betNr"] for r in results) == list(range(24))
        assert server.calls == 24
        assert server.max_active == cap  # reached, never exceeded
        assert await conns[0].zcard(semaphore_key(clients[0])) == 0  # every slot released
    finally:
        for c in clients:
            await c.aclose()
        for r in conns:
            await r.aclose()


async def test_slot_released_when_call_fails(redis: Any) -> None:
    kanzlei = uuid.uuid4().hex

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Token"):
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 3600})
        return httpx.Response(404)

    async with AdvowareClient(settings(kanzlei, 2), redis, transport=httpx.MockTransport(handle)) as c:
        for _ in range(5):
            with pytest.raises(Exception, match="404"):  # 404 everywhere: not confirmed
                await c.get_beteiligter(1)
        assert await redis.zcard(semaphore_key(c)) == 0


async def test_crashed_holder_expires(redis: Any) -> None:
    sem = RedisSemaphore(redis, keys.scratch("sem", uuid.uuid4().hex), 1, lease=0.3)
    token = await sem.try_acquire()  # "crashes" without releasing
    assert token is not None
    assert await sem.try_acquire() is None
    start = time.monotonic()
    second = await sem.acquire()
    assert 0.15 < time.monotonic() - start < 1.5
    await sem.release(second)


async def test_acquire_timeout_is_retryable_unavailable(redis: Any) -> None:
    sem = RedisSemaphore(redis, keys.scratch("sem", uuid.uuid4().hex), 1, acquire_timeout=0.2)
    held = await sem.acquire()
    with pytest.raises(UnavailableError) as info:
        await sem.acquire()
    assert info.value.retryable
    await sem.release(held)
    assert await sem.try_acquire() is not None


async def test_uncontended_acquire_and_release_are_one_round_trip_each(redis: Any) -> None:
    sem = RedisSemaphore(redis, keys.scratch("sem", uuid.uuid4().hex), 2)
    await sem.release(await sem.acquire())  # loads the script (EVALSHA miss -> EVAL) once
    await redis.config_resetstat()
    async with sem.slot():
        pass
    stats = await redis.info("commandstats")
    calls = {name: v["calls"] for name, v in stats.items() if name.startswith("cmdstat_")}
    # commands run inside the Lua scripts are counted too; only the two EVALSHAs (acquire,
    # release + wake-up token) came from the client
    inside_script = {
        "cmdstat_time",
        "cmdstat_zremrangebyscore",
        "cmdstat_zcard",
        "cmdstat_zadd",
        "cmdstat_zrem",
        "cmdstat_lpush",
        "cmdstat_ltrim",
        "cmdstat_pexpire",
        "cmdstat_config|resetstat",
    }
    client_side = {k: v for k, v in calls.items() if k not in inside_script}
    assert client_side == {"cmdstat_evalsha": 2}


async def test_a_release_wakes_a_waiter_at_once(redis: Any) -> None:
    """A waiter blocked on a full semaphore gets the slot within a round trip of the release,
    not after a polling back-off."""
    sem = RedisSemaphore(redis, keys.scratch("sem", uuid.uuid4().hex), 1, poll_max=2.0)
    other = RedisSemaphore(connect_like(redis), sem.name, 1, poll_max=2.0)
    held = await sem.acquire()
    waiter = asyncio.create_task(other.acquire())
    await asyncio.sleep(0.3)  # the waiter is blocked in BLPOP by now
    released = time.monotonic()
    await sem.release(held)
    token = await asyncio.wait_for(waiter, 1.0)
    assert time.monotonic() - released < 0.2
    await other.release(token)
    await other._redis.aclose()


def connect_like(redis: Any) -> Any:
    """A second connection pool to the same server (another worker process)."""
    kwargs = redis.connection_pool.connection_kwargs
    return connect(f"redis://{kwargs.get('host', '127.0.0.1')}:{kwargs['port']}/{kwargs.get('db', 0)}")


async def test_a_slot_goes_straight_to_a_waiting_task_of_the_same_process(redis: Any) -> None:
    """Two calls in one process with limit 1: the second takes the first's slot without a
    release and a new acquire (two script calls in all: one acquire, one release)."""
    sem = RedisSemaphore(redis, keys.scratch("sem", uuid.uuid4().hex), 1)
    await sem.release(await sem.acquire())  # loads the scripts once
    await redis.config_resetstat()
    order: list[str] = []

    async def call(name: str) -> None:
        async with sem.slot():
            order.append(name)
            await asyncio.sleep(0.05)

    await asyncio.gather(call("a"), call("b"))
    stats = await redis.info("commandstats")
    assert order == ["a", "b"]
    assert stats["cmdstat_evalsha"]["calls"] == 2
    assert await redis.zcard(sem.name) == 0


async def test_a_handed_over_slot_nobody_takes_is_released(redis: Any) -> None:
    sem = RedisSemaphore(redis, keys.scratch("sem", uuid.uuid4().hex), 1)

    async def hold() -> None:
        async with sem.slot():
            await asyncio.sleep(0.2)

    async def wait_then_give_up() -> None:
        async with sem.slot():
            raise AssertionError("never gets here")

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.05)
    waiter = asyncio.create_task(wait_then_give_up())
    await asyncio.sleep(0.05)
    waiter.cancel()  # after the holder decided to hand over? either way nothing may leak
    await holder
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await asyncio.sleep(0.05)
    assert await redis.zcard(sem.name) == 0
    assert await sem.try_acquire() is not None


async def test_key_expires_when_idle(redis: Any) -> None:
    sem = RedisSemaphore(redis, keys.scratch("sem", uuid.uuid4().hex), 2, lease=5)
    token = await sem.acquire()
    assert 0 < await redis.pttl(sem.name) <= 5000
    await sem.release(token)
