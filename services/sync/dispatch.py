"""What the one sync step does with each topic. Event data carry record ids only.

Every Motia event is a fresh Python process (~0.3-0.6 s of CPU before the first record), so
bulk paths put many ids into one event and the handler works through them concurrently: the
sweep's `sync_check` events carry up to SYNC_CHECK_BATCH ids, and a webhook batch (EspoCRM
sends up to 50 items per request) becomes one event for all its ids. The Advoware cap holds
across processes (Redis semaphore), so concurrency here only fills the capped slots. Each
record still logs its own lines (with its id) under the event's trace.

Shapes: ``{"event": "create"|"update"|"delete", "ids": [...]}`` (webhooks),
``{"ids": [...], "trigger": "sync_check"|...}`` (sweep, ops); the single-record form
``{"event": ..., "id": ...}`` of earlier versions is still accepted (events queued before an
upgrade).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from services.sync.model import Outcome, Trigger

if TYPE_CHECKING:
    from services.runtime import RuntimeFactory

# Records per sync_check event: one Python process start serves this many records. 100 keeps
# the start-up cost per record at a few ms and a batch short enough (seconds) that a crash
# retry (BullMQ re-runs the whole event; every sync is idempotent) costs little.
SYNC_CHECK_BATCH = 100
# Records worked on at once inside one event. Motia runs up to 10 events at a time, and the
# Advoware calls are capped globally (ADVOWARE_MAX_CONCURRENCY), so this only has to keep the
# capped slots busy while other calls (EspoCRM, Redis) are in flight.
BATCH_CONCURRENCY = 8
# Bulk sync processes run at the lowest CPU priority (nice 19): while a bulk run keeps up to 10
# sync processes busy, the webhook intake (EspoCRM waits for its answer and gives up after 10 s),
# the ops endpoints and Motia's own event loop still get the CPU at once (bench: a burst of 30
# batches of 50 answered in p99 ~0.5 s at nice 10, ~0.3 s at nice 19). Bulk syncs mostly wait on
# the capped Advoware calls; on a host shared with CPU-heavy work they get what is left over.
# Events with at most INTERACTIVE_IDS ids (a person's edit or a few: someone waits to see it in
# the other system) keep the normal priority.
WORKER_NICENESS = 19
INTERACTIVE_IDS = 5


def lower_priority(data: Mapping[str, Any], niceness: int = WORKER_NICENESS) -> bool:
    """Called once at the start of a sync process (the step handler); never in tests. True if
    this event counts as bulk and the process now runs at `niceness`."""
    import os

    ids = data.get("ids") if isinstance(data, Mapping) else None
    if not isinstance(ids, list) or len(ids) <= INTERACTIVE_IDS:
        return False
    try:
        os.nice(niceness)
    except OSError:  # not permitted here: run at normal priority
        return False
    return True


def _ids(data: Mapping[str, Any], what: str) -> list[str]:
    ids = data.get("ids")
    if ids is None and "id" in data:
        ids = [data.get("id")]
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise ValueError(f"{what} event without a list of ids")
    return list(dict.fromkeys(ids))


def parse_event(data: Mapping[str, Any]) -> tuple[str, list[str], Trigger]:
    """-> (kind, record ids, trigger); kind is 'delete' or 'sync'. Raises ValueError."""
    event = data.get("event")
    if event == "delete":
        return "delete", _ids(data, "delete"), Trigger.WEBHOOK_UPDATE
    if event in ("create", "update"):
        return (
            "sync",
            _ids(data, str(event)),
            Trigger.WEBHOOK_CREATE if event == "create" else Trigger.WEBHOOK_UPDATE,
        )
    ids = _ids(data, "sync_check")
    trigger = Trigger(data.get("trigger") or Trigger.SWEEP.value)
    return "sync", ids, trigger


async def handle_sync_event(data: Mapping[str, Any], runtime: RuntimeFactory) -> list[Outcome]:
    """Sync (or handle the deletion of) every record of one event, on a runtime from `runtime`
    (the step passes services.runtime.open_runtime; tests and the profiler their own)."""
    kind, ids, trigger = parse_event(data)
    async with runtime() as rt:
        if kind == "delete":
            return [await rt.engine.handle_espo_delete(i) for i in ids]
        if len(ids) == 1:
            return [await rt.engine.sync_record(ids[0], trigger)]
        return await rt.engine.sync_many(ids, trigger, concurrency=BATCH_CONCURRENCY)


def chunk(ids: list[str], size: int = SYNC_CHECK_BATCH) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]
