"""Redis unavailable at the webhook: 503 (EspoCRM retries it), never 2xx-with-loss (issue 16).

The real-runtime counterpart (Motia's own Redis gone) is tests/e2e/test_redis_faults.py."""

from __future__ import annotations

import asyncio
from typing import Any

import fakeredis
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from sandbox.signing import php_json, webhook_signature
from services.events import WEBHOOK_TOPICS, Emitted
from services.intake import handler
from services.store import connection
from tests.support.processes import free_port

WEBHOOK_ID, SECRET = "wh-test", "secret-test"


class Logger:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, Any]] = []

    def info(self, msg: str, data: Any = None) -> None:
        self.lines.append(("info", msg, data))

    def warn(self, msg: str, data: Any = None) -> None:
        self.lines.append(("warn", msg, data))


def request(ids: list[str]) -> dict[str, Any]:
    body = php_json([{"id": i} for i in ids])
    return {
        "rawBody": body.decode(),
        "headers": {
            "content-type": "application/json",
            "signature": webhook_signature(WEBHOOK_ID, SECRET, body),
        },
    }


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESPOCRM_WEBHOOK_SECRETS", f"{WEBHOOK_ID}:{SECRET}")


@pytest.fixture
def redis(monkeypatch: pytest.MonkeyPatch) -> Any:
    fake = fakeredis.FakeAsyncRedis(decode_responses=True)
    monkeypatch.setattr(fake, "aclose", _noop)  # keep it readable after the handler closes it
    monkeypatch.setattr(connection, "connect", lambda url, timeout=None: fake)
    return fake


async def _noop(*args: Any) -> None:
    return None


async def test_unreachable_redis_is_503_and_nothing_emitted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    emitted: list[Emitted] = []

    async def emit(event: Emitted) -> None:
        emitted.append(event)

    log = Logger()
    resp = await handler.handle_webhook("update", request(["a1"]), emit, log)
    assert resp["status"] == 503 and "retry" in resp["body"]["error"]
    assert resp["headers"]["Retry-After"]
    assert emitted == []
    warned = [d for level, _, d in log.lines if level == "warn"]
    assert warned and warned[0]["ids"] == ["a1"] and warned[0]["cause"] == "ConnectionError"


async def test_emit_that_hangs_is_503_in_time_and_not_remembered(
    redis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Motia's emit waits for BullMQ's Redis; the answer must come before EspoCRM's 10 s."""
    monkeypatch.setattr(handler, "EMIT_TIMEOUT_SECONDS", 0.1)

    async def emit(event: Emitted) -> None:
        await asyncio.sleep(30)

    resp = await handler.handle_webhook("create", request(["a1", "b2"]), emit, Logger())
    assert resp["status"] == 503
    assert await redis.keys("*") == []  # no de-duplication record: the retry is accepted again


async def test_emit_failure_is_503(redis: Any) -> None:
    async def emit(event: Emitted) -> None:
        raise Exception("Connection is closed.")  # what Motia's RPC raises

    resp = await handler.handle_webhook("update", request(["a1"]), emit, Logger())
    assert resp["status"] == 503


async def test_redis_lost_after_the_emit_is_503_so_the_batch_comes_again(
    redis: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Emitted, but the de-duplication record could not be written: 503, and EspoCRM's retry
    syncs the batch a second time (harmless), rather than 200 with nothing remembered."""
    emitted: list[Emitted] = []

    async def emit(event: Emitted) -> None:
        emitted.append(event)

    async def broken_set(*args: Any, **kw: Any) -> None:
        raise RedisConnectionError("Connection reset by peer")

    monkeypatch.setattr(redis, "set", broken_set)
    resp = await handler.handle_webhook("update", request(["a1"]), emit, Logger())
    assert resp["status"] == 503 and len(emitted) == 1


async def test_accepted_then_redelivery_is_200_duplicate(redis: Any) -> None:
    emitted: list[Emitted] = []

    async def emit(event: Emitted) -> None:
        emitted.append(event)

    first = await handler.handle_webhook("update", request(["a1"]), emit, Logger())
    again = await handler.handle_webhook("update", request(["a1"]), emit, Logger())
    assert first == {"status": 200, "body": {"accepted": 1}}
    assert again["status"] == 200 and again["body"]["duplicate"] is True
    assert [e["data"]["ids"] for e in emitted] == [["a1"]]
    assert emitted[0]["topic"] == WEBHOOK_TOPICS["update"]


async def test_bad_signature_is_still_401_without_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    req = request(["a1"])
    req["headers"] = {"signature": webhook_signature(WEBHOOK_ID, "wrong", b"[]")}

    async def emit(event: Emitted) -> None:
        raise AssertionError("must not emit")

    resp = await handler.handle_webhook("update", req, emit, Logger())
    assert resp["status"] == 401
