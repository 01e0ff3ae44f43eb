from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from services.errors import (
    AuthError,
    ConflictError,
    ConnectionLostError,
    ConnectorOfflineError,
    NotFoundError,
    RateLimitedError,
    ResponseTimeoutError,
    UnavailableError,
    ValidationError,
)
from services.http import ConnectFailedError, RetryPolicy, parse_retry_after
from tests.support.retry import default_retry


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def policy(t: FakeTime, **kw: object) -> RetryPolicy:
    return default_retry(sleep=t.sleep, clock=t.clock, **kw)


def failing(errors: list[Exception], result: str = "ok"):
    calls = {"n": 0}

    async def call() -> str:
        calls["n"] += 1
        if errors:
            raise errors.pop(0)
        return result

    return call, calls


def unavailable() -> UnavailableError:
    return UnavailableError("down", system="x", status_code=503)


async def test_retries_transient_then_succeeds() -> None:
    t = FakeTime()
    call, calls = failing([unavailable(), unavailable()])
    assert await policy(t).run(call, idempotent=True) == "ok"
    assert calls["n"] == 3
    assert len(t.sleeps) == 2


@pytest.mark.parametrize(
    "exc",
    [
        NotFoundError("x", system="x", status_code=404),
        ConflictError("x", system="x", status_code=409),
        ValidationError("x", system="x", status_code=400),
        AuthError("x", system="x", status_code=401),
    ],
)
async def test_fatal_errors_are_not_retried(exc: Exception) -> None:
    t = FakeTime()
    call, calls = failing([exc])
    with pytest.raises(type(exc)):
        await policy(t).run(call, idempotent=True)
    assert calls["n"] == 1 and t.sleeps == []


async def test_gives_up_after_max_attempts() -> None:
    t = FakeTime()
    call, calls = failing([unavailable() for _ in range(10)])
    with pytest.raises(UnavailableError):
        await policy(t, max_attempts=4).run(call, idempotent=True)
    assert calls["n"] == 4
    assert len(t.sleeps) == 3


async def test_exponential_backoff_with_jitter_bounds() -> None:
    t = FakeTime()
    call, _ = failing([unavailable() for _ in range(5)])
    await policy(t, max_attempts=6, base_delay=1.0, max_delay=4.0, total_timeout=1000).run(
        call, idempotent=True
    )
    # nominal 1, 2, 4, 4 (capped), 4; equal jitter keeps each in [nominal/2, nominal]
    for got, nominal in zip(t.sleeps, [1, 2, 4, 4, 4], strict=True):
        assert nominal / 2 <= got <= nominal


async def test_backoff_without_jitter_is_exact() -> None:
    t = FakeTime()
    call, _ = failing([unavailable() for _ in range(3)])
    await policy(t, base_delay=0.5, jitter=False).run(call, idempotent=True)
    assert t.sleeps == [0.5, 1.0, 2.0]


async def test_honours_retry_after() -> None:
    t = FakeTime()
    call, calls = failing([RateLimitedError("slow down", retry_after=7.0, system="x", status_code=429)])
    assert await policy(t).run(call, idempotent=True) == "ok"
    assert t.sleeps == [7.0] and calls["n"] == 2


async def test_retry_after_on_unavailable_is_honoured_too() -> None:
    t = FakeTime()
    err = UnavailableError("down", system="x", status_code=503, retry_after=3)
    call, _ = failing([err])
    await policy(t).run(call, idempotent=True)
    assert t.sleeps == [3.0]


async def test_retry_after_beyond_total_budget_gives_up_at_once() -> None:
    t = FakeTime()
    call, calls = failing([RateLimitedError("x", retry_after=120, system="x", status_code=429)])
    with pytest.raises(RateLimitedError) as info:
        await policy(t, total_timeout=60).run(call, idempotent=True)
    assert info.value.retry_after == 120
    assert calls["n"] == 1 and t.sleeps == []


async def test_total_timeout_bounds_the_retries() -> None:
    t = FakeTime()
    call, calls = failing([unavailable() for _ in range(100)])
    with pytest.raises(UnavailableError):
        await policy(t, max_attempts=100, base_delay=2, max_delay=8, jitter=False, total_timeout=20).run(
            call, idempotent=True
        )
    # sleeps 2 + 4 + 8 = 14; the next 8 s would end at 22 > 20
    assert t.sleeps == [2, 4, 8]
    assert calls["n"] == 4
    assert t.now <= 20


async def test_non_idempotent_call_is_not_retried() -> None:
    t = FakeTime()
    call, calls = failing([unavailable()])
    with pytest.raises(UnavailableError):
        await policy(t).run(call, idempotent=False)
    assert calls["n"] == 1


async def test_non_idempotent_rate_limited_without_retry_after_is_not_retried() -> None:
    t = FakeTime()
    call, calls = failing([RateLimitedError("x", system="x", status_code=429)])
    with pytest.raises(RateLimitedError):
        await policy(t).run(call, idempotent=False)
    assert calls["n"] == 1


async def test_post_refused_with_retry_after_is_repeated_after_the_wait() -> None:
    """A 429 with Retry-After was refused, not carried out: the POST is sent again after it."""
    t = FakeTime()
    call, calls = failing([RateLimitedError("x", retry_after=3, system="x", status_code=429)])
    assert await policy(t).run(call, idempotent=False) == "ok"
    assert calls["n"] == 2 and t.sleeps == [3]


def offline() -> ConnectorOfflineError:
    return ConnectorOfflineError(
        "POST Beteiligte not passed on", system="advoware", status_code=503, reason="nicht angemeldet"
    )


async def test_post_answered_nicht_angemeldet_five_times_is_repeated_until_it_passes() -> None:
    """The connector never passed those five on: the sixth goes through, within the sync."""
    t = FakeTime()
    call, calls = failing([offline() for _ in range(5)])
    assert await policy(t).run(call, idempotent=False) == "ok"
    assert calls["n"] == 6
    assert sum(t.sleeps) < 20


async def test_unsent_repeats_are_bounded() -> None:
    t = FakeTime()
    call, calls = failing([offline() for _ in range(20)])
    with pytest.raises(ConnectorOfflineError):
        await policy(t).run(call, idempotent=False)
    assert calls["n"] == default_retry().unsent_attempts


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionLostError("connection lost (ReadError)", system="advoware"),
        ResponseTimeoutError("timeout (ReadTimeout)", system="advoware"),
        UnavailableError("POST unavailable", system="advoware", status_code=503),
    ],
    ids=["reset", "read-timeout", "plain-503"],
)
async def test_post_that_may_have_been_carried_out_is_not_repeated(exc: Exception) -> None:
    t = FakeTime()
    call, calls = failing([exc])
    with pytest.raises(type(exc)):
        await policy(t).run(call, idempotent=False)
    assert calls["n"] == 1


async def test_connect_failure_is_retried_even_when_not_idempotent() -> None:
    t = FakeTime()
    call, calls = failing([ConnectFailedError("refused", system="x")])
    assert await policy(t).run(call, idempotent=False) == "ok"
    assert calls["n"] == 2


async def test_a_probe_is_sent_once() -> None:
    """A circuit breaker's probe (`single_attempt`): one request, even for a failure the policy
    would repeat six times; calls outside the block keep their retries."""
    from services.http.retry import single_attempt

    t = FakeTime()
    call, calls = failing([offline() for _ in range(3)])
    with single_attempt(), pytest.raises(ConnectorOfflineError):
        await policy(t).run(call, idempotent=True)
    assert calls["n"] == 1 and t.sleeps == []
    assert await policy(t).run(call, idempotent=True) == "ok"
    assert calls["n"] == 4


async def test_nothing_is_repeated_to_a_system_whose_breaker_opened() -> None:
    """A request in flight when the outage is confirmed (another record's probe opened the
    breaker) gives up at its next failure instead of repeating it up to six times."""
    from services.http.retry import set_system_down

    down: set[str] = set()

    async def breaker_open(system: str) -> bool:
        return system in down

    t = FakeTime()
    call, calls = failing([offline() for _ in range(6)])
    set_system_down(breaker_open)
    try:
        down.add("advoware")
        with pytest.raises(ConnectorOfflineError):
            await policy(t).run(call, idempotent=True)
        assert calls["n"] == 1
        down.clear()  # closed again: the usual repeats
        assert await policy(t).run(call, idempotent=True) == "ok"
        assert calls["n"] == 7
    finally:
        set_system_down(None)


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("garbage") is None
    now = datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(header, now=now.timestamp()) == pytest.approx(30)
