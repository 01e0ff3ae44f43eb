"""Create: a record without betnr gets its Advoware party, exactly once.

Every try - the first, and every retry after a lost POST answer or a failed betnr write-back -
runs the same steps, under the claims of the record's identity (services/sync/claims.py), so two
records of one party never create or link at the same time:

1. the identity check against a fresh Advoware read (services/sync/linking.py): link an existing
   party, hold for a person, wait for the index, or create; with an intent of an earlier try
   (services/sync/intents.py) the party that try made is found by its betnr or, when the answer
   was lost, among the parties created since the intent that match the identity - also after
   staff completed it in Advoware;
2. create: store an intent with the content sent, POST, store the betnr and the answer in the
   intent, write betnr back to EspoCRM, snapshot what was sent (what Advoware did not store as
   sent is reported and kept as its baseline, services/sync/verify.py), drop the intent;
3. or link: write betnr back, then sync the pair (services/sync/update.py). The party an earlier
   try made is linked with what that try sent as the snapshot - never Advoware's current content
   -, so staff edits made in Advoware since reach EspoCRM and a person's EspoCRM edits reach
   Advoware, as edits (the three-way merge, services/sync/decide.py). Any other party is linked
   by the first-sync rules (no snapshot: nothing on either side is lost).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from services.errors import FatalError, TransientError, VersionConflictError
from services.store.counters import EventKind, Stat
from services.sync import fingerprint
from services.sync.claims import ClaimBusy, HeldClaims
from services.sync.decide import is_empty
from services.sync.intents import CreateIntent
from services.sync.linking import Action, EarlierTry, LinkDecision
from services.sync.model import Outcome, RecordContext, Result, Trigger, as_int
from services.sync.outcomes import Outcomes
from services.sync.update import Updater
from services.sync.verify import ADVO_BASELINE, verify_writes

if TYPE_CHECKING:
    from services.sync.deps import CreateDeps

log = logging.getLogger(__name__)


class CreateAnsweredWithoutBetnr(TransientError):
    def __init__(self, record_id: str) -> None:
        super().__init__("create answered without betNr", system="advoware", record_id=record_id)


def claim_keys(content: Mapping[str, Any], intent: CreateIntent | None) -> list[str]:
    """The identity lookup keys a create claims: the record's, and those of what an earlier try
    sent (the record may have been renamed since; that try's party carries the old name)."""
    from services.beteiligte.identity import identity_of_content, lookup_keys

    found = lookup_keys(identity_of_content(content))
    if intent is not None and intent.sent:
        found += lookup_keys(identity_of_content(intent.sent))
    return found


def written_fields(content: Mapping[str, Any]) -> list[str]:
    """The fields a create sends (and verifies in the answer)."""
    return [f for f in content if f != "kind" and not is_empty(content[f])]


def unedited_since_created(party: Mapping[str, Any]) -> bool:
    """Advoware's change stamp is still its creation stamp (to the second: both are stamped
    by the create)."""
    created, changed = party.get("angelegtAm"), party.get("geaendertAm")
    return bool(created) and str(created)[:19] == str(changed or "")[:19]


class Creator:
    def __init__(self, deps: CreateDeps, outcomes: Outcomes, updater: Updater) -> None:
        self._d = deps
        self._out = outcomes
        self._updater = updater

    async def create(self, ctx: RecordContext) -> Outcome:
        try:
            return await self._try(ctx)
        except VersionConflictError:
            # A person saved the record since this run read it (the `syncing` mark, the betnr
            # write of a link and the write-back carry the version read): run once more on what
            # they saved. A POST already made is found again from the intent (an earlier try).
            await self._d.locks.mark_again(ctx.record_id)
            log.info("record %s was saved in EspoCRM during its create; running again", ctx.record_id)
            return Outcome(ctx.record_id, Result.SKIPPED, reason="saved in EspoCRM meanwhile; running again")

    async def _try(self, ctx: RecordContext) -> Outcome:
        from services.beteiligte import mapper
        from services.store import keys
        from services.store.lease import holder

        content = mapper.from_espo(ctx.espo)
        intent = await self._d.intents.get(ctx.record_id)
        if (
            intent is None
            and ctx.options.defer_creates
            and await holder(self._d.systems.redis, keys.BACKFILL_RUNNING) is not None
        ):
            # The backfill may be about to link this record to an existing Advoware record.
            log.info("record %s: create deferred while a backfill runs", ctx.record_id)
            return Outcome(ctx.record_id, Result.SKIPPED, reason="create deferred: backfill running")
        betnrs = [intent.betnr] if intent is not None and intent.betnr is not None else []
        try:
            async with self._d.linker.claims.hold(claim_keys(content, intent), betnrs) as held:
                return await self._claimed(ctx, content, intent, held)
        except ClaimBusy as exc:
            # Left as it is (pending_sync, or failed with its back-off): the sweep comes back.
            log.info("record %s: %s; the sweep tries again", ctx.record_id, exc)
            return Outcome(ctx.record_id, Result.SKIPPED, reason=str(exc))

    async def _claimed(
        self, ctx: RecordContext, content: dict[str, Any], intent: CreateIntent | None, held: HeldClaims
    ) -> Outcome:
        # An operator's `sync` of a record held by the identity check means "create it anyway";
        # a party an earlier try of this create made is still linked rather than made twice.
        anyway = ctx.held_before and ctx.trigger is Trigger.MANUAL
        if intent is not None or not anyway:
            other = await self._d.intents.unresolved_other(ctx.record_id, claim_keys(content, intent))
            if other is not None:
                # Its POST may still be carried out: checking now could find nothing and POST a
                # second party. Left as it is (like ClaimBusy): the sweep comes back.
                log.info("record %s: waits for record %s's unsettled create", ctx.record_id, other)
                return Outcome(
                    ctx.record_id,
                    Result.SKIPPED,
                    reason=f"create waits: record {other}'s create of the same party is not settled",
                )
            earlier = None
            if intent is not None:
                tz = self._d.systems.tz
                earlier = EarlierTry(intent.betnr, intent.created_since_local(tz), intent.sent)
            decision = await self._d.linker.before_create(
                ctx.record_id, content, earlier=earlier, held=held, ours_only=anyway
            )
            if decision.action is Action.WAIT:
                log.info("record %s: %s (it stays as it is)", ctx.record_id, decision.message)
                return Outcome(ctx.record_id, Result.SKIPPED, reason=decision.message)
            if decision.action is Action.HOLD:
                # A person decides now; "create it anyway" must not find this intent's party linked.
                await self._d.intents.delete(ctx.record_id)
                return await self._out.hold(ctx, decision)
            if decision.action is Action.LINK:
                return await self._link(ctx, decision, intent, held)
        return await self._create(ctx, content, held)

    async def _create(self, ctx: RecordContext, content: dict[str, Any], held: HeldClaims) -> Outcome:
        from services.beteiligte import mapper

        await held.check()
        betnr, created = await self._post(ctx, content)
        await self._d.linker.index.upsert([created])
        # The snapshot follows what Advoware answered to the POST: a field it did not store is reported.
        check = verify_writes(
            content, [], None, advo_fields=written_fields(content), advo_answer=mapper.from_advo(created)
        )
        now = self._d.systems.clock()
        await held.check()
        saved = await self._out.finish(
            ctx,
            {"betnr": betnr},
            now,
            advo=created,
            message=check.message(content),
            prints=fingerprint.of(betnr, content, check.extra.get(ADVO_BASELINE)),
        )
        await self._out.store_snapshot(ctx.record_id, betnr, content, now, saved, created, check.extra)
        if check.advo_missing:
            await self._out.report_unapplied(
                ctx, check.message(content) or "", sorted(check.advo_missing), espo_only=False
            )
        await self._d.intents.delete(ctx.record_id)
        await self._d.metrics.count(Stat.CREATES)
        log.info("record %s created in Advoware as betnr %s", ctx.record_id, betnr)
        return Outcome(ctx.record_id, Result.CREATED, betnr=betnr, writes=ctx.writes)

    async def _link(
        self, ctx: RecordContext, decision: LinkDecision, intent: CreateIntent | None, held: HeldClaims
    ) -> Outcome:
        """The party exists in Advoware: write its betnr, then sync the pair - against what an
        earlier try sent when that try made the party, else by the first-sync rules (nothing on
        either side is lost; services/sync/decide.py)."""
        assert decision.betnr is not None and decision.advo is not None
        await held.check()
        await self._out.mark_syncing(ctx)
        saved = await self._out.write_espo(ctx, {"betnr": decision.betnr}, versioned=True)
        ctx.espo["betnr"] = decision.betnr
        await self._d.linker.index.upsert([decision.advo])
        recovered = decision.ours and intent is not None
        if recovered:
            assert intent is not None
            await self._recovered(ctx, decision.advo, intent, saved)
        else:
            await self._d.recent.record(
                EventKind.LINKED, ctx.record_id, f"betnr={decision.betnr} ({decision.rule})"
            )
            await self._d.metrics.count(Stat.LINKS)
            log.info(
                "record %s: the party exists in Advoware (betnr %s, %s); linked instead of created",
                ctx.record_id,
                decision.betnr,
                decision.rule,
            )
        if intent is not None:
            await self._d.intents.delete(ctx.record_id)
        outcome = await self._updater.update(
            ctx, decision.betnr, ctx.trigger, advo=decision.advo, unique_checked=True
        )
        if recovered and outcome.result in (Result.UPDATED, Result.UNCHANGED):
            outcome.result = Result.CREATED
        outcome.reason = outcome.reason or (
            f"created by an earlier try as Advoware party {decision.betnr}"
            if recovered
            else f"linked to existing Advoware party {decision.betnr}"
        )
        return outcome

    async def _recovered(
        self, ctx: RecordContext, party: Mapping[str, Any], intent: CreateIntent, saved: Mapping[str, Any]
    ) -> None:
        """The party an earlier try created: its snapshot is what that try sent, so the sync that
        follows takes every difference since for an edit on that side. What Advoware did not store
        as sent is kept as its baseline and reported (services/sync/verify.py), from the POST's
        answer when it came, else from the party itself while nobody has edited it since it was
        created (then it still is the answer: a value Advoware normalised or cut short on create is
        not a staff edit). An intent of an earlier version has no `sent`: first-sync rules."""
        from services.beteiligte import mapper

        betnr = as_int(party.get("betNr"))
        log.info("record %s: linked the Advoware party %s an earlier try created", ctx.record_id, betnr)
        await self._d.recent.record(EventKind.LINKED, ctx.record_id, f"betnr={betnr} (earlier try)")
        await self._d.metrics.count(Stat.CREATES)
        if intent.sent is None or betnr is None:
            return
        answer = intent.answer
        if answer is None and unedited_since_created(party):
            answer = mapper.from_advo(party)
        check = verify_writes(
            intent.sent, [], None, advo_fields=written_fields(intent.sent), advo_answer=answer
        )
        now = self._d.systems.clock()
        await self._out.store_snapshot(ctx.record_id, betnr, intent.sent, now, saved, None, check.extra)
        if check.advo_missing:
            await self._out.report_unapplied(
                ctx, check.message(intent.sent) or "", sorted(check.advo_missing), espo_only=False
            )

    async def _post(self, ctx: RecordContext, content: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        from services.beteiligte import mapper

        payload = mapper.to_advo_payload(content, None)
        await self._out.mark_syncing(ctx)
        intent = CreateIntent(ctx.record_id, started_at=self._d.systems.clock().isoformat(), sent=content)
        await self._d.intents.put(intent)
        try:
            created = await self._d.systems.advo.create_beteiligter(payload)
        except FatalError:
            # Advoware refused the POST: nothing was created, the outcome is settled (its marks
            # would keep other records' creates of the same party waiting).
            await self._d.intents.delete(ctx.record_id)
            raise
        ctx.advo_writes += 1
        betnr = as_int(created.get("betNr"))
        if betnr is None:
            raise CreateAnsweredWithoutBetnr(ctx.record_id)
        intent.betnr, intent.answer = betnr, mapper.from_advo(created)
        await self._d.intents.put(intent)
        return betnr, created
