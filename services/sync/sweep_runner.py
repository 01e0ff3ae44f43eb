"""Run one sweep and emit its work as batched `vmh.beteiligte.sync_check` events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from services.store.lease import LeaseBusy
from services.sync.dispatch import SYNC_CHECK_BATCH

Emit = Callable[[dict[str, Any]], Awaitable[None]]
SYNC_CHECK_TOPIC = "vmh.beteiligte.sync_check"


async def run_sweep(emit: Emit, *, cron_tick: bool = False) -> dict[str, Any]:
    from services.runtime import open_runtime
    from services.sync.sweep import Sweeper

    async with open_runtime() as rt:
        sweeper = Sweeper(
            espo=rt.espo,
            advo=rt.advo,
            redis=rt.redis,
            tz=rt.settings.timezone,
            stale_syncing_age=timedelta(seconds=rt.settings.SYNC_STALE_SYNCING_SECONDS),
            retry_base=timedelta(seconds=rt.settings.SYNC_RETRY_BASE_SECONDS),
            breakers=rt.engine.breakers,
        )
        if cron_tick:
            tick = datetime.now(UTC).strftime("%Y%m%d%H%M")
            if not await sweeper.claim_tick(tick):
                return {"skipped": "another instance runs this tick"}
        try:
            async with sweeper.lease():
                plan = await sweeper.collect()
                batches = plan.batches(SYNC_CHECK_BATCH)
                for trigger, ids in batches:
                    await emit({"topic": SYNC_CHECK_TOPIC, "data": {"ids": ids, "trigger": trigger.value}})
                await sweeper.commit(plan)
        except LeaseBusy:
            return {"skipped": "a sweep is already running"}
        return {**plan.summary(), "events": len(batches)}
