"""The sweep: find every record that needs work, cheaply, and hand it to the sync step.

Sources (each paged, none capped, each costing calls in proportion to what it finds):
1. EspoCRM records in `pending_sync` / `dirty` / no status yet;
2. `failed` records whose back-off has elapsed (syncRetryCount, modifiedAt);
3. `syncing` records whose lock holder died (modifiedAt older than the stale limit);
4. `clean` records not verified for 24 h (advowareLastSync), as daily checks;
5. EspoCRM changes since a watermark (modifiedAt): the safety net for webhooks EspoCRM
   gave up on after 4 attempts; our own writes are recognised via the snapshot and the
   modifiedAt of our last write; a person's edit of a record parked as `permanently_failed`
   or `deleted_in_advoware` requeues it (trigger `espocrm_edit`), as its webhook would;
6. Advoware changes since a watermark (geaendertAm, in ADVOWARE_TIMEZONE): Advoware sends no
   webhooks, so this is how an Advoware edit reaches EspoCRM within one interval
   (services/sync/advoware_watch.py: watermark guard, pending set, cost per change);
7. hourly, one complete Advoware listing (services/sync/deletions.py): linked parties
   missing from it, and those whose row differs from the snapshot (by rowId or content), so
   an edit whose stamp is missing, late or in another zone still arrives within the hour.

Before any of that, the circuit breakers (services/sync/breaker.py `release`, which the
every-minute cron runs too): a system whose breaker is open gets one cheap (spaced) probe; if
it still fails, the sweep collects and emits nothing (every sync needs both systems) and keeps
its watermarks; if it answers, the breaker closes and the records that waited are emitted at
once, oldest first (trigger `retry_now`: no back-off to wait out).

Watermarks are committed only after the found work was emitted (`commit`), and move to
the newest change actually seen, never to "now": a crash mid-sweep re-reads, and an
overlap window re-reads the boundary (re-reading is harmless, missing is not).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.errors import ApiError
from services.espocrm.fields import ADVOWARE_LAST_SYNC, SYNC_RETRY_COUNT, SYNC_STATUS
from services.store import keys
from services.store.lease import Lease
from services.store.service_records import last_sweep
from services.sync.backoff import retry_due_at
from services.sync.breaker import CircuitBreakers
from services.sync.deletions import DeletionGuard, DeletionScan
from services.sync.deps import Stores, Systems
from services.sync.fault import is_system_fault
from services.sync.model import ENTITY, Trigger
from services.sync.states import SyncStatus

if TYPE_CHECKING:
    from services.sync.advoware_watch import AdvowareWatch

log = logging.getLogger(__name__)

DAILY_CHECK_AGE = timedelta(hours=24)


# When several sources find one record, the strongest trigger wins: a release skips the
# back-off, a real change beats a daily check.
TRIGGER_RANK = {Trigger.ESPO_EDIT: 4, Trigger.RETRY_NOW: 3, Trigger.SWEEP: 2, Trigger.DAILY_CHECK: 1}


@dataclass
class SweepPlan:
    """Work found by one sweep: record id -> trigger, plus the watermarks to commit."""

    work: dict[str, Trigger] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    advo_watermark: datetime | None = None
    espo_watermark: datetime | None = None
    advoware_only_betnrs: list[int] = field(default_factory=list)
    # Systems whose breaker is still open after the probe: nothing was collected.
    blocked: list[str] = field(default_factory=list)
    deletion_scan_started: datetime | None = None  # a complete deletion scan ran (commit it)

    def add(self, source: str, ids: Iterable[str], trigger: Trigger = Trigger.SWEEP) -> None:
        n = 0
        for record_id in ids:
            n += 1
            # A record found by several sources is synced once, with the strongest trigger.
            old = self.work.get(record_id)
            if old is None or TRIGGER_RANK[trigger] > TRIGGER_RANK.get(old, 0):
                self.work[record_id] = trigger
        self.counts[source] = self.counts.get(source, 0) + n

    def batches(self, size: int) -> list[tuple[Trigger, list[str]]]:
        out: list[tuple[Trigger, list[str]]] = []
        for trigger in sorted(TRIGGER_RANK, key=TRIGGER_RANK.__getitem__, reverse=True):
            ids = [i for i, t in self.work.items() if t is trigger]
            out.extend((trigger, ids[i : i + size]) for i in range(0, len(ids), size))
        return out

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"records": len(self.work), "by_source": dict(self.counts)}
        if self.blocked:
            out["breaker_open"] = list(self.blocked)
        return out


def _espo_dt(dt: datetime) -> str:
    from services.espocrm.datetime import format_espo_datetime

    return format_espo_datetime(dt)


@dataclass(kw_only=True)
class Sweeper:
    """Built by the composition root (services/runtime.py `Runtime.sweeper`), which passes the
    tunables from `Settings` and the service's breakers, deletion guard and Advoware poll."""

    systems: Systems
    stores: Stores
    watch: AdvowareWatch  # the Advoware change poll (source 6)
    stale_syncing_age: timedelta  # SYNC_STALE_SYNCING_SECONDS
    retry_base: timedelta  # SYNC_RETRY_BASE_SECONDS
    breakers: CircuitBreakers
    deletions: DeletionGuard
    deletion_scan_interval: timedelta  # SYNC_DELETION_SCAN_SECONDS

    def __post_init__(self) -> None:
        redis = self.systems.redis
        self.deletion_scan = DeletionScan(
            advo=self.systems.advo, redis=redis, guard=self.deletions, interval=self.deletion_scan_interval
        )
        self.snapshots = self.stores.snapshots
        self.own_writes = self.stores.own_writes
        self.espo_watermark = self.stores.espo_watermark
        self.advo_watermark = self.watch.mark

    # ------------------------------------------------------------------ locking
    async def claim_tick(self, tick: str) -> bool:
        """One cron run per tick across all `make serve` instances sharing the Redis."""
        return await self.stores.ticks.claim_sweep(tick)

    def lease(self) -> Lease:
        """The sweep's lease: one sweep at a time; `async with` renews it while the sweep runs."""
        return Lease(self.systems.redis, keys.SWEEP_RUNNING, keys.SWEEP_LEASE_SECONDS)

    # ------------------------------------------------------------------ collecting
    async def collect(self, now: datetime | None = None) -> SweepPlan:
        now = now or self.systems.clock()
        plan = SweepPlan()
        if not await self._probe_breakers(plan):
            log.warning("sweep: circuit open for %s; nothing collected", ",".join(plan.blocked))
            return plan
        await self.deletions.new_window()
        try:
            await self._collect_statuses(plan, now)
            await self._collect_espo_changes(plan, now)
            await self._collect_advoware_changes(plan, now)
            await self._collect_advoware_deletions(plan, now)
        except ApiError as exc:
            # A sweep's read that points at the system is confirmed by a probe like a record's.
            if is_system_fault(exc):
                await self.breakers.confirm(exc, None)
            raise
        log.info("sweep found %d records: %s", len(plan.work), json.dumps(plan.counts, sort_keys=True))
        return plan

    async def _probe_breakers(self, plan: SweepPlan) -> bool:
        """One (spaced) probe per open breaker; True if every system may be used (then the
        records that waited are released into the plan)."""
        release = await self.breakers.release()
        plan.blocked.extend(release.blocked)
        if release.blocked:
            return False
        plan.add("released", release.ids, Trigger.RETRY_NOW)
        return True

    async def _ids(self, where: list[dict[str, Any]], select: str = "id") -> list[dict[str, Any]]:
        return [row async for row in self.systems.espo.iterate(ENTITY, where=where, select=select)]

    async def _collect_statuses(self, plan: SweepPlan, now: datetime) -> None:
        pending = await self._ids(
            [{"type": "in", "attribute": SYNC_STATUS, "value": [SyncStatus.PENDING_SYNC, SyncStatus.DIRTY]}]
        )
        plan.add("pending_or_dirty", (r["id"] for r in pending))
        unset = await self._ids([{"type": "isNull", "attribute": SYNC_STATUS}])
        plan.add("no_status", (r["id"] for r in unset))

        failed = await self._ids(
            [{"type": "equals", "attribute": SYNC_STATUS, "value": SyncStatus.FAILED}],
            select=f"id,{SYNC_RETRY_COUNT},modifiedAt",
        )
        due = [r["id"] for r in failed if (at := retry_due_at(r, self.retry_base)) is None or at <= now]
        plan.add("failed_due", due)

        stale = await self._ids(
            [
                {"type": "equals", "attribute": SYNC_STATUS, "value": SyncStatus.SYNCING},
                {
                    "type": "before",
                    "attribute": "modifiedAt",
                    "value": _espo_dt(now - self.stale_syncing_age),
                },
            ]
        )
        plan.add("stale_syncing", (r["id"] for r in stale))

        old_clean = await self._ids(
            [
                {"type": "equals", "attribute": SYNC_STATUS, "value": SyncStatus.CLEAN},
                {"type": "before", "attribute": ADVOWARE_LAST_SYNC, "value": _espo_dt(now - DAILY_CHECK_AGE)},
            ]
        )
        never = await self._ids(
            [
                {"type": "equals", "attribute": SYNC_STATUS, "value": SyncStatus.CLEAN},
                {"type": "isNull", "attribute": ADVOWARE_LAST_SYNC},
            ]
        )
        plan.add("daily_check", [r["id"] for r in old_clean] + [r["id"] for r in never], Trigger.DAILY_CHECK)

    async def _collect_espo_changes(self, plan: SweepPlan, now: datetime) -> None:
        from services.espocrm.datetime import parse_espo_datetime

        mark = await self.espo_watermark.read(now)
        rows = await self._ids(
            [
                {
                    "type": "after",
                    "attribute": "modifiedAt",
                    "value": _espo_dt(self.espo_watermark.read_from(mark)),
                }
            ],
            select=f"id,modifiedAt,{SYNC_STATUS}",
        )
        snaps = await self.snapshots.get_many([r["id"] for r in rows])
        own = await self.own_writes.get_many([r["id"] for r in rows])
        changed, parked = [], []
        newest = mark
        for row in rows:
            modified = row.get("modifiedAt")
            if modified:
                newest = max(newest, parse_espo_datetime(modified))
            snap = snaps.get(row["id"])
            if (snap is not None and snap.espo_modified_at == modified) or own.get(row["id"]) == modified:
                continue  # our own last write (data, status or failure metadata): no one's edit
            if row.get(SYNC_STATUS) in (SyncStatus.PERMANENTLY_FAILED, SyncStatus.DELETED_IN_ADVOWARE):
                parked.append(row["id"])  # parked, and a person edited it since: requeued
                continue
            changed.append(row["id"])
        plan.add("espocrm_changed", changed)
        plan.add("espocrm_edited_parked", parked, Trigger.ESPO_EDIT)
        plan.espo_watermark = newest

    async def _collect_advoware_changes(self, plan: SweepPlan, now: datetime) -> None:
        changes = await self.watch.collect(now)
        plan.add("advoware_changed", changes.ids)
        plan.add("advoware_unfinished", changes.unfinished)
        plan.advoware_only_betnrs.extend(changes.advoware_only)
        plan.counts["advoware_only"] = len(plan.advoware_only_betnrs)
        plan.advo_watermark = changes.watermark

    async def _collect_advoware_deletions(self, plan: SweepPlan, now: datetime) -> None:
        """Hourly: linked parties missing from a complete Advoware listing, and those whose row
        differs from the snapshot (services/sync/deletions.py)."""
        if not await self.deletion_scan.due(now):
            return
        result = await self.deletion_scan.run(now)
        plan.counts["advoware_listed"] = result.listed
        if result.held:
            plan.counts["advoware_missing_held"] = len(result.missing)
        else:
            plan.add("advoware_missing", result.missing.values())
        # Edits the change poll's stamp did not show (the row differs from its snapshot).
        plan.add("advoware_scan_changed", result.changed.values())
        plan.deletion_scan_started = now

    async def commit(self, plan: SweepPlan) -> None:
        """After every batch was emitted: advance the watermarks to what was processed."""
        if plan.advo_watermark is not None:
            await self.advo_watermark.commit(plan.advo_watermark)
        if plan.espo_watermark is not None:
            await self.espo_watermark.commit(plan.espo_watermark)
        if plan.deletion_scan_started is not None:
            await self.deletion_scan.done(plan.deletion_scan_started)
        await last_sweep(self.systems.redis).put({"at": datetime.now(UTC).isoformat(), **plan.summary()})
