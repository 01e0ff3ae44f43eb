"""Update a linked pair: plan -> write -> snapshot -> conflicts.

Advoware gets the full object as read with the synced fields replaced (PUT is a full
replace, so unmapped fields survive); EspoCRM gets only the changed fields plus sync
metadata. The snapshot is stored after both writes succeeded. Conflicts (both sides
changed, EspoCRM won) are kept in `PendingConflicts` until reported, so a write whose answer
was lost is still reported by the next run.

Concurrent edits while a sync runs (docs/architecture.md, "Concurrent edits"):

- every EspoCRM write of the run up to the one carrying Advoware's changes (the `syncing` mark,
  then `finish`) is sent with the versionNumber of the read the decision was based on, or of the
  run's own versioned write before it; a person's save in between makes EspoCRM answer 409
  `modified` -> read again and decide again, with what this run already wrote to Advoware as the
  base of those fields (no spurious conflict). Their save becomes an ordinary EspoCRM edit, or a
  conflict (EspoCRM wins, the Advoware value named in the notice): never silently overwritten;
- the Advoware record is read again right before the full-replace PUT when the first read is
  older than `reread_after` (SYNC_ADVOWARE_REREAD_SECONDS); changed content -> decide again.

At most MAX_REPLANS times; a record still changing under us is then `failed` (back-off).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from services.errors import FatalError, NotFoundError, TransientError, VersionConflictError
from services.store import keys
from services.store.counters import EventKind, Stat
from services.sync import fingerprint, in_doubt
from services.sync.claims import ClaimBusy
from services.sync.decide import FieldConflict, MergePlan
from services.sync.linking import Action
from services.sync.model import ENTITY, Outcome, RecordContext, Result, Trigger
from services.sync.outcomes import Outcomes
from services.sync.planning import Planner
from services.sync.snapshot import Snapshot, row_id
from services.sync.states import SyncStatus
from services.sync.verify import ADVO_BASELINE, Verification, answered_fields, verify_writes

if TYPE_CHECKING:
    from services.sync.deps import UpdateDeps

log = logging.getLogger(__name__)

MAX_REPLANS = 3


@dataclass(frozen=True)
class Replan:
    """Read again and decide again. `base`: the snapshot content with the fields this run
    already wrote to Advoware (None: the stored snapshot still holds)."""

    why: str
    base: dict[str, Any] | None = None


def base_after_write(
    base: Mapping[str, Any] | None, snap: Snapshot | None, plan: MergePlan
) -> dict[str, Any] | None:
    """What both sides agree on for the fields written to Advoware, the rest as before."""
    start = base if base is not None else (snap.content if snap is not None else None)
    if start is None:
        return None  # first sync: its no-data-loss rules apply again
    return {**start, **{f: plan.merged.get(f) for f in plan.to_advo}}


@dataclass(kw_only=True)
class Updater:
    deps: UpdateDeps
    planner: Planner
    outcomes: Outcomes
    reread_after: timedelta  # SYNC_ADVOWARE_REREAD_SECONDS

    async def update(
        self,
        ctx: RecordContext,
        betnr: int,
        trigger: Trigger,
        *,
        advo: dict[str, Any] | None = None,
        unique_checked: bool = False,
    ) -> Outcome:
        """Sync a linked pair. `advo` / `unique_checked`: a link the identity check just made
        (it read the party and checked that no other record holds the betnr)."""
        base: dict[str, Any] | None = None
        for attempt in range(MAX_REPLANS + 1):
            if attempt:
                ctx.espo = await self.deps.systems.espo.get(ENTITY, ctx.record_id)
                advo = None
            result = await self._once(ctx, betnr, trigger, base, advo=advo, unique_checked=unique_checked)
            if isinstance(result, Outcome):
                return result
            base = result.base if result.base is not None else base
            await self.deps.metrics.count(Stat.REPLANS)
            log.info(
                "record %s: %s; reading again (%d/%d)", ctx.record_id, result.why, attempt + 1, MAX_REPLANS
            )
        still = TransientError(
            "changed during every attempt of this sync", system="sync", record_id=ctx.record_id
        )
        return await self.outcomes.record_failure(ctx, still, permanent=False)

    async def _once(
        self,
        ctx: RecordContext,
        betnr: int,
        trigger: Trigger,
        base: dict[str, Any] | None,
        *,
        advo: dict[str, Any] | None,
        unique_checked: bool,
    ) -> Outcome | Replan:
        if advo is None:
            try:
                advo = await self.deps.systems.advo.get_beteiligter(betnr)
            except NotFoundError:
                if ctx.deleted_before:  # a webhook for a record whose party is gone: no second note
                    return Outcome(
                        ctx.record_id, Result.SKIPPED, betnr=betnr, reason="still deleted in Advoware"
                    )
                await self.deps.deletions.checked()
                if not await self.deps.deletions.allow(ctx.record_id):  # bulk 404: held for a person
                    return Outcome(
                        ctx.record_id, Result.WAITING, betnr=betnr, reason="deletions held (bulk 404)"
                    )
                return await self.outcomes.deleted_in_advoware(ctx, betnr)
            await self.deps.deletions.checked()
        read_at = time.monotonic()
        plan, snap = await self.planner.plan_pair(ctx.record_id, ctx.espo, advo, betnr, base=base)
        if snap is None and base is None and not unique_checked:
            # The first sync of this pair (a typed-in, copied or relinked betnr; Redis lost):
            # the betnr must not be another record's link.
            try:
                decision = await self.deps.linker.unique_link(ctx.record_id, betnr)
            except ClaimBusy as exc:
                # Another record creates or links this betnr right now: like a create that meets a
                # busy claim, left as it is (no attempt counted); its next trigger or the sweep
                # asks again once that settled.
                log.info("record %s: %s; the sweep tries again", ctx.record_id, exc)
                return Outcome(ctx.record_id, Result.SKIPPED, betnr=betnr, reason=str(exc))
            if decision.action is Action.HOLD:
                return await self.outcomes.hold(ctx, decision)
        pending = await self.deps.conflicts.get(ctx.record_id, betnr)
        if plan.is_noop:
            return await self._unchanged(ctx, betnr, trigger, plan, snap, advo, pending)
        return await self._write(ctx, betnr, plan, advo, pending, snap=snap, base=base, read_at=read_at)

    async def _fresh_for_put(self, betnr: int, advo: dict[str, Any], read_at: float) -> dict[str, Any] | None:
        """The Advoware record to base the full-replace PUT on: `advo` if read just now, else
        read again; None if its synced content changed since (decide again)."""
        from services.beteiligte import mapper

        if time.monotonic() - read_at <= self.reread_after.total_seconds():
            return advo
        try:
            fresh = await self.deps.systems.advo.get_beteiligter(betnr)
        except NotFoundError:
            return None  # deleted meanwhile: the next attempt's read says so
        if mapper.content_hash(mapper.from_advo(fresh)) != mapper.content_hash(mapper.from_advo(advo)):
            return None
        return fresh  # same synced content; its unmapped fields are the newest

    async def _put(
        self,
        ctx: RecordContext,
        betnr: int,
        plan: MergePlan,
        advo: dict[str, Any],
        snap: Snapshot | None,
        read_at: float,
    ) -> dict[str, Any] | None:
        """The full-replace PUT of the plan's Advoware fields: Advoware's answer, or None when its
        record changed since it was read (decide again). A PUT can be applied although its answer
        is lost: what it sends is recorded right before it (services/sync/in_doubt.py)."""
        from services.beteiligte import mapper

        current = await self._fresh_for_put(betnr, advo, read_at)
        if current is None:
            return None
        payload = mapper.to_advo_payload(plan.merged, current)
        await self.outcomes.note_in_doubt(snap, in_doubt.record(plan.merged, plan.to_advo, ()))
        try:
            answer = await self.deps.systems.advo.update_beteiligter(betnr, payload)
        except FatalError:
            await self.outcomes.note_in_doubt(snap, {})  # refused: nothing of it was carried out
            raise
        ctx.advo_writes += 1
        await self.deps.linker.index.upsert([answer])
        return answer

    async def _unchanged(
        self,
        ctx: RecordContext,
        betnr: int,
        trigger: Trigger,
        plan: MergePlan,
        snap: Snapshot | None,
        advo: dict[str, Any],
        pending: list[FieldConflict],
    ) -> Outcome | Replan:
        """Nothing to write: only status metadata and, if it moved, the snapshot."""
        from services.beteiligte import mapper

        now = self.deps.systems.clock()
        saved = ctx.espo
        if ctx.status is not SyncStatus.CLEAN or trigger is Trigger.DAILY_CHECK:
            try:  # status / last-check metadata only
                saved = await self.outcomes.finish(
                    ctx, {}, now, advo=advo, prints=agreed_prints(betnr, plan, snap)
                )
            except VersionConflictError:
                return Replan("the EspoCRM record was saved since it was read (409)")
        if (
            snap is None
            or snap.in_doubt  # settled now: whatever an earlier run sent is known
            or snap.content_hash != mapper.content_hash(plan.merged)
            or snap.espo_modified_at != saved.get("modifiedAt")
            or snap.advo_changed_at != advo.get("geaendertAm")
            or snap.advo_row_id != row_id(advo)
        ):
            # Known divergences (verify.py) stay known while the two sides still differ there.
            still = mapper.diff(mapper.from_espo(ctx.espo), mapper.from_advo(advo))
            extra = {
                k: {f: v for f, v in b.items() if f in still} for k, b in (snap.extra if snap else {}).items()
            }
            await self.outcomes.store_snapshot(ctx.record_id, betnr, plan.merged, now, saved, advo, extra)
        if pending:  # an earlier run's write was applied although its answer was lost
            await self.report_conflicts(ctx.record_id, betnr, pending, name=ctx.espo.get("name"))
        await self.deps.metrics.count(Stat.UNCHANGED)
        return Outcome(ctx.record_id, Result.UNCHANGED, plan=plan, betnr=betnr, writes=ctx.writes)

    async def _write(
        self,
        ctx: RecordContext,
        betnr: int,
        plan: MergePlan,
        advo: dict[str, Any],
        pending: list[FieldConflict],
        *,
        snap: Snapshot | None,
        base: dict[str, Any] | None,
        read_at: float,
    ) -> Outcome | Replan:
        from services.beteiligte import mapper

        try:
            await self.outcomes.mark_syncing(ctx)
        except VersionConflictError:  # nothing written yet: decide again on what the person saved
            return Replan("the EspoCRM record was saved since it was read (409)", base)
        advo_after = advo
        if plan.conflicts:
            await self.deps.conflicts.put(ctx.record_id, betnr, plan.conflicts)
        if plan.to_advo:
            written = await self._put(ctx, betnr, plan, advo, snap, read_at)
            if written is None:
                return Replan("the Advoware record changed since it was read", base)
            advo_after = written
        decided = [c.field for c in plan.changes]
        # The snapshot follows what Advoware answered: a field it did not store is reported.
        advo_check = verify_writes(
            plan.merged, decided, snap.extra if snap else None, advo_fields=plan.to_advo,
            advo_answer=mapper.from_advo(advo_after) if plan.to_advo else None,
        )  # fmt: skip
        patch = (
            mapper.to_espo_patch(plan.merged, plan.to_espo, current=ctx.espo, record_id=ctx.record_id)
            if plan.to_espo
            else {}
        )
        now = self.deps.systems.clock()  # after the Advoware write: advowareLastSync follows it
        prints = fingerprint.of(betnr, plan.merged, advo_check.extra.get(ADVO_BASELINE))
        if plan.to_espo:  # the final write's answer can be lost too (the Advoware part stays)
            await self.outcomes.note_in_doubt(snap, in_doubt.record(plan.merged, plan.to_advo, plan.to_espo))
        try:
            saved = await self.outcomes.finish(
                ctx, patch, now, advo=advo_after, message=advo_check.message(plan.merged), prints=prints
            )
        except VersionConflictError:
            return Replan("the EspoCRM record was saved meanwhile (409)", base_after_write(base, snap, plan))
        check = verify_writes(
            plan.merged, decided, snap.extra if snap else None, advo_fields=plan.to_advo,
            advo_answer=mapper.from_advo(advo_after) if plan.to_advo else None,
            espo_fields=answered_fields(plan.to_espo, saved), espo_answer=mapper.from_espo(saved) if saved else None,
        )  # fmt: skip
        await self.outcomes.store_snapshot(
            ctx.record_id, betnr, plan.merged, now, saved, advo_after, check.extra
        )
        return await self._written(ctx, betnr, plan, pending, check)

    async def _written(
        self,
        ctx: RecordContext,
        betnr: int,
        plan: MergePlan,
        pending: list[FieldConflict],
        check: Verification,
    ) -> Outcome:
        """After both writes and the snapshot: report what was not applied and the conflicts."""
        if check.advo_missing or check.espo_missing:
            await self.outcomes.report_unapplied(
                ctx,
                check.message(plan.merged) or "",
                sorted({*check.advo_missing, *check.espo_missing}),
                espo_only=not check.advo_missing,
            )
        # Earlier conflicts whose write was applied unseen, unless this run found the same one.
        seen = {(c.field, json.dumps(c.advo_value, sort_keys=True)) for c in plan.conflicts}
        conflicts = list(plan.conflicts) + [
            c for c in pending if (c.field, json.dumps(c.advo_value, sort_keys=True)) not in seen
        ]
        if conflicts:
            await self.report_conflicts(ctx.record_id, betnr, conflicts, name=ctx.espo.get("name"))
        await self.deps.metrics.count(Stat.UPDATES)
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

    async def report_conflicts(
        self, record_id: str, betnr: int, conflicts: Sequence[FieldConflict], *, name: str | None = None
    ) -> None:
        """Count, log and tell a person, once the EspoCRM values are in Advoware - once per record,
        field and values: a conflict already notified (its pending entry outlived the report: a
        worker killed, Redis failing before the entry was cleared) is not counted or told again."""
        from services.sync import notify

        fresh = await self.deps.conflicts.unreported(record_id, conflicts)
        if fresh:
            label = notify.record_label(record_id, name=name, betnr=betnr)
            told = await self.deps.notifier.notify_once(
                record_id,
                notify.conflict_text(label, fresh),
                claims=self.deps.conflicts.notified_keys(record_id, fresh),
                ttl_seconds=keys.CONFLICT_NOTIFIED_TTL_SECONDS,
                counters={Stat.CONFLICTS: len(fresh)},
            )
            if told:
                await self.deps.recent.record(EventKind.CONFLICT, record_id, ",".join(c.field for c in fresh))
        await self.deps.conflicts.delete(record_id)


def agreed_prints(betnr: int, plan: MergePlan, snap: Snapshot | None) -> fingerprint.Fingerprint:
    """The fingerprint of a pair that already agrees (`plan.merged`), keeping the Advoware
    divergence the snapshot knows of."""
    return fingerprint.of(betnr, plan.merged, snap.extra.get(ADVO_BASELINE) if snap else None)
