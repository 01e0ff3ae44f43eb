"""Glue between a Motia API request and the webhook intake. Takes an `emit` callable so
it stays free of Motia imports and is unit-testable with a list-appending fake. `webhook_route`
is the three webhook steps' config.

A verified batch becomes ONE event carrying all its record ids (see services/sync/dispatch.py).

Redis unavailable: the batch is answered **503**, which EspoCRM retries (10 min later, up to 4
deliveries; shared/docs/espocrm-api.md §1.3), never 2xx (that would drop it) and never a 5xx
EspoCRM does not retry. That covers our own Redis calls (de-duplication record) and Motia's
emit, which goes into BullMQ on the same Redis: with Redis gone, Motia's ioredis queues the
command and the emit waits until Redis is back, so it is bounded by `EMIT_TIMEOUT_SECONDS`
(well inside EspoCRM's 10 s) and a timeout is a 503 too. An emit that timed out may still be
delivered once Redis returns; the retried batch is then synced twice, which is harmless
(syncs are idempotent). Answering 503 after a successful emit (Redis failed at the
de-duplication write) likewise costs a second sync, never a lost one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from services.events import WEBHOOK_TOPICS, Emit, Emitted, WebhookEvent, webhook_event
from services.intake.webhook import (
    IntakeResult,
    is_redelivery,
    parse_and_verify,
    remember_delivery,
)

# EspoCRM gives up after 10 s (a 408, retried); answer before that.
EMIT_TIMEOUT_SECONDS = 5.0
REDIS_TIMEOUT_SECONDS = 2.0

UNAVAILABLE: dict[str, Any] = {
    "status": 503,
    "body": {"error": "temporarily unavailable (queue store unreachable); retry later"},
    "headers": {"Retry-After": "60"},
}

WHAT_HAPPENED: dict[str, str] = {
    "create": "party created",
    "update": "party changed",
    "delete": "party deleted",
}


def webhook_route(event: WebhookEvent) -> dict[str, Any]:
    """The Motia config of the webhook step for `event` (EspoWebhookCreate, …Update, …Delete)."""
    return {
        "type": "api",
        "name": f"EspoWebhook{event.capitalize()}",
        "description": f"Checks the signature of EspoCRM's webhook ({WHAT_HAPPENED[event]}) "
        "and queues one sync job for the whole batch",
        "path": f"/vmh/webhook/beteiligte/{event}",
        "method": "POST",
        "emits": [WEBHOOK_TOPICS[event]],
        "virtualSubscribes": [f"espocrm.cbeteiligte.{event}"],  # the EspoCRM node's virtual emit
        "flows": ["vmh"],
    }


def raw_body(req: Mapping[str, Any]) -> bytes:
    raw = req.get("rawBody")
    if isinstance(raw, bytes):
        return raw
    if isinstance(raw, str):
        return raw.encode("utf-8")
    return b""


async def handle_webhook(
    event: WebhookEvent, req: Mapping[str, Any], emit: Emit, logger: Any
) -> dict[str, Any]:
    from services.environment import read_environment, redis_url, webhook_secrets

    env = read_environment()  # pydantic-free: this answer is on EspoCRM's clock
    secrets = webhook_secrets(env)
    headers = {str(k).lower(): str(v) for k, v in (req.get("headers") or {}).items()}
    result = parse_and_verify(event, raw_body(req), headers, secrets)
    if result.status != 200:
        logger.warn(
            "webhook refused", {"event": event, "status": result.status, "reason": result.body["error"]}
        )
        return result.response()
    try:
        duplicate = await _accept(event, result, emit, redis_url(env))
    except QueueUnavailable as exc:
        logger.warn(
            "webhook not accepted: Redis unavailable; EspoCRM will retry",
            {"event": event, "ids": result.record_ids, "cause": exc.cause},
        )
        return dict(UNAVAILABLE)
    if duplicate:
        logger.info("webhook batch redelivered; already accepted", {"event": event, "ids": result.record_ids})
        return {"status": 200, "body": {"accepted": 0, "duplicate": True}}
    logger.info(
        "webhook accepted", {"event": event, "count": len(result.record_ids), "ids": result.record_ids}
    )
    return result.response()


class QueueUnavailable(Exception):
    """Redis (ours or the event queue's) did not answer: the batch was not safely accepted."""

    def __init__(self, cause: str) -> None:
        super().__init__(f"queue store unavailable: {cause}")
        self.cause = cause


async def _accept(event: WebhookEvent, result: IntakeResult, emit: Emit, url: str) -> bool:
    """De-duplicate, emit, remember. True for a redelivered batch. Raises `QueueUnavailable`."""
    from redis.exceptions import RedisError

    from services.store.connection import connect

    payload = _event(event, result)
    redis = connect(url, timeout=REDIS_TIMEOUT_SECONDS)
    try:
        if await is_redelivery(redis, result):
            return True
        # One event for the whole batch (at most MAX_BATCH = 50 ids): every event is a fresh
        # Python process, so 50 per-record events would cost 50 process starts and 50 emits
        # before this answer; the sync step works through the ids concurrently, each record
        # logging under its own id.
        await _emit(emit, payload)
        await remember_delivery(redis, result)
        return False
    except (RedisError, OSError) as exc:
        raise QueueUnavailable(type(exc).__name__) from None
    finally:
        await redis.aclose()


async def _emit(emit: Emit, payload: Emitted) -> None:
    try:
        await asyncio.wait_for(emit(payload), EMIT_TIMEOUT_SECONDS)
    except TimeoutError:
        raise QueueUnavailable("emit timed out") from None
    except Exception as exc:  # Motia's RPC reports a failed BullMQ add as a plain Exception
        raise QueueUnavailable(f"emit failed ({type(exc).__name__})") from None


def _event(event: WebhookEvent, result: IntakeResult) -> Emitted:
    return webhook_event(
        event, result.record_ids, webhook_id=result.webhook_id, changed=result.changed_attributes
    )
