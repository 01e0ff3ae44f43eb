"""How a sync ends, written down: every status write of the per-record sync goes through
this module (and from here through `states.transition`, the one choke point).

- `finish`: clean + advowareLastSync + cleared error, together with the sync's own changes.
- `record_error`: an API or mapping error, by whose fault it is (services/sync/fault.py): the
  system's, confirmed by a probe -> `waiting` (held for the system, no attempt counted, the
  record `pending_sync` with the reason); the record's -> `failed` (retried with back-off) or,
  for refused data, `permanently_failed` (notified).
- `deleted_in_advoware`, `unlinked`: the two ends where the pair no longer exists.
- `mark_syncing`, `store_snapshot`: the bookkeeping around a write.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.errors import ApiError, FatalError, InvalidDataError, NotFoundError, TransientError
from services.espocrm.fields import (
    ADVOWARE_DELETED_AT,
    ADVOWARE_LAST_SYNC,
    SYNC_ERROR_MESSAGE,
    SYNC_RETRY_COUNT,
    SYNC_STATUS,
)
from services.store.counters import EventKind, Stat
from services.sync import fingerprint, notify
from services.sync.breaker import System
from services.sync.fault import Fault, classify, is_system_fault
from services.sync.fingerprint import Fingerprint
from services.sync.linking import LinkDecision
from services.sync.model import ENTITY, Outcome, RecordContext, Result, as_int
from services.sync.snapshot import Snapshot, row_id
from services.sync.states import SyncStatus, transition

if TYPE_CHECKING:
    from services.sync.deps import OutcomeDeps

log = logging.getLogger(__name__)

# What a sync records on the record instead of raising: the error tree's API errors and the
# mapper's refusal (`InvalidDataError`, raised as `MappingError`). Anything else - a bare
# ValueError included - is a programming error and propagates (services/errors.py).
RECORDED_ERRORS = (TransientError, FatalError, InvalidDataError)


class Outcomes:
    def __init__(self, deps: OutcomeDeps, *, max_attempts: int) -> None:
        self._d = deps
        self.max_attempts = max_attempts

    # ------------------------------------------------------------------ failures
    async def record_error(
        self, ctx: RecordContext, exc: TransientError | FatalError | InvalidDataError
    ) -> Outcome:
        """Classify an error of this run (services/sync/fault.py) and record it on the record."""
        fault = classify(exc)
        if fault in (Fault.SYSTEM, Fault.CREDENTIALS):
            assert isinstance(exc, ApiError)
            if fault is Fault.CREDENTIALS:
                log.error("authentication with %s failed; check the credentials in the settings", exc.system)
            if await self._d.breakers.confirm(exc, ctx.record_id):
                return await self.waiting(ctx, exc)
            # A probe answered: the failure is this record's own (back-off, attempt counted).
        # DATA: FatalError (e.g. a 400 with the server's reason) or InvalidDataError (the
        # mapper refused to produce a payload): invalid data a person must fix.
        return await self.record_failure(ctx, exc, permanent=fault is Fault.DATA)

    async def waiting(self, ctx: RecordContext, exc: ApiError) -> Outcome:
        """The system is unavailable (its breaker is open, the record is held for it): no
        attempt counted, released the moment a probe answers. The record says so in EspoCRM
        (`pending_sync` and why) unless EspoCRM is the system that is down."""
        reason = failure_reason(exc)
        log.warning(
            "record %s waits for %s (unavailable; no attempt counted): %s",
            ctx.record_id,
            exc.system,
            log_reason(exc),
        )
        if exc.system != SYSTEM_ESPOCRM:
            target = transition(SyncStatus.SYNCING, SyncStatus.PENDING_SYNC)
            try:
                await self.write_espo(ctx, {SYNC_STATUS: target.value, SYNC_ERROR_MESSAGE: waiting_text(exc)})
            except ApiError as write_exc:  # EspoCRM failed too: the record keeps its state
                log.warning(
                    "record %s: waiting not recorded in EspoCRM: %s", ctx.record_id, log_reason(write_exc)
                )
                if is_system_fault(write_exc):
                    await self._d.breakers.confirm(write_exc, ctx.record_id)
        await self._d.metrics.count(Stat.WAITING)
        return Outcome(ctx.record_id, Result.WAITING, reason=reason, writes=ctx.writes)

    async def record_failure(self, ctx: RecordContext, exc: Exception, *, permanent: bool) -> Outcome:
        attempts = int(ctx.espo.get(SYNC_RETRY_COUNT) or 0) + 1
        if not permanent and attempts >= self.max_attempts:
            permanent = True
        target = SyncStatus.PERMANENTLY_FAILED if permanent else SyncStatus.FAILED
        transition(SyncStatus.SYNCING, target)
        reason = failure_reason(exc)
        try:
            await self.write_espo(
                ctx, {SYNC_STATUS: target.value, SYNC_ERROR_MESSAGE: reason, SYNC_RETRY_COUNT: attempts}
            )
        except ApiError as write_exc:
            # EspoCRM itself failed: the record keeps its state (the sweep finds it again).
            log.warning(
                "record %s: failure not recorded in EspoCRM: %s", ctx.record_id, log_reason(write_exc)
            )
            if is_system_fault(write_exc) and await self._d.breakers.confirm(write_exc, ctx.record_id):
                return Outcome(ctx.record_id, Result.WAITING, reason=reason, writes=ctx.writes)
            return Outcome(ctx.record_id, Result.FAILED, reason=reason, writes=ctx.writes)
        await self._d.recent.record(EventKind.FAILURE, ctx.record_id, reason)
        await self._d.metrics.count(Stat.PERMANENT_FAILURES if permanent else Stat.FAILURES)
        log.warning(
            "record %s sync failed (attempt %d, %s): %s",
            ctx.record_id,
            attempts,
            target.value,
            log_reason(exc),
        )
        if permanent:
            label = notify.record_label(
                ctx.record_id, name=ctx.espo.get("name"), betnr=as_int(ctx.espo.get("betnr"))
            )
            text = notify.permanently_failed_text(label, attempts, reason)
            if self._d.recorder is not None:  # one alert per record, one more when it syncs again
                await self._d.recorder.permanently_failed(ctx.record_id, text)
            else:
                await self._d.notifier.notify(ctx.record_id, text)
        return Outcome(
            ctx.record_id,
            Result.PERMANENTLY_FAILED if permanent else Result.FAILED,
            reason=reason,
            writes=ctx.writes,
        )

    async def unreadable(self, record_id: str, exc: ApiError) -> Outcome:
        """The first EspoCRM read failed. Handled like every other call (never raised: BullMQ
        would retry it 3 more times, and refused logins lock EspoCRM's IP out); nothing is
        written, the record keeps its state and the sweep finds it again."""
        reason = failure_reason(exc)
        log.warning("record %s: EspoCRM read failed: %s", record_id, log_reason(exc))
        if is_system_fault(exc) and await self._d.breakers.confirm(exc, record_id):
            log.warning("record %s waits for %s (unavailable; no attempt counted)", record_id, exc.system)
            return Outcome(record_id, Result.WAITING, reason=reason)
        return Outcome(record_id, Result.FAILED, reason=reason)

    # ------------------------------------------------------------------ the pair is gone
    async def deleted_in_advoware(self, ctx: RecordContext, betnr: int) -> Outcome:
        from services.espocrm.datetime import format_espo_datetime

        target = transition(SyncStatus.SYNCING, SyncStatus.DELETED_IN_ADVOWARE)
        await self.write_espo(
            ctx,
            {
                SYNC_STATUS: target.value,
                ADVOWARE_DELETED_AT: format_espo_datetime(self._d.systems.clock()),
                SYNC_ERROR_MESSAGE: f"Advoware-Beteiligter {betnr} existiert nicht mehr (404).",
            },
        )
        await self._d.snapshots.delete(ctx.record_id)
        await self._d.recent.record(EventKind.DELETED_IN_ADVOWARE, ctx.record_id, f"betnr={betnr}")
        label = notify.record_label(ctx.record_id, name=ctx.espo.get("name"), betnr=betnr)
        await self._d.notifier.notify(ctx.record_id, notify.deleted_in_advoware_text(label, betnr))
        await self._d.metrics.count(Stat.DELETED_IN_ADVOWARE)
        log.info(
            "record %s: betnr %s not found in Advoware; marked deleted_in_advoware", ctx.record_id, betnr
        )
        return Outcome(ctx.record_id, Result.DELETED_IN_ADVOWARE, betnr=betnr, writes=ctx.writes)

    async def unlinked(self, record_id: str) -> Outcome:
        """EspoCRM record deleted: never delete in Advoware; record the unlink and notify.

        Only once EspoCRM confirms the record is gone: EspoCRM signs the body only, so a signed
        batch replayed (or misrouted) to the delete endpoint must not unlink a live record."""
        d = self._d
        try:
            await d.systems.espo.get(ENTITY, record_id)
        except NotFoundError:
            pass
        else:
            log.warning("record %s: delete event, but the record still exists in EspoCRM; ignored", record_id)
            return Outcome(record_id, Result.SKIPPED, reason="still in EspoCRM")
        snap = await d.snapshots.get(record_id)
        intent = await d.intents.get(record_id)
        betnr = snap.betnr if snap else (intent.betnr if intent else None)
        await d.pending_advoware.discard(record_id)
        await d.snapshots.delete(record_id)
        await d.intents.delete(record_id)
        await d.recent.record(EventKind.UNLINKED, record_id, f"betnr={betnr}" if betnr else None)
        if betnr:
            name = notify.display_name(snap.content) if snap else None
            label = notify.record_label(record_id, name=name, betnr=betnr)
            await d.notifier.notify(None, notify.deleted_in_espocrm_text(label, betnr))
        log.info(
            "record %s deleted in EspoCRM; unlinked from betnr %s (Advoware untouched)", record_id, betnr
        )
        return Outcome(record_id, Result.UNLINKED, betnr=betnr)

    # ------------------------------------------------------------------ status writes
    async def mark_syncing(self, ctx: RecordContext) -> None:
        """Mirror the lock in EspoCRM for visibility - only when this sync writes anyway. Sent
        with the version read, like every write of the chain that ends in `finish`: a person's
        save since the read raises VersionConflictError (the caller reads again and decides
        again) instead of being laundered into the version `finish` sends."""
        if ctx.espo.get(SYNC_STATUS) == SyncStatus.SYNCING.value:
            return
        await self.write_espo(ctx, {SYNC_STATUS: SyncStatus.SYNCING.value}, versioned=True)

    async def finish(
        self,
        ctx: RecordContext,
        data: dict[str, Any],
        now: datetime,
        *,
        advo: Mapping[str, Any] | None,
        message: str | None = None,
        prints: Fingerprint | None = None,
    ) -> dict[str, Any]:
        """Write the sync's EspoCRM changes together with clean status and advowareLastSync.
        Sent with the versionNumber of the read the decision was based on (or of this run's own
        versioned write since), so that EspoCRM refuses it (VersionConflictError) if a person
        saved the record since: the caller reads again and decides again (services/sync/update.py).
        `now`: taken after the Advoware write; `advo`: the Advoware record both sides now agree
        with (its stamp bounds advowareLastSync, planning.synced_until). `message`
        (syncErrorMessage) reports what a write did not apply (services/sync/verify.py). `prints`:
        the fingerprint of what both sides hold now, written with the values it describes
        (services/sync/fingerprint.py)."""
        from services.espocrm.datetime import format_espo_datetime
        from services.sync.planning import synced_until

        target = transition(SyncStatus.SYNCING, SyncStatus.CLEAN)
        body = dict(data)
        body.update(
            {
                SYNC_STATUS: target.value,
                ADVOWARE_LAST_SYNC: format_espo_datetime(synced_until(now, advo, self._d.systems.tz)),
                SYNC_ERROR_MESSAGE: message,
                SYNC_RETRY_COUNT: 0,
            }
        )
        if prints is not None:
            body[fingerprint.FIELD] = prints.encode()
        return await self.write_espo(ctx, body, versioned=True)

    async def report_unapplied(
        self, ctx: RecordContext, message: str, fields: list[str], *, espo_only: bool
    ) -> None:
        """A write answered without storing everything sent (services/sync/verify.py): the
        record says so (syncErrorMessage; written here when only EspoCRM's answer differed,
        since `finish` carried Advoware's) and a person gets a note."""
        if espo_only:
            await self.write_espo(ctx, {SYNC_ERROR_MESSAGE: message})
        await self._d.recent.record(EventKind.UNAPPLIED, ctx.record_id, ",".join(fields))  # names, no values
        await self._d.metrics.count(Stat.UNAPPLIED_WRITES)
        await self._d.notifier.notify(ctx.record_id, message)
        log.warning("record %s: a write was not fully applied (reported on the record)", ctx.record_id)

    async def hold(self, ctx: RecordContext, decision: LinkDecision) -> Outcome:
        """Hold the record for a person (`conflict`): a link the identity rule or the betnr
        uniqueness check would not make (services/sync/linking.py). Advoware is not touched;
        a note goes to the record and to the other records involved. Held again for the same
        reason: nothing is written twice."""
        target = transition(SyncStatus.SYNCING, SyncStatus.CONFLICT)
        outcome = Outcome(ctx.record_id, Result.HELD, betnr=decision.betnr, reason=decision.message)
        if ctx.espo.get(SYNC_ERROR_MESSAGE) == decision.message and ctx.held_before:
            return outcome
        await self.write_espo(ctx, {SYNC_STATUS: target.value, SYNC_ERROR_MESSAGE: decision.message})
        await self._d.recent.record(EventKind.HELD, ctx.record_id, decision.message[:300])
        await self._d.metrics.count(Stat.HELD)
        for record_id in (ctx.record_id, *decision.related):
            await self._d.notifier.notify(record_id, f"Datensatz {ctx.record_id}: {decision.message}")
        log.warning(
            "record %s held as conflict (betnr %s, candidates %s, related %s)",
            ctx.record_id,
            decision.betnr,
            [b for b, _ in decision.candidates],
            list(decision.related),
        )
        return outcome

    async def write_espo(
        self, ctx: RecordContext, data: dict[str, Any], *, versioned: bool = False
    ) -> dict[str, Any]:
        """`versioned`: sent with the version of the read (or of this run's last versioned write);
        EspoCRM refuses it with 409 (VersionConflictError) if the record was saved since."""
        version = ctx.espo.get("versionNumber")
        sent = version if versioned and isinstance(version, int) and not isinstance(version, bool) else None
        if sent is not None:
            saved = await self._d.systems.espo.update(ENTITY, ctx.record_id, data, version_number=sent)
        else:
            saved = await self._d.systems.espo.update(ENTITY, ctx.record_id, data)
        ctx.espo_writes += 1
        await self._d.metrics.count(Stat.ESPO_WRITES)
        if SYNC_STATUS in data:
            ctx.espo[SYNC_STATUS] = data[SYNC_STATUS]
        saved = saved if isinstance(saved, dict) else {}
        if sent is not None and "versionNumber" in saved:
            # Only a versioned write that passed proves nobody saved since the read: the next
            # versioned write of this run sends the version it produced. Adopting the answer of an
            # unversioned write would launder a person's save into it (issue 20).
            ctx.espo["versionNumber"] = saved["versionNumber"]
        # Pollers recognise this write as ours by the modifiedAt it produced.
        await self._d.own_writes.put(ctx.record_id, saved.get("modifiedAt"))
        return saved

    async def note_in_doubt(self, snap: Snapshot | None, sent: Mapping[str, Any]) -> None:
        """Right before a write of values: what the run is sending (services/sync/in_doubt.py
        `record`), kept with the (settled) snapshot until the run's own snapshot replaces it.
        A first sync (no snapshot) records nothing: its rules run again as they are."""
        if snap is None:
            return
        await self._d.snapshots.put(replace(snap, in_doubt=dict(sent)))

    async def store_snapshot(
        self,
        record_id: str,
        betnr: int,
        content: Mapping[str, Any],
        now: datetime,
        espo_saved: Mapping[str, Any],
        advo_saved: Mapping[str, Any] | None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """The content both sides agree on, with the change stamps our own writes produced."""
        from services.beteiligte import mapper

        await self._d.snapshots.put(
            Snapshot(
                espo_id=record_id,
                betnr=betnr,
                content=dict(content),
                content_hash=mapper.content_hash(content),
                synced_at=now.isoformat(),
                espo_modified_at=espo_saved.get("modifiedAt"),
                advo_changed_at=(advo_saved or {}).get("geaendertAm"),
                advo_row_id=row_id(advo_saved),
                extra={k: v for k, v in (extra or {}).items() if v},
            )
        )


SYSTEM_ESPOCRM = System.ESPOCRM.value
SYSTEM_LABELS = {System.ESPOCRM.value: "EspoCRM", System.ADVOWARE.value: "Advoware"}


def waiting_text(exc: ApiError) -> str:
    """What a waiting record says in EspoCRM (syncErrorMessage): for staff, in German."""
    name = SYSTEM_LABELS.get(exc.system, exc.system)
    return (
        f"Wartet auf {name}: {name} ist nicht erreichbar ({failure_reason(exc)[:200]}). "
        f"Der Datensatz wird synchronisiert, sobald {name} wieder antwortet (kein Fehlversuch gezählt)."
    )


def failure_reason(exc: Exception) -> str:
    """The failure text for the record's ``syncErrorMessage`` and the notice to staff: with
    the server's free-text ``detail`` (Advoware's Message), which logs never carry
    (`log_reason`)."""
    if isinstance(exc, ApiError):
        text = log_reason(exc)
        return f"{text} reason={exc.detail}"[:500] if exc.detail else text
    return log_reason(exc)


def log_reason(exc: Exception) -> str:
    """The failure text for logs: ids, status and fixed texts, no server free text."""
    if isinstance(exc, ApiError):
        return str(exc)[:500]
    return f"{type(exc).__name__}: {str(exc)[:300]}"
