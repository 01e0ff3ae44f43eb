"""Glue between a Motia API request and the webhook intake. Takes an `emit` callable so
it stays free of Motia imports and is unit-testable with a list-appending fake.

A verified batch becomes ONE event carrying all its record ids (see services/sync/dispatch.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from services.intake.webhook import WebhookEvent, is_redelivery, parse_and_verify, remember_delivery

Emit = Callable[[dict[str, Any]], Awaitable[None]]

TOPICS: dict[str, str] = {
    "create": "vmh.beteiligte.create",
    "update": "vmh.beteiligte.update",
    "delete": "vmh.beteiligte.delete",
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
    from services.intake.config import redis_url, webhook_secrets
    from services.store.connection import connect

    secrets = webhook_secrets()  # pydantic-free: this answer is on EspoCRM's clock
    headers = {str(k).lower(): str(v) for k, v in (req.get("headers") or {}).items()}
    result = parse_and_verify(event, raw_body(req), headers, secrets)
    if result.status != 200:
        logger.warn(
            "webhook refused", {"event": event, "status": result.status, "reason": result.body["error"]}
        )
        return result.response()
    redis = connect(redis_url())
    try:
        if await is_redelivery(redis, result):
            logger.info(
                "webhook batch redelivered; already accepted", {"event": event, "ids": result.record_ids}
            )
            return {"status": 200, "body": {"accepted": 0, "duplicate": True}}
        # One event for the whole batch (at most MAX_BATCH = 50 ids): every event is a fresh
        # Python process, so 50 per-record events would cost 50 process starts and 50 emits
        # before this answer; the sync step works through the ids concurrently, each record
        # logging under its own id.
        await emit(
            {
                "topic": TOPICS[event],
                "data": {
                    "event": event,
                    "ids": result.record_ids,
                    "webhookId": result.webhook_id,
                    "changed": {rid: result.changed_attributes.get(rid, []) for rid in result.record_ids},
                },
            }
        )
        await remember_delivery(redis, result)
    finally:
        await redis.aclose()
    logger.info(
        "webhook accepted", {"event": event, "count": len(result.record_ids), "ids": result.record_ids}
    )
    return result.response()
