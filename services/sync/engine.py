"""The per-record sync (I/O side). Decisions are delegated to `decide.py` (pure) and the
mapper; this module only reads, locks, writes and records.

    sync_record(id):  lock -> read EspoCRM -> [create | read Advoware -> decide -> write]
                      -> snapshot -> status -> unlock (-> once more if events came in)

Write budget (echo prevention): a person's edit of one field on one side costs exactly
one data write to the other side plus sync metadata (status, advowareLastSync) on the
EspoCRM record; a look that finds nothing to do writes nothing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from services.errors import ApiError, AuthError, FatalError, NotFoundError, TransientError
from services.redis_store import key
from services.sync.backoff import RETRY_BASE, OwnWrites, retry_due_at
from services.sync.breaker import SYSTEMS, CircuitBreakers, is_system_failure
from services.sync.decide import FieldConflict, MergePlan, decide
from services.sync.intents import CreateIntent, IntentStore
from services.sync.lock import RecordLocks
from services.sync.notify import Notifier, record_event
from services.sync.snapshot import Snapshot, SnapshotStore
from services.sync.states import SyncStatus, transition

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from redis.asyncio import Redis

log = logging.getLogger(__name__)

ENTITY = "CBeteiligte"
# Without a snapshot, a change time within this window after advowareLastSync is taken to
# be our own metadata write, not a person's edit.
OWN_WRITE_TOLERANCE = timedelta(seconds=30)
# An intent without betnr: look for a record we may have created since this long before.
INTENT_LOOKBACK = timedelta(minutes=5)
# Records the Advoware poll emitted whose sync has not finished yet (id -> emit time, a
# sorted set); see services/sync/advoware_watch.py. Cleared here when a sync records an outcome.
PENDING_ADVOWARE = key("pending", "advoware")
# Held while a first-run backfill works (services/sync/backfill.py): creates in Advoware wait
# until it has linked the existing pairs, so nothing is created twice.
BACKFILL_RUNNING = key("backfill", "running")
# Conflicts whose EspoCRM value is being written to Advoware, until they are reported. A PUT can
# be applied although its answer is lost (timeout, dropped connection); the next run then finds
# both sides equal and sees no conflict, so the person is told from this record instead.
PENDING_CONFLICT_TTL_SECONDS = 14 * 24 * 3600


def pending_conflicts_key(record_id: str) -> str:
    return key("conflict", "pending", record_id)


class EspoApi(Protocol):
    async def get(self, entity: str, record_id: str) -> dict[str, Any]: ...
    async def create(self, entity: str, data: Mapping[str, Any]) -> dict[str, Any]: ...
    async def update(self, entity: str, record_id: str, data: dict[str, Any]) -> dict[str, Any]: ...


class AdvowareApi(Protocol):
    async def get_beteiligter(self, betnr: int) -> dict[str, Any]: ...
    async def create_beteiligter(self, payload: dict[str, Any]) -> dict[str, Any]: ...
    async def update_beteiligter(self, betnr: int, payload: dict[str, Any]) -> dict[str, Any]: ...
    def iter_beteiligte(
        self, *, changed_since_local: str | None = None, take: int = 100
    ) -> AsyncIterator[dict[str, Any]]: ...


class Trigger(StrEnum):
    WEBHOOK_CREATE = "create"
    WEBHOOK_UPDATE = "update"
    SWEEP = "sync_check"  # pending/dirty/failed/stale lock, or an Advoware-side change
    DAILY_CHECK = "daily_check"  # clean record not verified for 24 h
    MANUAL = "manual"  # ops `sync <id>`
    RETRY_NOW = "retry_now"  # breaker released it, or an operator retries: no back-off


class Result(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED_IN_ADVOWARE = "deleted_in_advoware"
    FAILED = "failed"
    PERMANENTLY_FAILED = "permanently_failed"
    LOCKED = "locked"  # another worker holds the record; it will run once more for us
    SKIPPED = "skipped"  # record gone from EspoCRM, parked for a person, or back-off not due
    WAITING = "waiting"  # a system's circuit breaker is open: released when it closes
    UNLINKED = "unlinked"


@dataclass
class Outcome:
    record_id: str
    result: Result
    plan: MergePlan | None = None
    betnr: int | None = None
    reason: str | None = None
    writes: dict[str, int] = field(default_factory=lambda: {"espo": 0, "advo": 0})


def utcnow() -> datetime:
    return datetime.now(UTC)


class SyncEngine:
    def __init__(
        self,
        *,
        espo: EspoApi,
        advo: AdvowareApi,
        redis: Redis,
        tz: ZoneInfo,
        notify_user_id: str | None = None,
        notify_user_name: str | None = None,
        max_attempts: int = 8,
        lock_ttl_seconds: float = 120.0,
        mirror_syncing: bool = True,
        clock: Callable[[], datetime] | None = None,
        defer_creates_during_backfill: bool = True,
        breakers: CircuitBreakers | None = None,
        retry_base: timedelta = RETRY_BASE,
    ) -> None:
        self.espo = espo
        self.advo = advo
        self.redis = redis
        self.tz = tz
        self.locks = RecordLocks(redis, lock_ttl_seconds)
        self.snapshots = SnapshotStore(redis)
        self.intents = IntentStore(redis)
        self.notifier = Notifier(espo, redis, notify_user_id, notify_user_name)
        self.max_attempts = max_attempts
        self.mirror_syncing = mirror_syncing
        self.now = clock or utcnow
        self.breakers = breakers or CircuitBreakers(redis, clock=self.now)
        self.own_writes = OwnWrites(redis)
        self.retry_base = retry_base
        # False only for the backfill's own engine (it holds BACKFILL_RUNNING itself).
        self.defer_creates_during_backfill = defer_creates_during_backfill

    # ------------------------------------------------------------------ entry points
    async def sync_many(
        self, record_ids: Sequence[str], trigger: Trigger, concurrency: int = 8
    ) -> list[Outcome]:
        """Sync a batch concurrently (bulk paths: one Motia event, many records)."""
        sem = asyncio.Semaphore(concurrency)

        async def one(record_id: str) -> Outcome:
            async with sem:
                try:
                    return await self.sync_record(record_id, trigger)
                except Exception as exc:  # one broken record must not stop the batch
                    log.error("sync of %s crashed: %s", record_id, type(exc).__name__)
                    return Outcome(record_id, Result.FAILED, reason=type(exc).__name__)

        return list(await asyncio.gather(*(one(i) for i in dict.fromkeys(record_ids))))

    async def sync_record(self, record_id: str, trigger: Trigger = Trigger.SWEEP) -> Outcome:
        """Sync one record under its lock; events arriving meanwhile cause one more run."""
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
                    async with self._renewing(record_id, token):
                        outcome = await self._sync_locked(record_id, trigger)
                    if not await self.locks.take_again(record_id):
                        break
                    trigger = Trigger.SWEEP
            finally:
                await self.locks.release(record_id, token)
            # An event that arrived between our last check and the release.
            if not await self.locks.take_again(record_id):
                break
            token = await self.locks.acquire(record_id)
            if token is None:
                break  # a newer holder runs it
            trigger = Trigger.SWEEP
        assert outcome is not None
        if outcome.result is not Result.LOCKED:
            await self.redis.zrem(PENDING_ADVOWARE, record_id)
        return outcome

    @contextlib.asynccontextmanager
    async def _renewing(self, record_id: str, token: str) -> AsyncIterator[None]:
        """Renew the record lock while a sync works, so a slow sync (retries, a slow connector)
        never outlives its lock and lets a second worker in; a dead worker stops renewing and
        its lock expires after the TTL."""

        async def renew() -> None:
            interval = max(0.2, self.locks.ttl_ms / 3000)
            while True:
                await asyncio.sleep(interval)
                try:
                    if not await self.locks.extend(record_id, token):
                        log.warning("record %s: lock expired while syncing", record_id)
                        return
                except Exception as exc:  # Redis hiccup: try again next interval
                    log.warning("record %s: lock renewal failed: %s", record_id, type(exc).__name__)

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def handle_espo_delete(self, record_id: str) -> Outcome:
        """EspoCRM record deleted: never delete in Advoware; record the unlink and notify.

        Only once EspoCRM confirms the record is gone: EspoCRM signs the body only, so a signed
        batch replayed (or misrouted) to the delete endpoint must not unlink a live record."""
        try:
            await self.espo.get(ENTITY, record_id)
        except NotFoundError:
            pass
        else:
            log.warning("record %s: delete event, but the record still exists in EspoCRM; ignored", record_id)
            return Outcome(record_id, Result.SKIPPED, reason="still in EspoCRM")
        snap = await self.snapshots.get(record_id)
        intent = await self.intents.get(record_id)
        betnr = snap.betnr if snap else (intent.betnr if intent else None)
        await self.redis.zrem(PENDING_ADVOWARE, record_id)
        await self.redis.hset(
            key("unlinked", record_id),
            mapping={"at": self.now().isoformat(), "betnr": str(betnr) if betnr else ""},
        )
        await self.snapshots.delete(record_id)
        await self.intents.delete(record_id)
        await record_event(self.redis, "unlinked", record_id, f"betnr={betnr}" if betnr else None)
        if betnr:
            await self.notifier.notify(
                None,
                f"Beteiligter {record_id} wurde in EspoCRM gelöscht. Der Advoware-Beteiligte Nr. {betnr} "
                "bleibt unverändert bestehen; die Verknüpfung wurde aufgehoben.",
            )
        log.info(
            "record %s deleted in EspoCRM; unlinked from betnr %s (Advoware untouched)", record_id, betnr
        )
        return Outcome(record_id, Result.UNLINKED, betnr=betnr)

    # ------------------------------------------------------------------ read-only planning
    async def plan_pair(
        self, record_id: str, espo: Mapping[str, Any], advo: Mapping[str, Any], betnr: int
    ) -> tuple[MergePlan, Snapshot | None]:
        """What a sync of this pair would write (reads only the snapshot; writes nothing)."""
        from services.beteiligte import mapper

        snap = await self.snapshots.get(record_id)
        if snap is not None and snap.betnr != betnr:
            snap = None  # relinked by a person: the old snapshot belongs to another pair
        plan = decide(
            mapper.from_espo(espo),
            mapper.from_advo(advo),
            snap.content if snap else None,
            espo_changed_since_sync=self._espo_changed(espo),
            advo_changed_since_sync=self._advo_changed(espo, advo),
        )
        return plan, snap

    async def plan_record(self, record_id: str, trigger: Trigger = Trigger.MANUAL) -> RecordPlan:
        """The dry run of `sync_record`: GETs only, no lock, no write anywhere."""
        from services.beteiligte import mapper

        try:
            espo = await self.espo.get(ENTITY, record_id)
        except NotFoundError:
            return RecordPlan(record_id, "not_found", reason="not in EspoCRM")
        status = SyncStatus.parse(espo.get("syncStatus"))
        betnr = _as_int(espo.get("betnr"))
        out = RecordPlan(record_id, "update", status=status.value, betnr=betnr, espo=mapper.from_espo(espo))
        if status in PARKED and _stays_parked(status, espo, trigger):
            out.action, out.reason = "parked", f"parked as {status.value}"
            return out
        if betnr is None:
            out.action = "create"
            if await self.intents.get(record_id) is not None:
                out.reason = "an interrupted create will be completed (no second record)"
            return out
        try:
            advo = await self.advo.get_beteiligter(betnr)
        except NotFoundError:
            out.action, out.reason = "deleted_in_advoware", f"betnr {betnr} not found in Advoware"
            return out
        out.advo = mapper.from_advo(advo)
        out.plan, snap = await self.plan_pair(record_id, espo, advo, betnr)
        out.has_snapshot = snap is not None
        if out.plan.is_noop:
            out.action = "none"
        return out

    # ------------------------------------------------------------------ the sync
    async def _sync_locked(self, record_id: str, trigger: Trigger) -> Outcome:
        blocked = await self.breakers.open_states()
        if blocked:  # a system is down or refuses us: send nothing, wait for the sweep's probe
            await self.breakers.hold(sorted(blocked), record_id)
            return Outcome(record_id, Result.WAITING, reason="circuit open: " + ",".join(sorted(blocked)))
        try:
            espo = await self.espo.get(ENTITY, record_id)
        except NotFoundError:
            log.info("record %s no longer exists in EspoCRM", record_id)
            return Outcome(record_id, Result.SKIPPED, reason="not in EspoCRM")
        except ApiError as exc:
            return await self._unreadable(record_id, exc)
        status = SyncStatus.parse(espo.get("syncStatus"))
        if status in PARKED:
            if _stays_parked(status, espo, trigger):
                return Outcome(record_id, Result.SKIPPED, reason=f"parked as {status.value}")
            status = transition(status, SyncStatus.PENDING_SYNC)
        if status is SyncStatus.FAILED and await self._backoff_holds(espo, trigger):
            return Outcome(record_id, Result.SKIPPED, reason="back-off not due")
        transition(status, SyncStatus.SYNCING)
        ctx = _Ctx(record_id=record_id, espo=espo, status=status)
        try:
            betnr = _as_int(espo.get("betnr"))
            if betnr is None:
                outcome = await self._create(ctx)
            else:
                outcome = await self._update(ctx, betnr, trigger)
        except TransientError as exc:
            waiting = await self.breakers.record_failure(record_id, exc)
            return await self._record_failure(ctx, exc, permanent=False, count_attempt=not waiting)
        except AuthError as exc:
            # Configuration, not data (wrong password, App-ID not activated): every record
            # fails alike. The breaker opens at once; nothing is sent until the probe passes.
            log.error("authentication with %s failed; check the credentials in the settings", exc.system)
            await self.breakers.record_failure(record_id, exc)
            return await self._record_failure(ctx, exc, permanent=False, count_attempt=False)
        except FatalError as exc:
            return await self._record_failure(ctx, exc, permanent=True)
        except ValueError as exc:
            # The mapper refused to produce a payload: invalid data a person must fix.
            return await self._record_failure(ctx, exc, permanent=True)
        if outcome.result is not Result.WAITING:
            await self.breakers.record_success(*SYSTEMS)
        return outcome

    async def _unreadable(self, record_id: str, exc: ApiError) -> Outcome:
        """The first EspoCRM read failed. Handled like every other call (never raised: BullMQ
        would retry it 3 more times, and refused logins lock EspoCRM's IP out); nothing is
        written, the record keeps its state and the sweep finds it again."""
        log.warning("record %s: EspoCRM read failed: %s", record_id, _reason(exc))
        if is_system_failure(exc) and await self.breakers.record_failure(record_id, exc):
            return Outcome(record_id, Result.WAITING, reason=_reason(exc))
        return Outcome(record_id, Result.FAILED, reason=_reason(exc))

    async def _backoff_holds(self, espo: Mapping[str, Any], trigger: Trigger) -> bool:
        """A failed record found by a sweep source waits out its back-off unless someone edited
        it since our failure write (services/sync/backoff.py has the table)."""
        if trigger not in (Trigger.SWEEP, Trigger.DAILY_CHECK):
            return False
        if not await self.own_writes.untouched_since_our_write(espo):
            return False
        due = retry_due_at(espo, self.retry_base)
        return due is not None and due > self.now()

    async def _create(self, ctx: _Ctx) -> Outcome:
        from services.beteiligte import mapper

        content = mapper.from_espo(ctx.espo)
        intent = await self.intents.get(ctx.record_id)
        if (
            intent is None
            and self.defer_creates_during_backfill
            and await self.redis.exists(BACKFILL_RUNNING)
        ):
            # The backfill may be about to link this record to an existing Advoware record.
            log.info("record %s: create deferred while a backfill runs", ctx.record_id)
            return Outcome(ctx.record_id, Result.SKIPPED, reason="create deferred: backfill running")
        created: dict[str, Any] | None = None
        betnr: int | None = intent.betnr if intent else None
        # True when an earlier run created the Advoware record: it holds what was POSTed then,
        # and the EspoCRM record may have been edited since.
        recovered = False
        if intent is not None and betnr is None:
            found = await self._find_created(content, intent)
            if found is not None:
                betnr, created, recovered = _as_int(found.get("betNr")), found, True
                log.info(
                    "record %s: recovered Advoware record %s from an interrupted create", ctx.record_id, betnr
                )
        elif betnr is not None:
            try:
                created, recovered = await self.advo.get_beteiligter(betnr), True
            except NotFoundError:
                created = None
        if betnr is None:
            payload = mapper.to_advo_payload(content, None)
            await self._mark_syncing(ctx)
            intent = CreateIntent(
                ctx.record_id, started_at=self.now().isoformat(), content_hash=mapper.content_hash(content)
            )
            await self.intents.put(intent)
            created = await self.advo.create_beteiligter(payload)
            ctx.advo_writes += 1
            betnr = _as_int(created.get("betNr"))
            if betnr is None:
                raise TransientErrorNoBetnr(ctx.record_id)
            intent.betnr = betnr
            await self.intents.put(intent)
        assert betnr is not None
        now = self.now()
        saved = await self._finish(ctx, {"betnr": betnr}, now)
        # The pair agrees on what Advoware holds; a recovered create may be older than EspoCRM.
        agreed = mapper.from_advo(created) if recovered and created is not None else content
        await self.snapshots.put(
            Snapshot(
                espo_id=ctx.record_id,
                betnr=betnr,
                content=dict(agreed),
                content_hash=mapper.content_hash(agreed),
                synced_at=now.isoformat(),
                espo_modified_at=saved.get("modifiedAt"),
                advo_changed_at=(created or {}).get("geaendertAm"),
            )
        )
        await self.intents.delete(ctx.record_id)
        if agreed is not content and mapper.diff(content, agreed):
            # Edited in EspoCRM since the create: one more run writes the edit to Advoware.
            await self.locks.mark_again(ctx.record_id)
        await self._count("creates")
        log.info("record %s created in Advoware as betnr %s", ctx.record_id, betnr)
        return Outcome(ctx.record_id, Result.CREATED, betnr=betnr, writes=ctx.writes)

    async def _find_created(self, content: Mapping[str, Any], intent: CreateIntent) -> dict[str, Any] | None:
        from services.advoware.timezone import query_since_local
        from services.beteiligte import mapper

        since = datetime.fromisoformat(intent.started_at) - INTENT_LOOKBACK
        candidates: list[dict[str, Any]] = []
        async for row in self.advo.iter_beteiligte(
            changed_since_local=query_since_local(since, self.tz, timedelta(0))
        ):
            found = mapper.from_advo(row)
            # What was POSTed (the EspoCRM record may have been edited since), or what it is now.
            if mapper.content_hash(found) != intent.content_hash and mapper.diff(found, content):
                continue
            betnr = _as_int(row.get("betNr"))
            owner = await self.snapshots.espo_id_for_betnr(betnr) if betnr is not None else None
            if owner is not None and owner != intent.espo_id:
                continue  # the same content, but another EspoCRM record's pair
            candidates.append(row)
        # Several with that content (e.g. an earlier duplicate): ours is the newest.
        return max(
            candidates,
            key=lambda r: (str(r.get("angelegtAm") or ""), _as_int(r.get("betNr")) or 0),
            default=None,
        )

    async def _update(self, ctx: _Ctx, betnr: int, trigger: Trigger) -> Outcome:
        from services.beteiligte import mapper

        try:
            advo = await self.advo.get_beteiligter(betnr)
        except NotFoundError:
            return await self._deleted_in_advoware(ctx, betnr)
        plan, snap = await self.plan_pair(ctx.record_id, ctx.espo, advo, betnr)
        pending = await self._pending_conflicts(ctx.record_id, betnr)
        now = self.now()
        if plan.is_noop:
            saved = ctx.espo
            if ctx.status is not SyncStatus.CLEAN or trigger is Trigger.DAILY_CHECK:
                saved = await self._finish(ctx, {}, now)  # status / last-check metadata only
            if (
                snap is None
                or snap.content_hash != mapper.content_hash(plan.merged)
                or snap.espo_modified_at != saved.get("modifiedAt")
                or snap.advo_changed_at != advo.get("geaendertAm")
            ):
                await self._store_snapshot(ctx.record_id, betnr, plan.merged, now, saved, advo)
            if pending:  # an earlier run's write was applied although its answer was lost
                await self._report_conflicts(ctx.record_id, betnr, pending)
            await self._count("unchanged")
            return Outcome(ctx.record_id, Result.UNCHANGED, plan=plan, betnr=betnr, writes=ctx.writes)

        await self._mark_syncing(ctx)
        advo_after = advo
        if plan.conflicts:
            await self.redis.set(
                pending_conflicts_key(ctx.record_id),
                json.dumps(
                    {
                        "betnr": betnr,
                        "conflicts": [[c.field, c.espo_value, c.advo_value] for c in plan.conflicts],
                    }
                ),
                ex=PENDING_CONFLICT_TTL_SECONDS,
            )
        if plan.to_advo:
            payload = mapper.to_advo_payload(plan.merged, advo)
            advo_after = await self.advo.update_beteiligter(betnr, payload)
            ctx.advo_writes += 1
        patch = mapper.to_espo_patch(plan.merged, plan.to_espo, current=ctx.espo) if plan.to_espo else {}
        saved = await self._finish(ctx, patch, now)
        await self._store_snapshot(ctx.record_id, betnr, plan.merged, now, saved, advo_after)
        # Earlier conflicts whose write was applied unseen, unless this run found the same one.
        seen = {(c.field, json.dumps(c.advo_value, sort_keys=True)) for c in plan.conflicts}
        conflicts = list(plan.conflicts) + [
            c for c in pending if (c.field, json.dumps(c.advo_value, sort_keys=True)) not in seen
        ]
        if conflicts:
            await self._report_conflicts(ctx.record_id, betnr, conflicts)
        await self._count("updates")
        log.info(
            "record %s synced (betnr %s): to_advoware=%s to_espocrm=%s conflicts=%d basis=%s",
            ctx.record_id,
            betnr,
            sorted(plan.to_advo),
            sorted(plan.to_espo),
            len(plan.conflicts),
            plan.basis.value,
        )
        return Outcome(ctx.record_id, Result.UPDATED, plan=plan, betnr=betnr, writes=ctx.writes)

    async def _pending_conflicts(self, record_id: str, betnr: int) -> list[FieldConflict]:
        raw = await self.redis.get(pending_conflicts_key(record_id))
        if not raw:
            return []
        try:
            data = json.loads(raw)
            if data.get("betnr") != betnr:
                return []  # relinked since: those conflicts were about another pair
            return [FieldConflict(str(f), e, a) for f, e, a in data["conflicts"]]
        except (ValueError, TypeError, KeyError, AttributeError):
            return []

    async def _report_conflicts(self, record_id: str, betnr: int, conflicts: Sequence[FieldConflict]) -> None:
        """Count, log and tell a person, once the EspoCRM values are in Advoware."""
        from services.beteiligte import mapper

        await self._count("conflicts", len(conflicts))
        await record_event(self.redis, "conflict", record_id, ",".join(c.field for c in conflicts))
        lines = [
            f"- {c.field}: EspoCRM-Wert übernommen; überschriebener Advoware-Wert: "
            f"{mapper.describe(c.field, c.advo_value)}"
            for c in conflicts
        ]
        await self.notifier.notify(
            record_id,
            f"Konflikt beim Abgleich mit Advoware (Beteiligter Nr. {betnr}): beide Seiten wurden geändert. "
            "EspoCRM hat Vorrang.\n" + "\n".join(lines),
        )
        await self.redis.delete(pending_conflicts_key(record_id))

    async def _deleted_in_advoware(self, ctx: _Ctx, betnr: int) -> Outcome:
        from services.espocrm.datetime import format_espo_datetime

        target = transition(SyncStatus.SYNCING, SyncStatus.DELETED_IN_ADVOWARE)
        await self._write_espo(
            ctx,
            {
                "syncStatus": target.value,
                "advowareDeletedAt": format_espo_datetime(self.now()),
                "syncErrorMessage": f"Advoware-Beteiligter {betnr} existiert nicht mehr (404).",
            },
        )
        await self.snapshots.delete(ctx.record_id)
        await record_event(self.redis, "deleted_in_advoware", ctx.record_id, f"betnr={betnr}")
        await self.notifier.notify(
            ctx.record_id,
            f"Der Advoware-Beteiligte Nr. {betnr} existiert nicht mehr. Der EspoCRM-Datensatz bleibt erhalten "
            "und wird nicht mehr abgeglichen, bis er neu verknüpft wird.",
        )
        await self._count("deleted_in_advoware")
        log.info(
            "record %s: betnr %s not found in Advoware; marked deleted_in_advoware", ctx.record_id, betnr
        )
        return Outcome(ctx.record_id, Result.DELETED_IN_ADVOWARE, betnr=betnr, writes=ctx.writes)

    # ------------------------------------------------------------------ helpers
    async def _record_failure(
        self, ctx: _Ctx, exc: Exception, *, permanent: bool, count_attempt: bool = True
    ) -> Outcome:
        attempts = int(ctx.espo.get("syncRetryCount") or 0) + (1 if count_attempt else 0)
        if not permanent and count_attempt and attempts >= self.max_attempts:
            permanent = True
        target = SyncStatus.PERMANENTLY_FAILED if permanent else SyncStatus.FAILED
        transition(SyncStatus.SYNCING, target)
        reason = _reason(exc)
        try:
            await self._write_espo(
                ctx, {"syncStatus": target.value, "syncErrorMessage": reason, "syncRetryCount": attempts}
            )
        except ApiError as write_exc:
            # EspoCRM itself failed: the record keeps its state (the sweep finds it again).
            log.warning("record %s: failure not recorded in EspoCRM: %s", ctx.record_id, _reason(write_exc))
            if is_system_failure(write_exc):
                await self.breakers.record_failure(ctx.record_id, write_exc)
            return Outcome(ctx.record_id, Result.FAILED, reason=reason, writes=ctx.writes)
        await record_event(self.redis, "failure", ctx.record_id, reason)
        await self._count("permanent_failures" if permanent else "failures")
        log.warning(
            "record %s sync failed (attempt %d, %s): %s", ctx.record_id, attempts, target.value, reason
        )
        if permanent:
            await self.notifier.notify(
                ctx.record_id,
                f"Der Abgleich mit Advoware ist endgültig fehlgeschlagen (nach {attempts} Versuch(en)). "
                f"Grund: {reason}. Bitte Daten prüfen und den Abgleich erneut anstoßen.",
            )
        return Outcome(
            ctx.record_id,
            Result.PERMANENTLY_FAILED if permanent else Result.FAILED,
            reason=reason,
            writes=ctx.writes,
        )

    async def _mark_syncing(self, ctx: _Ctx) -> None:
        """Mirror the lock in EspoCRM for visibility - only when this sync writes anyway."""
        if not self.mirror_syncing or ctx.espo.get("syncStatus") == SyncStatus.SYNCING.value:
            return
        await self._write_espo(ctx, {"syncStatus": SyncStatus.SYNCING.value})

    async def _finish(self, ctx: _Ctx, data: dict[str, Any], now: datetime) -> dict[str, Any]:
        from services.espocrm.datetime import format_espo_datetime

        target = transition(SyncStatus.SYNCING, SyncStatus.CLEAN)
        body = dict(data)
        body.update(
            {
                "syncStatus": target.value,
                "advowareLastSync": format_espo_datetime(now),
                "syncErrorMessage": None,
                "syncRetryCount": 0,
            }
        )
        return await self._write_espo(ctx, body)

    async def _write_espo(self, ctx: _Ctx, data: dict[str, Any]) -> dict[str, Any]:
        saved = await self.espo.update(ENTITY, ctx.record_id, data)
        ctx.espo_writes += 1
        await self._count("espo_writes")
        if "syncStatus" in data:
            ctx.espo["syncStatus"] = data["syncStatus"]
        saved = saved if isinstance(saved, dict) else {}
        # Pollers recognise this write as ours by the modifiedAt it produced.
        await self.own_writes.put(ctx.record_id, saved.get("modifiedAt"))
        return saved

    async def _store_snapshot(
        self,
        record_id: str,
        betnr: int,
        content: Mapping[str, Any],
        now: datetime,
        espo_saved: Mapping[str, Any],
        advo_saved: Mapping[str, Any],
    ) -> None:
        from services.beteiligte import mapper

        await self.snapshots.put(
            Snapshot(
                espo_id=record_id,
                betnr=betnr,
                content=dict(content),
                content_hash=mapper.content_hash(content),
                synced_at=now.isoformat(),
                espo_modified_at=espo_saved.get("modifiedAt"),
                advo_changed_at=advo_saved.get("geaendertAm"),
            )
        )

    def _espo_changed(self, espo: Mapping[str, Any]) -> bool | None:
        from services.espocrm.datetime import parse_espo_datetime

        last, modified = espo.get("advowareLastSync"), espo.get("modifiedAt")
        if not last or not modified:
            return None
        return parse_espo_datetime(modified) > parse_espo_datetime(last) + OWN_WRITE_TOLERANCE

    def _advo_changed(self, espo: Mapping[str, Any], advo: Mapping[str, Any]) -> bool | None:
        from services.advoware.timezone import local_to_utc
        from services.espocrm.datetime import parse_espo_datetime

        last, changed = espo.get("advowareLastSync"), advo.get("geaendertAm")
        if not last or not changed:
            return None
        return local_to_utc(changed, self.tz) > parse_espo_datetime(last)

    async def _count(self, name: str, amount: int = 1) -> None:
        await self.redis.hincrby(key("stats"), name, amount)


@dataclass
class RecordPlan:
    """Result of `SyncEngine.plan_record`. `action`: create | update | none | parked |
    deleted_in_advoware | not_found. `espo` / `advo` are the canonical contents read."""

    record_id: str
    action: str
    status: str | None = None
    betnr: int | None = None
    plan: MergePlan | None = None
    espo: dict[str, Any] | None = None
    advo: dict[str, Any] | None = None
    has_snapshot: bool = False
    reason: str | None = None


@dataclass
class _Ctx:
    record_id: str
    espo: dict[str, Any]
    status: SyncStatus
    espo_writes: int = 0
    advo_writes: int = 0

    @property
    def writes(self) -> dict[str, int]:
        return {"espo": self.espo_writes, "advo": self.advo_writes}


class TransientErrorNoBetnr(TransientError):
    def __init__(self, record_id: str) -> None:
        super().__init__("create answered without betNr", system="advoware", record_id=record_id)


PARKED = frozenset({SyncStatus.PERMANENTLY_FAILED, SyncStatus.DELETED_IN_ADVOWARE, SyncStatus.CONFLICT})


def _stays_parked(status: SyncStatus, espo: Mapping[str, Any], trigger: Trigger) -> bool:
    """Parked for a person. A person's edit (webhook) or an operator's `sync` requeues it -
    deleted_in_advoware only once the stale betnr was cleared (relink), and a `conflict` (held
    by the backfill as a possible duplicate) only when a person linked it (set betnr) or an
    operator's `sync` says "create it anyway": an unrelated edit would create the duplicate."""
    linked = espo.get("betnr") not in (None, "")
    if status is SyncStatus.CONFLICT:
        return not (trigger is Trigger.MANUAL or linked)
    if status is SyncStatus.DELETED_IN_ADVOWARE and linked:
        return True
    return trigger not in (Trigger.WEBHOOK_UPDATE, Trigger.MANUAL)


def _as_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _reason(exc: Exception) -> str:
    if isinstance(exc, ApiError):
        return str(exc)[:500]
    return f"{type(exc).__name__}: {str(exc)[:300]}"
