"""A write carried out whose answer was lost, then a person's edit of the same field before the
next sync (services/sync/in_doubt.py; issue 20). Without the record of what the run sent, the
next run took the service's own value for a person's edit on that side: a false conflict notice
naming the person's own earlier value, or staff's new Advoware edit overwritten."""

from __future__ import annotations

import json
from typing import Any

import pytest

from services.errors import FatalError, ResponseTimeoutError, UnavailableError
from services.store import keys
from services.sync import in_doubt
from services.sync.decide import Basis, Rule
from services.sync.model import Result, Trigger
from tests.support.runtime import World
from tests.unit.test_concurrent_edits import linked, person_saves_during_our_write

pytestmark = pytest.mark.world(ESPOCRM_NOTIFY_USER_ID="u1")


def lost(system: str) -> ResponseTimeoutError:
    return ResponseTimeoutError("no answer in time", system=system)


def conflict_notices(world: World) -> list[str]:
    return [text for _, text in world.espo.notifications if "Konflikt" in text]


async def crm_edit_whose_put_answer_is_lost(world: World) -> tuple[str, int]:
    """A linked pair; a person sets the title in EspoCRM; the sync's PUT is carried out in
    Advoware but its answer never arrives (the run fails before its snapshot)."""
    rid, betnr = await linked(world)
    world.espo.edit(rid, titel="Prof.")
    world.advo.lose_answer["update"] = [lost("advoware")]
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.FAILED
    assert world.advo.records[betnr]["titel"] == "Prof."  # applied all the same
    world.clock.tick(60)
    return rid, betnr


async def test_a_lost_put_answer_then_a_crm_edit_of_the_same_field_is_no_conflict(world: World) -> None:
    espo, advo = world.espo, world.advo
    rid, betnr = await crm_edit_whose_put_answer_is_lost(world)
    espo.edit(rid, titel="Prof. Dr.")  # the person edits the title again before the retry
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.UPDATED and out.plan is not None
    assert not out.plan.conflicts
    assert [(c.field, c.rule) for c in out.plan.changes] == [("title", Rule.ESPO_CHANGED)]
    assert advo.records[betnr]["titel"] == "Prof. Dr."
    assert not conflict_notices(world)


async def test_a_lost_put_answer_alone_settles_without_a_write(world: World) -> None:
    advo = world.advo
    rid, _ = await crm_edit_whose_put_answer_is_lost(world)
    puts = len(advo.puts)
    out = await world.engine.sync_record(rid, Trigger.RETRY_NOW)
    assert out.result is Result.UNCHANGED and len(advo.puts) == puts
    snap = await world.stores.snapshots.get(rid)
    assert snap is not None and not snap.in_doubt and snap.content["title"] == "Prof."
    assert not conflict_notices(world)


async def test_a_lost_put_answer_then_a_crm_revert_goes_to_advoware(world: World) -> None:
    """A -> B (lost answer) -> A: the person's revert is an edit, not a known divergence."""
    espo, advo = world.espo, world.advo
    rid, betnr = await crm_edit_whose_put_answer_is_lost(world)
    espo.edit(rid, titel="Dr.")  # back to the value of the last snapshot
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.UPDATED
    assert advo.records[betnr]["titel"] == "Dr."
    assert not conflict_notices(world)


async def test_a_lost_put_answer_then_edits_on_both_sides_is_a_real_conflict(world: World) -> None:
    """Staff changed the field in Advoware after our write was applied: both changed it."""
    espo, advo = world.espo, world.advo
    rid, betnr = await crm_edit_whose_put_answer_is_lost(world)
    advo.edit(betnr, titel="Dipl.-Ing.")
    espo.edit(rid, titel="Prof. Dr.")
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.plan is not None and [c.field for c in out.plan.conflicts] == ["title"]
    assert advo.records[betnr]["titel"] == "Prof. Dr."
    [notice] = conflict_notices(world)
    assert "Dipl.-Ing." in notice


async def test_a_put_that_was_not_carried_out_leaves_the_old_rules(world: World) -> None:
    espo, advo = world.espo, world.advo
    rid, betnr = await linked(world)
    espo.edit(rid, titel="Prof.")
    advo.fail_next["update"] = [lost("advoware")]  # refused before it was applied
    assert (await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)).result is Result.FAILED
    assert advo.records[betnr]["titel"] == "Dr."
    espo.edit(rid, titel="Prof. Dr.")
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.UPDATED and out.plan is not None and not out.plan.conflicts
    assert advo.records[betnr]["titel"] == "Prof. Dr."


async def test_a_lost_espocrm_answer_then_a_new_advoware_edit_arrives(world: World) -> None:
    """The sync's final EspoCRM write (Advoware's title) is stored but its answer is lost; staff
    then change the title again in Advoware: their new value must reach EspoCRM, not be
    overwritten by EspoCRM's copy of their previous one."""
    espo, advo = world.espo, world.advo
    rid, betnr = await linked(world)
    advo.edit(betnr, titel="Prof.")
    original = espo.update
    left = [1]

    async def update(entity: str, record_id: str, data: dict[str, Any], **kw: Any) -> dict[str, Any]:
        answer = await original(entity, record_id, data, **kw)
        if left[0] and "advowareLastSync" in data:
            left[0] -= 1
            raise lost("espocrm")
        return answer

    espo.update = update  # type: ignore[method-assign]  # a fake patched for this test
    assert (await world.engine.sync_record(rid, Trigger.SWEEP)).result is Result.FAILED
    assert espo.records[rid]["titel"] == "Prof."  # applied all the same
    world.clock.tick(60)
    advo.edit(betnr, titel="Prof. Dr.")
    out = await world.engine.sync_record(rid, Trigger.RETRY_NOW)
    assert out.result is Result.UPDATED and out.plan is not None and not out.plan.conflicts
    assert espo.records[rid]["titel"] == "Prof. Dr." and advo.records[betnr]["titel"] == "Prof. Dr."
    assert not conflict_notices(world)


async def test_writes_in_doubt_are_kept_until_a_snapshot_settles_them(world: World) -> None:
    rid, _ = await crm_edit_whose_put_answer_is_lost(world)
    snap = await world.stores.snapshots.get(rid)
    assert snap is not None and snap.in_doubt == {in_doubt.ADVO: {"title": "Prof."}}
    assert (await world.engine.sync_record(rid, Trigger.RETRY_NOW)).result is Result.UNCHANGED
    snap = await world.stores.snapshots.get(rid)
    assert snap is not None and snap.in_doubt == {}


def final_espo_write_fails_unapplied(world: World) -> None:
    """The next sync's final EspoCRM write (the values, status, advowareLastSync) is refused
    before EspoCRM stores it (a 503): nothing of it is applied."""
    espo, original = world.espo, world.espo.update
    left = [1]

    async def update(entity: str, record_id: str, data: dict[str, Any], **kw: Any) -> dict[str, Any]:
        if left[0] and "advowareLastSync" in data:
            left[0] -= 1
            raise UnavailableError("service unavailable", system="espocrm", status_code=503)
        return await original(entity, record_id, data, **kw)

    espo.update = update  # type: ignore[method-assign]  # a fake patched for this test


async def test_a_record_not_held_any_more_is_dropped_not_kept_for_a_later_coincidence(world: World) -> None:
    """A field recorded for EspoCRM (never applied), then one recorded for Advoware (applied,
    answer lost): the person's next value must win, not the stale EspoCRM record of the first."""
    espo, advo = world.espo, world.advo
    rid, betnr = await linked(world)
    advo.edit(betnr, titel="Prof.")  # staff; its sync's EspoCRM write is refused unapplied
    final_espo_write_fails_unapplied(world)
    assert (await world.engine.sync_record(rid, Trigger.SWEEP)).result is Result.FAILED
    assert espo.records[rid]["titel"] == "Dr."
    world.clock.tick(60)
    advo.edit(betnr, titel="Dr.")  # staff revert
    espo.edit(rid, titel="Dipl.-Ing.")  # the person; its PUT is applied, the answer lost
    advo.lose_answer["update"] = [lost("advoware")]
    assert (await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)).result is Result.FAILED
    assert advo.records[betnr]["titel"] == "Dipl.-Ing."
    world.clock.tick(60)
    espo.edit(rid, titel="Prof.")  # the person again: the value of the first, stale record
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.UPDATED and out.plan is not None and not out.plan.conflicts
    assert espo.records[rid]["titel"] == "Prof." == advo.records[betnr]["titel"]
    assert not conflict_notices(world)


async def test_a_save_during_the_retry_after_a_lost_answer_is_kept(world: World) -> None:
    """After a lost PUT answer, the retry's final write meets a person's save (409): deciding again
    on what the run wrote, their value wins; nothing is overwritten silently."""
    espo, advo = world.espo, world.advo
    rid, betnr = await crm_edit_whose_put_answer_is_lost(world)  # Advoware holds Prof.
    world.advo.edit(betnr, vorname="Käthe")  # staff edit another field: the retry writes to EspoCRM
    person_saves_during_our_write(world, rid, titel="Prof. Dr.")
    out = await world.engine.sync_record(rid, Trigger.RETRY_NOW)
    assert out.result is Result.UPDATED and out.plan is not None and not out.plan.conflicts
    assert espo.records[rid]["titel"] == "Prof. Dr." == advo.records[betnr]["titel"]
    assert espo.records[rid]["firstName"] == "Käthe"
    assert not conflict_notices(world)


async def test_a_settled_field_drops_its_old_write_verification_baseline(world: World) -> None:
    """Advoware once stored a title shorter than sent (a known divergence, kept as its baseline);
    a later PUT of another title is applied but its answer lost, and the next sync writes only
    another field: the old baseline must not come back, or the person's next title is a false
    conflict naming their own earlier one."""
    espo, advo = world.espo, world.advo
    rid, betnr = await linked(world)
    original = advo.update_beteiligter

    async def cut_short_once(betnr: int, payload: dict[str, Any]) -> dict[str, Any]:
        advo.update_beteiligter = original  # type: ignore[method-assign]  # a fake patched for this test
        return await original(betnr, {**payload, "titel": payload["titel"][:2]})

    advo.update_beteiligter = cut_short_once  # type: ignore[method-assign]  # a fake patched for this test
    espo.edit(rid, titel="Prof.")
    await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert advo.records[betnr]["titel"] == "Pr"  # reported, kept as Advoware's baseline
    world.clock.tick(60)
    espo.edit(rid, titel="Dr. med.")
    advo.lose_answer["update"] = [lost("advoware")]
    assert (await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)).result is Result.FAILED
    world.clock.tick(60)
    espo.edit(rid, firstName="Käthe")
    assert (await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)).result is Result.UPDATED
    snap = await world.stores.snapshots.get(rid)
    assert snap is not None and "title" not in (snap.extra.get("advo_baseline") or {})
    world.clock.tick(60)
    espo.edit(rid, titel="Prof. Dr.")
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.plan is not None and not out.plan.conflicts
    assert advo.records[betnr]["titel"] == "Prof. Dr."
    assert not conflict_notices(world)


async def test_a_refused_put_takes_its_record_back(world: World) -> None:
    """Advoware refused the PUT (400: nothing carried out). Staff then type that very value in
    Advoware and the person reverts EspoCRM: staff's edit is an edit, not "ours"."""
    espo, advo = world.espo, world.advo
    rid, betnr = await linked(world)
    espo.edit(rid, titel="Prof.")
    advo.fail_next["update"] = [FatalError("refused", system="advoware", status_code=400)]
    assert (await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)).result is Result.PERMANENTLY_FAILED
    snap = await world.stores.snapshots.get(rid)
    assert snap is not None and snap.in_doubt == {}
    world.clock.tick(60)
    advo.edit(betnr, titel="Prof.")
    espo.edit(rid, titel="Dr.")
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.plan is not None and [(c.field, c.rule) for c in out.plan.changes] == [
        ("title", Rule.ADVO_CHANGED)
    ]
    assert espo.records[rid]["titel"] == "Prof."


async def test_a_record_not_applied_is_dropped_by_the_next_sync_even_without_writes(world: World) -> None:
    espo, advo = world.espo, world.advo
    rid, betnr = await linked(world)
    espo.edit(rid, titel="Prof.")
    advo.fail_next["update"] = [lost("advoware")]  # not carried out
    assert (await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)).result is Result.FAILED
    snap = await world.stores.snapshots.get(rid)
    assert snap is not None and snap.in_doubt == {in_doubt.ADVO: {"title": "Prof."}}
    world.clock.tick(60)
    espo.edit(rid, titel="Dr.")  # the person takes it back: nothing to write
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.UNCHANGED and advo.records[betnr]["titel"] == "Dr."
    snap = await world.stores.snapshots.get(rid)
    assert snap is not None and snap.in_doubt == {}
    raw = await world.redis.get(keys.snapshot(rid))
    assert "in_doubt" not in json.loads(raw)  # readable by a version from before it


async def test_a_first_sync_records_nothing(world: World) -> None:
    espo, advo = world.espo, world.advo
    rid, betnr = await linked(world)
    await world.redis.flushall()  # no snapshot: the next sync is a first sync
    espo.edit(rid, titel="Prof.")
    advo.lose_answer["update"] = [lost("advoware")]
    assert (await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)).result is Result.FAILED
    assert advo.records[betnr]["titel"] == "Prof."
    assert await world.stores.snapshots.get(rid) is None


# ------------------------------------------------------------------ the pure rules (the table)
def test_record_names_what_a_run_sends_to_each_side() -> None:
    content = {"title": "Dr.", "first_name": "Käthe", "last_name": "N", "birth_date": "1970-01-01"}
    assert in_doubt.record(content, ["title"], ["birth_date"]) == {
        in_doubt.ADVO: {"title": "Dr."},
        in_doubt.ESPO: {"birth_date": "1970-01-01"},
    }
    assert in_doubt.record(content, ["title"], []) == {in_doubt.ADVO: {"title": "Dr."}}
    assert in_doubt.record(content, [], []) == {}


@pytest.mark.parametrize(
    ("advo_title", "espo_title", "settled"),
    [
        ("Prof.", "Dr.", {"title": "Prof."}),  # the side holds the value sent: ours, applied
        ("Dr.", "Dr.", {}),  # not applied
        ("Dipl.-Ing.", "Dr.", {}),  # staff changed it since: an edit as usual
    ],
)
def test_settled_takes_the_value_sent_where_the_side_holds_it(
    advo_title: str, espo_title: str, settled: dict[str, Any]
) -> None:
    doubt = {in_doubt.ADVO: {"title": "Prof."}}
    assert in_doubt.settled(doubt, {"title": espo_title}, {"title": advo_title}) == settled


def test_settled_reads_each_side_for_its_own_writes() -> None:
    doubt = {in_doubt.ADVO: {"title": "Prof."}, in_doubt.ESPO: {"first_name": "Käthe"}}
    assert in_doubt.settled(doubt, {"first_name": "Käthe", "title": "Prof."}, {"title": "Dr."}) == {
        "first_name": "Käthe"
    }
    assert in_doubt.settled({}, {}, {}) == {} and in_doubt.settled(None, {}, {}) == {}


def test_a_plan_against_the_settled_base_is_one_sided() -> None:
    from services.sync.decide import decide

    snapshot = {"title": "Dr."}
    doubt = {in_doubt.ADVO: {"title": "Prof."}}
    espo, advo = {"title": "Prof. Dr."}, {"title": "Prof."}
    plain = decide(espo, advo, snapshot)
    assert plain.conflicts  # the old base: both sides "changed"
    plan = decide(espo, advo, {**snapshot, **in_doubt.settled(doubt, espo, advo)})
    assert plan.basis is Basis.SNAPSHOT and not plan.conflicts and plan.to_advo == {"title"}
