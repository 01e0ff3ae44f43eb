"""Telling people: notifications to ESPOCRM_NOTIFY_USER_ID, and the recent-events log the
status endpoint shows. Notification texts are German (for the firm's staff) and go into
the CRM only; logs carry record ids and reasons, never names or contact data."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from services.redis_store import key

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

RECENT_LIMIT = 100


class NotifyingClient(Protocol):
    async def notify(
        self,
        user_id: str,
        message: str,
        *,
        parent_type: str,
        parent_id: str | None,
        user_name: str | None = None,
    ) -> str: ...


class Notifier:
    def __init__(
        self, espo: NotifyingClient, redis: Redis, user_id: str | None, user_name: str | None
    ) -> None:
        self._espo = espo
        self._redis = redis
        self._user_id = user_id
        self._user_name = user_name

    async def notify(self, record_id: str | None, message: str) -> bool:
        """Best effort: a failed notification is logged and counted, never fails a sync."""
        await self._redis.hincrby(key("stats"), "notifications", 1)
        await self._redis.lpush(
            key("notifications"),
            json.dumps({"at": datetime.now(UTC).isoformat(), "id": record_id, "message": message}),
        )
        await self._redis.ltrim(key("notifications"), 0, RECENT_LIMIT - 1)
        if not self._user_id:
            log.warning("notification not sent: ESPOCRM_NOTIFY_USER_ID is not set (record %s)", record_id)
            return False
        try:
            channel = await self._espo.notify(
                self._user_id,
                message,
                parent_type="CBeteiligte",
                parent_id=record_id,
                user_name=self._user_name,
            )
        except Exception as exc:
            log.warning("notification for record %s failed: %s", record_id, type(exc).__name__)
            await self._redis.hincrby(key("stats"), "notifications_failed", 1)
            return False
        log.info("notified user about record %s via %s", record_id, channel)
        return True


async def record_event(redis: Redis, kind: str, record_id: str, reason: str | None = None) -> None:
    """Append to the recent-events list shown by `status` (failures, conflicts, deletes)."""
    entry: dict[str, Any] = {"at": datetime.now(UTC).isoformat(), "kind": kind, "id": record_id}
    if reason:
        entry["reason"] = reason
    pipe = redis.pipeline(transaction=False)
    pipe.lpush(key("recent", kind), json.dumps(entry))
    pipe.ltrim(key("recent", kind), 0, RECENT_LIMIT - 1)
    await pipe.execute()


async def recent_events(redis: Redis, kind: str, limit: int = 20) -> Sequence[dict[str, Any]]:
    raws = await redis.lrange(key("recent", kind), 0, limit - 1)
    return [json.loads(r) for r in raws]
