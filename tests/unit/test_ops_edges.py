"""The operators' write actions at their edges (the tables in services/ops/restore.py,
console.py, relink.py, actions.py and answers.py): the write's answer lost, a person saving
the record meanwhile, Redis emptied afterwards, the other system down now or a minute ago.
Each action answers an OperationError with a reason (never an unhandled error: the ops API's
500), loses no edit, links no party twice and leaves no record without a way out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import fakeredis
import pytest

from services.errors import (
    ConnectFailedError,
    OperationError,
    ResponseTimeoutError,
    UnavailableError,
    VersionConflictError,
)
from services.ops.actions import requeue_failed, unlock
from services.ops.console import deletions, needs_person, set_excluded
from services.ops.relink import relink
from services.ops.restore import decide_restore, restore
from services.store import keys
from services.sync.model import Trigger
from tests.support.fakes import fake_redis
from tests.support.runtime import World
from tests.unit.test_ops_console import linked
from tests.unit.test_restore_forget import conflicted

pytestmark = pytest.mark.world(ESPOCRM_NOTIFY_USER_ID="u1")


@pytest.fixture(autouse=True)
def real_time(world: World) -> None:
    """History entries are kept by age: the world's clock starts at the real now."""
    world.clock.now = datetime.now(UTC)


def lost(system: str = "espocrm") -> ResponseTimeoutError:
    return ResponseTimeoutError("no answer in time", system=system)


def down(system: str) -> UnavailableError:
    return UnavailableError("service unavailable", system=system, status_code=503)


def stale(rid: str) -> VersionConflictError:
    return VersionConflictError(
        "version conflict", system="espocrm", record_id=rid, current_values={}, version_number=None
    )


def party(world: World, like: int, name: str = "Schulze") -> int:
    """Another Advoware party, a copy of `like` under another name."""
    fields = {
        k: v for k, v in world.advo.records[like].items() if k not in ("betNr", "angelegtAm", "geaendertAm")
    }
    return int(world.advo.add({**fields, "name": name}))


async def refused(call: Any, status: int) -> OperationError:
    with pytest.raises(OperationError) as exc:
        await call
    assert exc.value.status == status, str(exc.value)
    return exc.value


# --------------------------------------------------------------------------- restore


async def test_restore_whose_answer_is_lost_says_so_and_a_repeat_finishes_it(world: World) -> None:
    rid, betnr = await conflicted(world)
    world.espo.lose_answer["update"] = [lost()]
    err = await refused(restore(world.rt, rid, "last_name"), 503)
    assert "may have been carried out" in str(err)
    assert world.espo.records[rid]["lastName"] == "Schulze"  # the write was carried out
    again = await restore(world.rt, rid, "last_name")
    assert again["sync"]["result"] == "updated" and world.advo.records[betnr]["name"] == "Schulze"
    entries = await world.history.entries(rid)
    assert [e["trigger"] for e in entries].count("restore") == 1


def test_restore_repeated_after_a_lost_answer_finishes_without_writing_again() -> None:
    """EspoCRM already holds the overwritten value, Advoware still the winner: the first
    attempt's write was carried out (restore.py's table, row 2)."""
    conflict = [
        {"at": "t1", "conflicts": [{"field": "title", "espocrm": "Dr.", "advoware_overwritten": "Prof."}]}
    ]
    plan = decide_restore(conflict, "title", {"title": "Prof."}, {"title": "Dr."})
    assert plan.written and plan.value == "Prof."
    with pytest.raises(OperationError) as exc:  # both sides restored: nothing left to do
        decide_restore(conflict, "title", {"title": "Prof."}, {"title": "Prof."})
    assert exc.value.status == 409 and "already" in str(exc.value)


async def test_restore_meets_a_persons_save_with_409_and_keeps_the_edit(world: World) -> None:
    rid, _ = await conflicted(world)
    world.espo.meanwhile["update"] = [lambda: world.espo.edit(rid, firstName="Hanna")]
    await refused(restore(world.rt, rid, "last_name"), 409)
    assert world.espo.records[rid]["firstName"] == "Hanna"
    assert world.espo.records[rid]["lastName"] == "Meier"


async def test_restore_while_a_system_is_down_writes_nothing_and_answers_503(world: World) -> None:
    rid, _ = await conflicted(world)
    updates = len(world.espo.updates)
    world.advo.down = down("advoware")
    await refused(restore(world.rt, rid, "last_name"), 503)
    world.advo.down, world.espo.down = None, down("espocrm")
    await refused(restore(world.rt, rid, "last_name"), 503)
    assert len(world.espo.updates) == updates and world.espo.records[rid]["lastName"] == "Meier"


async def test_restore_with_advoware_down_after_the_write_is_carried_on_by_the_next_sync(
    world: World,
) -> None:
    rid, betnr = await conflicted(world)
    world.advo.fail_next["update"] = [down("advoware")] * 10
    result = await restore(world.rt, rid, "last_name")
    assert result["sync"]["result"] != "updated" and world.advo.records[betnr]["name"] == "Meier"
    world.advo.fail_next.clear()
    await world.engine.sync_record(rid, Trigger.MANUAL)
    assert world.advo.records[betnr]["name"] == "Schulze" == world.espo.records[rid]["lastName"]


async def test_restore_survives_redis_emptied_afterwards_and_is_refused_without_history(
    world: World,
) -> None:
    rid, betnr = await conflicted(world)
    await restore(world.rt, rid, "last_name")
    await world.redis.flushall()
    await world.engine.sync_record(rid, Trigger.SWEEP)
    assert world.advo.records[betnr]["name"] == "Schulze" == world.espo.records[rid]["lastName"]
    rid2, _ = await conflicted(world)
    await world.redis.flushall()
    await refused(restore(world.rt, rid2, "last_name"), 404)


# --------------------------------------------------------------------------- exclude / include


async def test_exclude_whose_answer_is_lost_can_be_repeated(world: World) -> None:
    rid, _ = await linked(world)
    world.espo.lose_answer["update"] = [lost()]
    await refused(set_excluded(world.rt, rid, excluded=True), 503)
    again = await set_excluded(world.rt, rid, excluded=True)
    assert again["syncStatus"] == "excluded" == world.espo.records[rid]["syncStatus"]


async def test_a_second_exclude_answers_the_record_is_excluded(world: World) -> None:
    rid, _ = await linked(world)
    await set_excluded(world.rt, rid, excluded=True)
    again = await set_excluded(world.rt, rid, excluded=True)
    assert again == {"id": rid, "syncStatus": "excluded", "was": "excluded"}


async def test_exclude_keeps_a_persons_save_meanwhile_and_answers_409_on_a_stale_write(
    world: World,
) -> None:
    rid, _ = await linked(world)
    world.espo.meanwhile["update"] = [lambda: world.espo.edit(rid, lastName="Neu")]
    await set_excluded(world.rt, rid, excluded=True)
    assert world.espo.records[rid]["lastName"] == "Neu"
    assert world.espo.records[rid]["syncStatus"] == "excluded"
    world.espo.fail_next["update"] = [stale(rid)]
    await refused(set_excluded(world.rt, rid, excluded=False), 409)
    assert world.espo.records[rid]["syncStatus"] == "excluded"  # still there to include


async def test_an_excluded_record_stays_excluded_when_redis_is_emptied(world: World) -> None:
    rid, betnr = await linked(world)
    await set_excluded(world.rt, rid, excluded=True)
    await world.redis.flushall()
    world.espo.edit(rid, lastName="Neu")
    await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert world.espo.records[rid]["syncStatus"] == "excluded"
    assert world.advo.records[betnr]["name"] != "Neu"


async def test_include_while_advoware_is_down_leaves_a_way_out(world: World) -> None:
    rid, betnr = await linked(world)
    await set_excluded(world.rt, rid, excluded=True)
    world.espo.edit(rid, lastName="Neu")
    world.advo.down = down("advoware")
    result = await set_excluded(world.rt, rid, excluded=False)
    assert result["syncStatus"] == "pending_sync" and result["sync"]["result"] != "updated"
    assert world.espo.records[rid]["syncStatus"] != "excluded"
    # A minute later Advoware answers again: the minute's probe releases the record and it syncs.
    world.advo.down = None
    world.clock.tick(61)
    released = await world.rt.breakers.release()
    assert rid in released.ids
    await world.engine.sync_many(released.ids, Trigger.RETRY_NOW)
    assert world.advo.records[betnr]["name"] == "Neu"


async def test_exclude_while_espocrm_is_down_answers_503(world: World) -> None:
    rid, _ = await linked(world)
    world.espo.down = ConnectFailedError("connect failed", system="espocrm")
    err = await refused(set_excluded(world.rt, rid, excluded=True), 503)
    assert "nothing written" in str(err)


# --------------------------------------------------------------------------- relink


async def test_relink_whose_answer_is_lost_can_be_repeated_and_syncs_the_new_pair(
    world: World,
) -> None:
    rid, old = await linked(world)
    new = party(world, old)
    world.espo.lose_answer["update"] = [lost()]
    await refused(relink(world.engine, rid, new), 503)
    assert world.espo.records[rid]["betnr"] == new
    again = await relink(world.engine, rid, new)
    assert again["relinked"] and world.espo.records[rid]["betnr"] == new
    assert world.espo.records[rid]["syncStatus"] in ("clean", "conflict")
    assert old != new


async def test_relink_while_advoware_is_down_or_on_a_stale_write_writes_nothing(
    world: World,
) -> None:
    rid, old = await linked(world)
    new = party(world, old)
    world.advo.down = down("advoware")
    await refused(relink(world.engine, rid, new), 503)
    world.advo.down = None
    world.espo.fail_next["update"] = [stale(rid)]
    await refused(relink(world.engine, rid, new), 409)
    assert world.espo.records[rid]["betnr"] == old


async def test_relink_keeps_a_persons_save_meanwhile(world: World) -> None:
    rid, old = await linked(world)
    new = party(world, old)
    world.espo.meanwhile["update"] = [lambda: world.espo.edit(rid, phoneNumber="+49 30 1234567")]
    await relink(world.engine, rid, new)
    assert world.espo.records[rid]["phoneNumber"] == "+49 30 1234567"


async def test_relink_links_no_party_twice_after_redis_is_emptied(world: World) -> None:
    rid, old = await linked(world)
    other, _ = await linked(world, lastName="Anders", name="Jürgen Anders")
    new = party(world, old)
    await relink(world.engine, rid, new)
    await world.redis.flushall()
    err = await refused(relink(world.engine, other, new), 409)
    assert rid in str(err)


# --------------------------------------------------------------------------- retry failed


async def test_retry_leaves_a_record_a_person_excluded_meanwhile_excluded(world: World) -> None:
    first, _ = await linked(world)
    second, _ = await linked(world, lastName="Anders", name="Jürgen Anders")
    for rid in (first, second):
        world.espo.records[rid].update(syncStatus="failed", syncErrorMessage="advoware: 500")
    # The person's exclude lands after the listing, while the first record is requeued.
    world.espo.meanwhile["update"] = [lambda: world.espo.edit(second, syncStatus="excluded")]
    report = await requeue_failed(world.espo, world.engine)
    assert report["requeued"] == [first]
    assert world.espo.records[second]["syncStatus"] == "excluded"


async def test_retry_whose_answer_is_lost_can_be_repeated(world: World) -> None:
    first, _ = await linked(world)
    second, _ = await linked(world, lastName="Anders", name="Jürgen Anders")
    for rid in (first, second):
        world.espo.records[rid].update(syncStatus="permanently_failed", syncRetryCount=5)
    world.espo.lose_answer["update"] = [lost()]
    await refused(requeue_failed(world.espo, world.engine), 503)
    report = await requeue_failed(world.espo, world.engine)
    assert len(report["requeued"]) == 1  # the first was carried out: no longer failed
    assert {world.espo.records[r]["syncStatus"] for r in (first, second)} == {"pending_sync"}


async def test_retry_while_espocrm_is_down_answers_503(world: World) -> None:
    world.espo.down = down("espocrm")
    await refused(requeue_failed(world.espo, world.engine), 503)


# --------------------------------------------------------------------------- unlock


async def test_unlock_while_redis_is_down_answers_503_and_is_safe_to_repeat() -> None:
    redis = fake_redis()
    await redis.set(keys.record_lock("r1"), "token")
    await refused(unlock(redis_gone(), "r1"), 503)
    assert (await unlock(redis, "r1"))["released"] == {"record:r1": True}
    assert (await unlock(redis, "r1"))["released"] == {"record:r1": False}


# --------------------------------------------------------------------------- release held deletions


async def held_deletion(world: World) -> str:
    rid, betnr = await linked(world)
    world.advo.records.pop(betnr)
    guard = world.rt.deletions
    await guard.check_scan(guard.minimum, guard.minimum)  # every linked party missing: tripped
    assert not await guard.allow(rid)
    return rid


async def test_release_while_advoware_is_down_leaves_the_records_waiting_and_can_be_repeated(
    world: World,
) -> None:
    rid = await held_deletion(world)
    world.advo.down = down("advoware")
    done = await deletions(world.rt, release=True)
    assert done["synced"] == {rid: "waiting"}
    waiting = [r for r in (await needs_person(world.rt))["records"] if r["id"] == rid]
    assert [r["kind"] for r in waiting] == ["waiting"]  # listed, with its way out
    assert world.espo.records[rid]["syncStatus"] != "deleted_in_advoware"
    assert (await deletions(world.rt, release=True))["synced"] == {}  # a repeat finds none


def redis_gone() -> fakeredis.FakeAsyncRedis:
    server = fakeredis.FakeServer()
    server.connected = False  # every command raises ConnectionError, as a Redis gone
    return fakeredis.FakeAsyncRedis(server=server, decode_responses=True)


async def test_release_while_redis_is_down_answers_503(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    rid = await held_deletion(world)
    monkeypatch.setattr(world.rt.deletions, "redis", redis_gone())
    await refused(deletions(world.rt, release=True), 503)
    monkeypatch.undo()
    assert await world.rt.deletions.held() == [rid]  # still held, for the next release


# --------------------------------------------------------------------------- the tables' other rows


async def test_include_whose_answer_is_lost_is_refused_on_repeat_and_synced_by_the_sweep(
    world: World,
) -> None:
    rid, betnr = await linked(world)
    await set_excluded(world.rt, rid, excluded=True)
    world.espo.edit(rid, lastName="Neu")
    world.espo.lose_answer["update"] = [lost()]
    await refused(set_excluded(world.rt, rid, excluded=False), 503)
    err = await refused(set_excluded(world.rt, rid, excluded=False), 409)
    assert "pending_sync, not excluded" in str(err)
    await world.engine.sync_record(rid, Trigger.SWEEP)  # its way out: the sweep's pending_sync
    assert world.advo.records[betnr]["name"] == "Neu" and world.espo.records[rid]["syncStatus"] == "clean"


async def test_relink_with_advoware_down_after_the_write_waits_and_is_synced_once_it_answers(
    world: World,
) -> None:
    rid, old = await linked(world)
    new = party(world, old)

    def advoware_goes_down() -> None:
        world.advo.down = down("advoware")

    world.espo.meanwhile["update"] = [advoware_goes_down]
    result = await relink(world.engine, rid, new)
    assert result["result"] == "waiting" and world.espo.records[rid]["betnr"] == new
    world.advo.down = None
    world.clock.tick(61)
    released = await world.rt.breakers.release()
    assert rid in released.ids
    await world.engine.sync_many(released.ids, Trigger.RETRY_NOW)
    assert world.espo.records[rid]["syncStatus"] in ("clean", "conflict")


async def test_retry_leaves_a_record_being_synced_alone_and_survives_redis_emptied(world: World) -> None:
    first, _ = await linked(world)
    second, _ = await linked(world, lastName="Anders", name="Jürgen Anders")
    for rid in (first, second):
        world.espo.records[rid].update(syncStatus="failed", syncErrorMessage="advoware: 500")
    token = await world.engine.locks.acquire(second)  # a sync holds it right now
    report = await requeue_failed(world.espo, world.engine)
    assert (report["requeued"], report["busy"]) == ([first], [second])
    assert token is not None and await world.engine.locks.release(second, token)
    await world.redis.flushall()
    assert world.espo.records[first]["syncStatus"] == "pending_sync"  # lives in EspoCRM
    out = await world.engine.sync_record(first, Trigger.SWEEP)
    assert out.result.value == "unchanged" and world.espo.records[first]["syncStatus"] == "clean"
