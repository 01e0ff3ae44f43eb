"""Run one sweep and emit its work as batched `vmh.beteiligte.sync_check` events."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from services.events import Emit, sync_check
from services.store.counters import MetricName
from services.store.lease import LeaseBusy
from services.sync.breaker import System
from services.sync.dispatch import SYNC_CHECK_BATCH
from services.sync.model import Trigger

if TYPE_CHECKING:
    from services.runtime import Runtime, RuntimeFactory

log = logging.getLogger(__name__)

# Time one run spends on building the identity index before it checkpoints and returns.
INDEX_BUILD_BUDGET_SECONDS = 50.0


async def run_breaker_release(emit: Emit, *, runtime: RuntimeFactory) -> dict[str, Any]:
    """Every minute: probe each system whose breaker is open (spaced: at most ~2 probes a
    minute, services/sync/breaker.py) and, once every system answers, emit the records that
    waited for one, oldest first, at once (trigger `retry_now`: no back-off). Costs two Redis
    reads when no breaker is open and no record waits."""
    async with runtime() as rt:
        release = await rt.breakers.release()
    for start in range(0, len(release.ids), SYNC_CHECK_BATCH):
        ids = release.ids[start : start + SYNC_CHECK_BATCH]
        await emit(sync_check(ids, Trigger.RETRY_NOW.value))
    out: dict[str, Any] = {"released": len(release.ids)}
    if release.blocked:
        out["unavailable"] = release.blocked
    return out


async def _advoware_open(rt: Runtime) -> bool:
    """Nothing but the probe is sent to Advoware while its breaker is open (no index build)."""
    return System.ADVOWARE.value in await rt.stores.breakers.open_states()


async def run_index_build(emit: Emit, *, runtime: RuntimeFactory) -> dict[str, Any]:
    """Build (or continue) the identity index; once it is complete, run a sweep at once so the
    creates that waited for it go out now rather than at the next 15-minute tick. That sweep
    claims the minute's tick like the cron sweep: with several instances one runs it, and a
    tick already claimed (by the 15-minute cron, or held by a test) is not swept again."""
    async with runtime() as rt:
        index = rt.stores.index
        if await index.ready():
            return {"identity_index": "ready"}
        if await _advoware_open(rt):
            return {"identity_index": "waiting for Advoware"}
        state = await index.build(rt.advo, budget_seconds=INDEX_BUILD_BUDGET_SECONDS)
    if not state.ready:
        return {"identity_index": state.describe()}
    return {
        "identity_index": state.describe(),
        "sweep": await run_sweep(emit, cron_tick=True, runtime=runtime),
    }


async def run_sweep(emit: Emit, *, runtime: RuntimeFactory, cron_tick: bool = False) -> dict[str, Any]:
    """One sweep, its work emitted in batches. `cron_tick`: only if this minute's tick is not
    claimed yet (one sweep per tick across instances). `runtime`: the step's (or a test's)."""
    async with runtime() as rt:
        sweeper = rt.sweeper()
        if cron_tick:
            tick = rt.clock().strftime("%Y%m%d%H%M")
            if not await sweeper.claim_tick(tick):
                return {"skipped": "another instance runs this tick"}
        await _report_server_config(rt.redis)
        try:
            async with sweeper.lease():
                # Creates wait for the identity index: finish (or continue) building it first
                # (not while Advoware is unavailable: then the sweep's probe is all it gets).
                if not await _advoware_open(rt):
                    await rt.stores.index.build(rt.advo, budget_seconds=INDEX_BUILD_BUDGET_SECONDS)
                started = time.monotonic()
                plan = await sweeper.collect()
                batches = plan.batches(SYNC_CHECK_BATCH)
                for trigger, ids in batches:
                    await emit(sync_check(ids, trigger.value))
                await sweeper.commit(plan)
                if rt.metrics is not None:
                    rt.metrics.record(MetricName.SWEEP_DURATION, time.monotonic() - started)
                await _check_links(rt)
        except LeaseBusy:
            return {"skipped": "a sweep is already running"}
        return {**plan.summary(), "events": len(batches)}


async def _check_links(rt: Runtime) -> None:
    """Once a day: every betnr held by several EspoCRM records is reported (reporting only: a
    failed EspoCRM read leaves it for the next sweep and does not fail this one)."""
    from services.errors import ApiError
    from services.sync.link_audit import LinkAudit

    try:
        await LinkAudit(espo=rt.espo, redis=rt.redis, notifier=rt.notifier).run_if_due(rt.clock())
    except ApiError as exc:
        log.warning("link check skipped: %s", type(exc).__name__)


async def _report_server_config(redis: Any) -> None:
    """Every sweep: a Redis that can evict keys is an error in the log (and in the status
    report), also for a service Motia started without `make serve`'s start-up check."""
    from services.store.server_check import check_server

    for finding in await check_server(redis):
        if finding.level == "error":
            log.error("%s", finding.message)
