"""A write carried out whose answer was lost, then a person's edit of the same field before the
next sync (services/sync/in_doubt.py; issue 20). Without the record of what the run sent, the
next run took the service's own value for a person's edit on that side: a false conflict notice
naming the person's own earlier value, or staff's new Advoware edit overwritten."""

from __future__ import annotations

from typing import Any

import pytest

from services.errors import ResponseTimeoutError
from services.sync import in_doubt
from services.sync.decide import Basis, Rule
from services.sync.model import Result, Trigger
from tests.support.runtime import World
from tests.unit.test_concurrent_edits import linked

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
    assert snap is not None and snap.in_doubt == {in_doubt.ADVO: {"title": "Prof."}, in_doubt.ESPO: {}}
    assert (await world.engine.sync_record(rid, Trigger.RETRY_NOW)).result is Result.UNCHANGED
    snap = await world.stores.snapshots.get(rid)
    assert snap is not None and snap.in_doubt == {}


# ------------------------------------------------------------------ the pure rules (the table)
def test_record_adds_to_an_earlier_runs_writes_in_doubt() -> None:
    earlier = {in_doubt.ADVO: {"title": "Prof.", "first_name": "Käthe"}, in_doubt.ESPO: {"last_name": "M"}}
    content = {"title": "Dr.", "first_name": "Käthe", "last_name": "N", "birth_date": "1970-01-01"}
    assert in_doubt.record(earlier, content, ["title"], ["birth_date"]) == {
        in_doubt.ADVO: {"title": "Dr.", "first_name": "Käthe"},
        in_doubt.ESPO: {"last_name": "M", "birth_date": "1970-01-01"},
    }
    assert in_doubt.record(None, content, [], []) == {in_doubt.ADVO: {}, in_doubt.ESPO: {}}


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
    doubt = {in_doubt.ADVO: {"title": "Prof."}, in_doubt.ESPO: {}}
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
    doubt = {in_doubt.ADVO: {"title": "Prof."}, in_doubt.ESPO: {}}
    espo, advo = {"title": "Prof. Dr."}, {"title": "Prof."}
    plain = decide(espo, advo, snapshot)
    assert plain.conflicts  # the old base: both sides "changed"
    plan = decide(espo, advo, {**snapshot, **in_doubt.settled(doubt, espo, advo)})
    assert plan.basis is Basis.SNAPSHOT and not plan.conflicts and plan.to_advo == {"title"}
