"""Create: a record without betnr gets its Advoware party, exactly once.

Intents (services/sync/intents.py) make the POST idempotent across crashes and lost
answers: store an intent, POST, store the new betnr in the intent, write betnr back to
EspoCRM, drop the intent. A retry that finds an intent with a betnr only finishes the
write-back; one without (the answer was lost) first looks in Advoware for the record it may
have created (`find_created`) before creating again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from services.errors import NotFoundError, TransientError
from services.store import keys
from services.sync.decide import is_empty
from services.sync.intents import CreateIntent
from services.sync.linking import Action, LinkDecision
from services.sync.model import Outcome, RecordContext, Result, SyncDeps, Trigger, as_int
from services.sync.notify import record_event
from services.sync.outcomes import Outcomes
from services.sync.update import Updater
from services.sync.verify import verify_writes

log = logging.getLogger(__name__)

# An intent without betnr: look for a record we may have created since this long before.
INTENT_LOOKBACK = timedelta(minutes=5)


class CreateAnsweredWithoutBetnr(TransientError):
    def __init__(self, record_id: str) -> None:
        super().__init__("create answered without betNr", system="advoware", record_id=record_id)


class Creator:
    def __init__(self, deps: SyncDeps, outcomes: Outcomes, updater: Updater) -> None:
        self._d = deps
        self._out = outcomes
        self._updater = updater

    async def create(self, ctx: RecordContext) -> Outcome:
        from services.beteiligte import mapper

        content = mapper.from_espo(ctx.espo)
        intent = await self._d.intents.get(ctx.record_id)
        if (
            intent is None
            and ctx.options.defer_creates
            and await self._d.systems.redis.exists(keys.BACKFILL_RUNNING)
        ):
            # The backfill may be about to link this record to an existing Advoware record.
            log.info("record %s: create deferred while a backfill runs", ctx.record_id)
            return Outcome(ctx.record_id, Result.SKIPPED, reason="create deferred: backfill running")
        # An operator's `sync` of a record held by the identity check means "create it anyway".
        if intent is None and not (ctx.held_before and ctx.trigger is Trigger.MANUAL):
            decision = await self._d.linker.before_create(ctx.record_id, content)
            if decision.action is Action.WAIT:
                log.info("record %s: %s (it stays pending_sync)", ctx.record_id, decision.message)
                return Outcome(ctx.record_id, Result.SKIPPED, reason=decision.message)
            if decision.action is Action.HOLD:
                return await self._out.hold(ctx, decision)
            if decision.action is Action.LINK:
                return await self._link(ctx, decision)
        betnr, created, recovered = await self._resume(ctx, content, intent)
        fresh = betnr is None
        if betnr is None:
            betnr, created = await self._post(ctx, content)
            await self._d.linker.index.upsert([created])
        # The snapshot follows what Advoware answered to the POST: a field it did not store is reported.
        check = verify_writes(
            content, [], None, advo_fields=[f for f in content if f != "kind" and not is_empty(content[f])],
            advo_answer=mapper.from_advo(created) if fresh and created is not None else None,
        )  # fmt: skip
        now = self._d.systems.clock()
        saved = await self._out.finish(ctx, {"betnr": betnr}, now, message=check.message(content))
        # The pair agrees on what Advoware holds; a recovered create may be older than EspoCRM.
        agreed = mapper.from_advo(created) if recovered and created is not None else content
        await self._out.store_snapshot(ctx.record_id, betnr, agreed, now, saved, created, check.extra)
        if check.advo_missing:
            await self._out.report_unapplied(
                ctx, check.message(content) or "", sorted(check.advo_missing), espo_only=False
            )
        await self._d.intents.delete(ctx.record_id)
        if agreed is not content and mapper.diff(content, agreed):
            # Edited in EspoCRM since the create: one more run writes the edit to Advoware.
            await self._d.locks.mark_again(ctx.record_id)
        await self._d.stats.count("creates")
        log.info("record %s created in Advoware as betnr %s", ctx.record_id, betnr)
        return Outcome(ctx.record_id, Result.CREATED, betnr=betnr, writes=ctx.writes)

    async def _link(self, ctx: RecordContext, decision: LinkDecision) -> Outcome:
        """The party exists in Advoware: write its betnr, then sync the pair by the first-sync
        rules (nothing on either side is lost; services/sync/decide.py)."""
        assert decision.betnr is not None and decision.advo is not None
        await self._out.mark_syncing(ctx)
        await self._out.write_espo(ctx, {"betnr": decision.betnr})
        ctx.espo["betnr"] = decision.betnr
        await self._d.linker.index.upsert([decision.advo])
        await record_event(
            self._d.systems.redis, "linked", ctx.record_id, f"betnr={decision.betnr} ({decision.rule})"
        )
        await self._d.stats.count("links")
        log.info(
            "record %s: the party exists in Advoware (betnr %s, %s); linked instead of created",
            ctx.record_id,
            decision.betnr,
            decision.rule,
        )
        outcome = await self._updater.update(
            ctx, decision.betnr, ctx.trigger, advo=decision.advo, unique_checked=True
        )
        outcome.reason = outcome.reason or f"linked to existing Advoware party {decision.betnr}"
        return outcome

    async def _resume(
        self, ctx: RecordContext, content: Mapping[str, Any], intent: CreateIntent | None
    ) -> tuple[int | None, dict[str, Any] | None, bool]:
        """(betnr, the Advoware record, recovered) of an earlier, interrupted create, if any.
        Recovered: an earlier run created the Advoware record; it holds what was POSTed
        then, and the EspoCRM record may have been edited since."""
        if intent is None:
            return None, None, False
        if intent.betnr is None:
            found = await self.find_created(content, intent)
            if found is None:
                return None, None, False
            betnr = as_int(found.get("betNr"))
            log.info(
                "record %s: recovered Advoware record %s from an interrupted create", ctx.record_id, betnr
            )
            return betnr, found, True
        try:
            return intent.betnr, await self._d.systems.advo.get_beteiligter(intent.betnr), True
        except NotFoundError:
            return intent.betnr, None, False

    async def _post(self, ctx: RecordContext, content: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        from services.beteiligte import mapper

        payload = mapper.to_advo_payload(content, None)
        await self._out.mark_syncing(ctx)
        intent = CreateIntent(
            ctx.record_id,
            started_at=self._d.systems.clock().isoformat(),
            content_hash=mapper.content_hash(content),
        )
        await self._d.intents.put(intent)
        created = await self._d.systems.advo.create_beteiligter(payload)
        ctx.advo_writes += 1
        betnr = as_int(created.get("betNr"))
        if betnr is None:
            raise CreateAnsweredWithoutBetnr(ctx.record_id)
        intent.betnr = betnr
        await self._d.intents.put(intent)
        return betnr, created

    async def find_created(self, content: Mapping[str, Any], intent: CreateIntent) -> dict[str, Any] | None:
        """The Advoware record an interrupted create may have made: same content (as POSTed or
        as now), changed since shortly before the intent, not another record's pair."""
        from services.advoware.timezone import query_since_local
        from services.beteiligte import mapper

        since = datetime.fromisoformat(intent.started_at) - INTENT_LOOKBACK
        candidates: list[dict[str, Any]] = []
        async for row in self._d.systems.advo.iter_beteiligte(
            changed_since_local=query_since_local(since, self._d.systems.tz, timedelta(0))
        ):
            found = mapper.from_advo(row)
            # What was POSTed (the EspoCRM record may have been edited since), or what it is now.
            if mapper.content_hash(found) != intent.content_hash and mapper.diff(found, content):
                continue
            betnr = as_int(row.get("betNr"))
            owner = await self._d.snapshots.espo_id_for_betnr(betnr) if betnr is not None else None
            if owner is not None and owner != intent.espo_id:
                continue  # the same content, but another EspoCRM record's pair
            candidates.append(row)
        # Several with that content (e.g. an earlier duplicate): ours is the newest.
        return max(
            candidates,
            key=lambda r: (str(r.get("angelegtAm") or ""), as_int(r.get("betNr")) or 0),
            default=None,
        )
