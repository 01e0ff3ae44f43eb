"""The per-record sync: lock and "again" orchestration. The work itself lives elsewhere:

    sync_record(id):  lock -> read EspoCRM -> [create.py | update.py (planning.py, decide.py)]
                      -> outcomes.py (status, snapshot, failures) -> unlock
                      (-> once more if events came in meanwhile)

Write budget (echo prevention): a person's edit of one field on one side costs exactly
one data write to the other side plus sync metadata (status, advowareLastSync) on the
EspoCRM record; a look that finds nothing to do writes nothing at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.errors import ApiError, NotFoundError
from services.http.base import write_check
from services.store.counters import Metrics, Stat
from services.store.lease import Lease, LeaseLost
from services.sync.admission import Admission
from services.sync.create import Creator
from services.sync.deps import CreateDeps, OutcomeDeps, PlanningDeps, Stores, Systems, UpdateDeps
from services.sync.linking import Linker
from services.sync.model import (
    ENTITY,
    Outcome,
    RecordContext,
    Result,
    SyncConfig,
    SyncOptions,
    Trigger,
    as_int,
)
from services.sync.outcomes import RECORDED_ERRORS, Outcomes
from services.sync.planning import Planner, RecordPlan
from services.sync.snapshot import Snapshot
from services.sync.states import SyncStatus, transition
from services.sync.update import Updater

if TYPE_CHECKING:
    from services.beteiligte.fieldmap import Direction
    from services.ops.recorder import SyncRecorder
    from services.sync.breaker import CircuitBreakers
    from services.sync.decide import MergePlan
    from services.sync.deletions import DeletionGuard
    from services.sync.notify import Notifier

log = logging.getLogger(__name__)

DEFAULT_OPTIONS = SyncOptions()


@dataclass(kw_only=True)
class SyncEngine:
    """Built by the composition root (services/runtime.py `build_runtime`), which passes every
    collaborator and value explicitly; the stores and the parts of a run are built from them."""

    systems: Systems
    stores: Stores
    config: SyncConfig
    notifier: Notifier
    breakers: CircuitBreakers
    deletions: DeletionGuard
    # History, metrics, waiting notices and alerts after each sync (services/ops/recorder.py).
    recorder: SyncRecorder | None
    # Per-field direction (field map + SYNC_FIELD_DIRECTIONS); None: every field two-way.
    directions: Mapping[str, Direction] | None
    # The counters (services/store/counters.py): the runtime's, flushed when it closes.
    metrics: Metrics

    def __post_init__(self) -> None:
        st = self.stores
        # The stores callers reach through the engine too (ops tools, the backfill).
        self.locks = st.locks
        self.snapshots = st.snapshots
        self.intents = st.intents
        self.pending_advoware = st.pending_advoware
        self.linker = Linker(
            espo=self.systems.espo,
            advo=self.systems.advo,
            index=st.index,
            tz=self.systems.tz,
            claims=st.claims,
        )
        # Each part of a run, given only what it uses (services/sync/deps.py).
        self.admission = Admission(
            breakers=self.breakers,
            own_writes=st.own_writes,
            clock=self.systems.clock,
            retry_base=self.config.retry_base,
        )
        self.outcomes = Outcomes(
            OutcomeDeps.of(self.systems, st, self.metrics, self.notifier, self.breakers, self.recorder),
            max_attempts=self.config.max_attempts,
        )
        self.planner = Planner(PlanningDeps.of(self.systems, st, self.directions))
        self.updater = Updater(
            deps=UpdateDeps.of(self.systems, st, self.metrics, self.linker, self.deletions, self.notifier),
            planner=self.planner,
            outcomes=self.outcomes,
            reread_after=self.config.advoware_reread_after,
        )
        self.creator = Creator(
            CreateDeps.of(self.systems, st, self.metrics, self.linker), self.outcomes, self.updater
        )

    # ------------------------------------------------------------------ entry points
    async def sync_many(
        self,
        record_ids: Sequence[str],
        trigger: Trigger,
        concurrency: int = 8,
        options: SyncOptions = DEFAULT_OPTIONS,
    ) -> list[Outcome]:
        """Sync a batch concurrently (bulk paths: one Motia event, many records)."""
        sem = asyncio.Semaphore(concurrency)

        async def one(record_id: str) -> Outcome:
            async with sem:
                try:
                    return await self.sync_record(record_id, trigger, options=options)
                except Exception as exc:  # one broken record must not stop the batch
                    log.error("sync of %s crashed: %s", record_id, type(exc).__name__)
                    return Outcome(record_id, Result.FAILED, reason=type(exc).__name__)

        return list(await asyncio.gather(*(one(i) for i in dict.fromkeys(record_ids))))

    async def sync_record(
        self, record_id: str, trigger: Trigger = Trigger.SWEEP, *, options: SyncOptions = DEFAULT_OPTIONS
    ) -> Outcome:
        """Sync one record under its lock; events arriving meanwhile cause one more run."""
        outcome = await self._sync_record(record_id, trigger, options)
        if self.recorder is not None:
            await self.recorder.after_sync(outcome, trigger.value)
        return outcome

    async def _sync_record(self, record_id: str, trigger: Trigger, options: SyncOptions) -> Outcome:
        token = await self.locks.acquire(record_id)
        if token is None:
            # Leave a note for the holder, then try once more in case it just released.
            await self.locks.mark_again(record_id)
            token = await self.locks.acquire(record_id)
            if token is None:
                log.info("record %s is being synced elsewhere; queued one more run", record_id)
                return Outcome(record_id, Result.LOCKED)
        outcome: Outcome | None = None
        while True:
            try:
                # Run again while events keep arriving, all under the same lock.
                await self.locks.take_again(record_id)
                while True:
                    async with self.locks.renewing(record_id, token) as lease:
                        outcome = await self._sync_leased(lease, record_id, trigger, options)
                    if outcome.result is Result.LOCKED or not await self.locks.take_again(record_id):
                        break
                    trigger = Trigger.SWEEP
            finally:
                await self.locks.release(record_id, token)
            if outcome.result is Result.LOCKED:
                break  # the lease was lost mid-run: the "again" flag is the new holder's
            # An event that arrived between our last check and the release.
            if not await self.locks.take_again(record_id):
                break
            token = await self.locks.acquire(record_id)
            if token is None:
                break  # a newer holder runs it
            trigger = Trigger.SWEEP
        assert outcome is not None
        if outcome.result is not Result.LOCKED:
            await self.pending_advoware.discard(record_id)
        return outcome

    async def handle_espo_delete(self, record_id: str) -> Outcome:
        """EspoCRM record deleted: unlink (Advoware is never touched); see `Outcomes.unlinked`."""
        from services.errors import OperationError
        from services.sync.forget import forget

        try:
            # Under the record's lock: a sync still running would write its history or intent
            # back after the forget below. It finishes first (a sync is seconds; bounded wait).
            async with self.locks.holding(record_id, wait=self.locks.ttl_seconds):
                outcome = await self.outcomes.unlinked(record_id)
                if self.recorder is not None:
                    await self.recorder.after_sync(outcome, "delete")
                if outcome.result is Result.UNLINKED:
                    # The record is gone from EspoCRM: so are the service's copies of its personal
                    # data (snapshot, history, ...). The deletion notice waiting for delivery stays.
                    await forget(self.systems.redis, record_id, keep_outbox=True)
        except OperationError:  # still locked after the wait: BullMQ retries the delete event
            raise TimeoutError(f"record {record_id} still locked by a sync; delete retried") from None
        return outcome

    async def plan_pair(
        self, record_id: str, espo: Mapping[str, Any], advo: Mapping[str, Any], betnr: int
    ) -> tuple[MergePlan, Snapshot | None]:
        return await self.planner.plan_pair(record_id, espo, advo, betnr)

    async def plan_record(self, record_id: str, trigger: Trigger = Trigger.MANUAL) -> RecordPlan:
        return await self.planner.plan_record(record_id, trigger)

    # ------------------------------------------------------------------ under the lock
    async def _sync_leased(
        self, lease: Lease, record_id: str, trigger: Trigger, options: SyncOptions
    ) -> Outcome:
        """One run whose every write first checks that the lease is still ours: a run that lost
        it (expired while Redis or the process stalled, or force-released) stops before its next
        write, so two runs never write one record at once and a create is never POSTed twice."""
        reset = write_check.set(lease.ensure_held)
        try:
            return await self._sync_locked(record_id, trigger, options)
        except LeaseLost:
            return await self._lease_lost(record_id)
        finally:
            write_check.reset(reset)

    async def _lease_lost(self, record_id: str) -> Outcome:
        """Recorded, nothing written: whoever holds the lease now runs the record once more."""
        log.warning("record %s: lease lost mid-sync; stopped before the next write", record_id)
        await self.metrics.count(Stat.LEASE_LOST)
        await self.locks.mark_again(record_id)
        return Outcome(record_id, Result.LOCKED, reason="lease lost mid-sync")

    async def _sync_locked(
        self, record_id: str, trigger: Trigger, options: SyncOptions = DEFAULT_OPTIONS
    ) -> Outcome:
        """One run: admission (breakers, parked, back-off), read, create or update, record errors."""
        waiting = await self.admission.circuit_open(record_id)
        if waiting is not None:
            return waiting
        try:
            espo = await self.systems.espo.get(ENTITY, record_id)
        except NotFoundError:
            log.info("record %s no longer exists in EspoCRM", record_id)
            return Outcome(record_id, Result.SKIPPED, reason="not in EspoCRM")
        except ApiError as exc:
            return await self.outcomes.unreadable(record_id, exc)
        status, held = await self.admission.admit(record_id, espo, trigger)
        if held is not None:
            return held
        transition(status, SyncStatus.SYNCING)
        ctx = RecordContext(record_id=record_id, espo=espo, status=status, options=options, trigger=trigger)
        try:
            betnr = as_int(espo.get("betnr"))
            if betnr is None:
                outcome = await self.creator.create(ctx)
            else:
                outcome = await self.updater.update(ctx, betnr, trigger)
        except RECORDED_ERRORS as exc:
            return await self.outcomes.record_error(ctx, exc)
        return outcome
