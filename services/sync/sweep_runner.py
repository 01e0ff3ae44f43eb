"""Run one sweep and emit its work as batched `vmh.beteiligte.sync_check` events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from services.store.lease import LeaseBusy
from services.sync.dispatch import SYNC_CHECK_BATCH
from services.sync.identity_index import IdentityIndex

Emit = Callable[[dict[str, Any]], Awaitable[None]]
SYNC_CHECK_TOPIC = "vmh.beteiligte.sync_check"
# Time one run spends on building the identity index before it checkpoints and returns.
INDEX_BUILD_BUDGET_SECONDS = 50.0


async def run_index_build(emit: Emit) -> dict[str, Any]:
    """Build (or continue) the identity index; once it is complete, run a sweep at once so the
    creates that waited for it go out now rather than at the next 15-minute tick."""
    from services.runtime import open_runtime

    async with open_runtime() as rt:
        index = IdentityIndex(rt.redis)
        if await index.ready():
            return {"identity_index": "ready"}
        state = await index.build(rt.advo, budget_seconds=INDEX_BUILD_BUDGET_SECONDS)
    if not state.ready:
        return {"identity_index": state.describe()}
    return {"identity_index": state.describe(), "sweep": await run_sweep(emit)}


async def run_sweep(emit: Emit, *, cron_tick: bool = False) -> dict[str, Any]:
    from services.runtime import open_runtime

    async with open_runtime() as rt:
        sweeper = rt.sweeper()
        if cron_tick:
            tick = datetime.now(UTC).strftime("%Y%m%d%H%M")
            if not await sweeper.claim_tick(tick):
                return {"skipped": "another instance runs this tick"}
        try:
            async with sweeper.lease():
                # Creates wait for the identity index: finish (or continue) building it first.
                await IdentityIndex(rt.redis).build(rt.advo, budget_seconds=INDEX_BUILD_BUDGET_SECONDS)
                plan = await sweeper.collect()
                batches = plan.batches(SYNC_CHECK_BATCH)
                for trigger, ids in batches:
                    await emit({"topic": SYNC_CHECK_TOPIC, "data": {"ids": ids, "trigger": trigger.value}})
                await sweeper.commit(plan)
        except LeaseBusy:
            return {"skipped": "a sweep is already running"}
        return {**plan.summary(), "events": len(batches)}
