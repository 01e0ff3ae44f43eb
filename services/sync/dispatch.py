"""What the one sync event step does with each topic. Event data carry record ids only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.sync.engine import Outcome, Trigger

# Records per sync_check event: one Python process start serves this many records,
# worked through concurrently (the Advoware cap is enforced across processes in Redis).
SYNC_CHECK_BATCH = 25
BATCH_CONCURRENCY = 8


def parse_event(data: Mapping[str, Any]) -> tuple[str, list[str], Trigger]:
    """-> (kind, record ids, trigger); kind is 'delete' or 'sync'. Raises ValueError."""
    event = data.get("event")
    if event == "delete":
        rid = data.get("id")
        if not isinstance(rid, str) or not rid:
            raise ValueError("delete event without id")
        return "delete", [rid], Trigger.WEBHOOK_UPDATE
    if event in ("create", "update"):
        rid = data.get("id")
        if not isinstance(rid, str) or not rid:
            raise ValueError(f"{event} event without id")
        return "sync", [rid], Trigger.WEBHOOK_CREATE if event == "create" else Trigger.WEBHOOK_UPDATE
    ids = data.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise ValueError("sync_check event without a list of ids")
    trigger = Trigger(data.get("trigger") or Trigger.SWEEP.value)
    return "sync", list(ids), trigger


async def handle_sync_event(data: Mapping[str, Any]) -> list[Outcome]:
    from services.runtime import open_runtime

    kind, ids, trigger = parse_event(data)
    async with open_runtime() as rt:
        if kind == "delete":
            return [await rt.engine.handle_espo_delete(ids[0])]
        if len(ids) == 1:
            return [await rt.engine.sync_record(ids[0], trigger)]
        return await rt.engine.sync_many(ids, trigger, concurrency=BATCH_CONCURRENCY)


def chunk(ids: list[str], size: int = SYNC_CHECK_BATCH) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]
