"""The Advoware semaphore's acquire timeout counts time without progress, not time in the queue
(services/advoware/concurrency.py): bench figure 9 released 1,000 waiting records at once, and
those whose turn came after 60 s were counted as failed (a 10-minute back-off) although Advoware
answered every call. `_try` answers how long the oldest holder's lease still runs: a constant
answer means holders keep changing (slots turn over), a shrinking one the same stuck holder."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.advoware.concurrency import RedisSemaphore
from services.errors import ConnectFailedError


class _NoRedis:
    def register_script(self, _script: str) -> None:
        return None


def semaphore(timeout: float) -> RedisSemaphore:
    sem = RedisSemaphore(_NoRedis(), "sem", 1, acquire_timeout=timeout)  # type: ignore[arg-type]

    async def nap(seconds: float, fallback: float) -> None:
        await asyncio.sleep(seconds)

    sem._wait_for_release = nap  # type: ignore[method-assign]
    return sem


async def test_a_queue_behind_slots_that_turn_over_waits_past_the_timeout() -> None:
    sem = semaphore(timeout=0.8)  # (above TURNOVER_SLACK, as 60 s is in production)
    start = time.monotonic()

    async def churning() -> tuple[str | None, float]:
        if time.monotonic() - start > 1.0:
            return "token", 0.0  # its turn
        return None, 0.05  # the oldest lease always ends soon: another holder each time

    sem._try = churning  # type: ignore[method-assign]
    assert await sem.acquire() == "token"
    assert time.monotonic() - start > 1.0  # past the timeout: it waited its turn


async def test_slots_that_never_turn_over_time_out() -> None:
    sem = semaphore(timeout=0.3)
    stuck_until = time.monotonic() + 30.0  # every holder hangs in its call

    async def stuck() -> tuple[str | None, float]:
        return None, stuck_until - time.monotonic()

    sem._try = stuck  # type: ignore[method-assign]
    start = time.monotonic()
    with pytest.raises(ConnectFailedError) as info:
        await sem.acquire()
    assert 0.3 <= time.monotonic() - start < 1.5 and info.value.retryable
