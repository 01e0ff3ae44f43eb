"""Restore an overwritten Advoware value (services/ops/restore.py) and forget one record's traces
(services/sync/forget.py), on the fakes' world."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from services.errors import OperationError
from services.ops.restore import decide_restore, restore
from services.store import keys
from services.sync.forget import forget
from services.sync.model import Trigger
from tests.support.runtime import World
from tests.unit.test_engine import PERSON_ESPO

CONFLICT: list[dict[str, Any]] = [
    {"at": "2026-12-06T10:00:00+00:00", "conflicts": []},
    {
        "at": "2026-12-06T09:00:00+00:00",
        "conflicts": [{"field": "last_name", "espocrm": "Meier", "advoware_overwritten": "Schulze"}],
    },
]


# --------------------------------------------------------------------------- the decision (table rows)


def test_no_conflict_on_the_field_is_refused_404() -> None:
    with pytest.raises(OperationError) as exc:
        decide_restore(CONFLICT, "title", {"title": "Dr."}, {"title": "Dr."})
    assert exc.value.status == 404


def test_changed_in_espocrm_since_is_refused_409() -> None:
    with pytest.raises(OperationError) as exc:
        decide_restore(CONFLICT, "last_name", {"last_name": "Neu"}, {"last_name": "Meier"})
    assert exc.value.status == 409 and "EspoCRM" in str(exc.value)


def test_changed_in_advoware_since_is_refused_409() -> None:
    with pytest.raises(OperationError) as exc:
        decide_restore(CONFLICT, "last_name", {"last_name": "Meier"}, {"last_name": "Anders"})
    assert exc.value.status == 409 and "Advoware" in str(exc.value)


def test_both_sides_still_hold_the_winner_restores_the_overwritten_value() -> None:
    # "meier" vs "Meier": the comparison form the sync uses decides, not the spelling
    plan = decide_restore(CONFLICT, "last_name", {"last_name": "Meier"}, {"last_name": "Meier"})
    assert (plan.field, plan.value, plan.replaces) == ("last_name", "Schulze", "Meier")
    assert plan.conflict_at == "2026-12-06T09:00:00+00:00"


# --------------------------------------------------------------------------- restore on the engine


pytestmark = pytest.mark.world(ESPOCRM_NOTIFY_USER_ID="u1")


@pytest.fixture(autouse=True)
def real_time(world: World) -> None:
    """History entries are kept by age: the world's clock starts at the real now."""
    world.clock.now = datetime.now(UTC)


async def conflicted(world: World) -> tuple[str, int]:
    """A linked record whose last name was changed on both sides: EspoCRM's "Meier" won over
    Advoware's "Schulze"."""
    rid = world.espo.add(dict(PERSON_ESPO))
    await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
    betnr = int(world.espo.records[rid]["betnr"])
    world.advo.edit(betnr, name="Schulze")
    world.espo.edit(rid, lastName="Meier", name="Jürgen Meier")
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.plan is not None and [c.field for c in out.plan.conflicts] == ["last_name"]
    return rid, betnr


async def test_restore_puts_the_overwritten_value_on_both_sides_and_records_the_decision(
    world: World,
) -> None:
    rid, betnr = await conflicted(world)
    result = await restore(world.rt, rid, "last_name")
    assert result["restored"] == "last_name" and result["sync"]["result"] == "updated"
    assert world.espo.records[rid]["lastName"] == "Schulze"
    assert world.advo.records[betnr]["name"] == "Schulze"
    entries = await world.history.entries(rid)
    decision = next(e for e in entries if e["trigger"] == "restore")
    assert decision["extra"] == {"decided_by": "person"} and decision["winner"] == "advoware"
    assert decision["changes"] == [
        {"field": "last_name", "system": "espocrm", "old": "Meier", "new": "Schulze"}
    ]
    # Done once: both sides now differ from the value that won, so a second restore is refused.
    with pytest.raises(OperationError) as exc:
        await restore(world.rt, rid, "last_name")
    assert exc.value.status == 409


async def test_restore_is_refused_and_writes_nothing_when_the_field_changed_again(
    world: World,
) -> None:
    rid, betnr = await conflicted(world)
    world.espo.edit(rid, lastName="Neumann", name="Jürgen Neumann")  # a person, after the conflict
    writes_before = world.espo.calls["update"]
    with pytest.raises(OperationError) as exc:
        await restore(world.rt, rid, "last_name")
    assert exc.value.status == 409 and "EspoCRM" in str(exc.value)
    assert world.espo.calls["update"] == writes_before
    assert world.espo.records[rid]["lastName"] == "Neumann" and world.advo.records[betnr]["name"] == "Meier"


async def test_restore_is_refused_while_a_sync_holds_the_record(world: World) -> None:
    rid, _ = await conflicted(world)
    assert await world.engine.locks.acquire(rid)
    with pytest.raises(OperationError) as exc:
        await restore(world.rt, rid, "last_name")
    assert exc.value.status == 409


# --------------------------------------------------------------------------- forget


async def traces_of(redis: Any, record_id: str) -> list[str]:
    """Every vmh:* key whose name or value mentions the record (the registry's prefix)."""
    found = []
    async for name in redis.scan_iter(match=keys.PREFIX + "*"):
        kind = await redis.type(name)
        if kind == "string":
            values = [await redis.get(name)]
        elif kind == "hash":
            mapping = await redis.hgetall(name)
            values = [*mapping, *mapping.values()]
        elif kind == "list":
            values = await redis.lrange(name, 0, -1)
        elif kind == "set":
            values = list(await redis.smembers(name))
        else:  # zset
            values = await redis.zrange(name, 0, -1)
        if record_id in name or any(record_id in str(v) for v in values):
            found.append(name)
    return sorted(found)


async def test_forget_leaves_nothing_of_the_record_under_any_key(world: World) -> None:
    rid, _ = await conflicted(world)
    other = world.espo.add({**PERSON_ESPO, "lastName": "Anders", "name": "Jürgen Anders"})
    await world.engine.sync_record(other, Trigger.WEBHOOK_CREATE)
    redis = world.redis
    await redis.hset(keys.NOTIFY_OUTBOX, "n1", json.dumps({"id": "n1", "record_id": rid, "message": "x"}))
    assert len(await traces_of(redis, rid)) >= 3  # snapshot, history, notified marks, ...
    done = await forget(redis, rid)
    assert await traces_of(redis, rid) == []
    assert keys.snapshot(rid) in done.keys_deleted and keys.history(rid) in done.keys_deleted
    # The other record and the identity index (Advoware's parties) are untouched.
    assert await redis.exists(keys.snapshot(other), keys.history(other)) == 2
    assert await redis.hlen(keys.IDENTITY_ENTRIES) == 2


async def test_an_espocrm_delete_forgets_the_record_by_itself(world: World) -> None:
    rid, betnr = await conflicted(world)
    del world.espo.records[rid]
    await world.engine.handle_espo_delete(rid)
    assert await traces_of(world.redis, rid) == []
    assert betnr in world.advo.records  # the Advoware party stays, by design
    assert any(str(betnr) in msg for _, msg in world.espo.notifications)  # and staff are told


async def test_forget_waits_for_no_sync_and_refuses_while_one_holds_the_record(world: World) -> None:
    """A sync running meanwhile would write the history or intent back after the erasure."""
    from services.sync.forget import forget_locked

    rid, _ = await conflicted(world)
    token = await world.engine.locks.acquire(rid)
    assert token
    with pytest.raises(OperationError) as exc:
        await forget_locked(world.engine.locks, rid)
    assert exc.value.status == 409 and await world.redis.exists(keys.snapshot(rid))
    await world.engine.locks.release(rid, token)
    await forget_locked(world.engine.locks, rid)
    assert await traces_of(world.redis, rid) == []


async def test_an_espocrm_delete_waits_for_the_running_sync_before_it_forgets(world: World) -> None:
    import asyncio

    rid, _ = await conflicted(world)
    del world.espo.records[rid]
    token = await world.engine.locks.acquire(rid)
    assert token
    delete = asyncio.create_task(world.engine.handle_espo_delete(rid))
    await asyncio.sleep(0.3)
    assert not delete.done()  # waits for the sync's lock
    await world.redis.lpush(keys.history(rid), json.dumps({"at": "x", "written": "by the sync"}))
    await world.engine.locks.release(rid, token)
    await asyncio.wait_for(delete, 10)
    assert await traces_of(world.redis, rid) == []


async def unsettled_create_and_a_waiting_duplicate(world: World) -> tuple[str, str]:
    """Record A's POST timed out (its outcome unknown); B, of the same person, waits for it."""
    from services.errors import ResponseTimeoutError
    from services.sync.model import Result

    espo, engine = world.espo, world.engine
    first, second = espo.add(dict(PERSON_ESPO)), espo.add(dict(PERSON_ESPO))
    world.advo.fail_next["create"] = [ResponseTimeoutError("read timeout", system="advoware")]
    assert (await engine.sync_record(first, Trigger.WEBHOOK_CREATE)).result is Result.FAILED
    assert (await engine.sync_record(second, Trigger.WEBHOOK_CREATE)).result is Result.SKIPPED
    return first, second


async def unsettled_marks(redis: Any, record_id: str) -> list[str]:
    """The unsettled-create marks naming the record (B's history names it too, by id: B's)."""
    return [
        name
        async for name in redis.scan_iter(match=keys.unresolved_create("*"))
        if record_id in await redis.smembers(name)
    ]


async def test_forget_of_a_record_with_an_unsettled_create_lets_the_other_create(
    world: World,
) -> None:
    from services.sync.model import Result

    first, second = await unsettled_create_and_a_waiting_duplicate(world)
    done = await forget(world.redis, first)
    assert keys.create_intent(first) in done.keys_deleted
    assert await unsettled_marks(world.redis, first) == []
    assert (await world.engine.sync_record(second, Trigger.SWEEP)).result is Result.CREATED


async def test_an_espocrm_delete_of_a_record_with_an_unsettled_create_lets_the_other_create(
    world: World,
) -> None:
    from services.sync.model import Result

    first, second = await unsettled_create_and_a_waiting_duplicate(world)
    del world.espo.records[first]
    await world.engine.handle_espo_delete(first)
    assert await unsettled_marks(world.redis, first) == []
    assert (await world.engine.sync_record(second, Trigger.SWEEP)).result is Result.CREATED
