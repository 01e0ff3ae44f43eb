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
from tests.support.fakes import fake_env
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


@pytest.fixture
def env() -> dict[str, Any]:
    """The fakes' world with the ops recorder (history) wired in, as the service runs."""
    from services.runtime import build_runtime
    from services.store.counters import Metrics
    from tests.support.runtime import settings_with

    world = fake_env()
    clock, redis = world["clock"], world["redis"]
    clock.now = datetime.now(UTC)  # history entries are kept by age against the real clock
    rt = build_runtime(
        settings_with(ESPOCRM_NOTIFY_USER_ID="u1"),
        espo=world["espo"],
        advo=world["advo"],
        redis=redis,
        clock=lambda: clock.now,
        metrics=Metrics(redis),
    )
    return {**world, "rt": rt, "engine": rt.engine}


async def conflicted(env: dict[str, Any]) -> tuple[str, int]:
    """A linked record whose last name was changed on both sides: EspoCRM's "Meier" won over
    Advoware's "Schulze"."""
    rid = env["espo"].add(dict(PERSON_ESPO))
    await env["engine"].sync_record(rid, Trigger.WEBHOOK_CREATE)
    betnr = int(env["espo"].records[rid]["betnr"])
    env["advo"].edit(betnr, name="Schulze")
    env["espo"].edit(rid, lastName="Meier", name="Jürgen Meier")
    out = await env["engine"].sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.plan is not None and [c.field for c in out.plan.conflicts] == ["last_name"]
    return rid, betnr


async def test_restore_puts_the_overwritten_value_on_both_sides_and_records_the_decision(
    env: dict[str, Any],
) -> None:
    rid, betnr = await conflicted(env)
    result = await restore(env["rt"], rid, "last_name")
    assert result["restored"] == "last_name" and result["sync"]["result"] == "updated"
    assert env["espo"].records[rid]["lastName"] == "Schulze"
    assert env["advo"].records[betnr]["name"] == "Schulze"
    entries = await env["engine"].recorder.history.entries(rid)
    decision = next(e for e in entries if e["trigger"] == "restore")
    assert decision["extra"] == {"decided_by": "person"} and decision["winner"] == "advoware"
    assert decision["changes"] == [
        {"field": "last_name", "system": "espocrm", "old": "Meier", "new": "Schulze"}
    ]
    # Done once: both sides now differ from the value that won, so a second restore is refused.
    with pytest.raises(OperationError) as exc:
        await restore(env["rt"], rid, "last_name")
    assert exc.value.status == 409


async def test_restore_is_refused_and_writes_nothing_when_the_field_changed_again(
    env: dict[str, Any],
) -> None:
    rid, betnr = await conflicted(env)
    env["espo"].edit(rid, lastName="Neumann", name="Jürgen Neumann")  # a person, after the conflict
    writes_before = env["espo"].calls["update"]
    with pytest.raises(OperationError) as exc:
        await restore(env["rt"], rid, "last_name")
    assert exc.value.status == 409 and "EspoCRM" in str(exc.value)
    assert env["espo"].calls["update"] == writes_before
    assert env["espo"].records[rid]["lastName"] == "Neumann" and env["advo"].records[betnr]["name"] == "Meier"


async def test_restore_is_refused_while_a_sync_holds_the_record(env: dict[str, Any]) -> None:
    rid, _ = await conflicted(env)
    assert await env["engine"].locks.acquire(rid)
    with pytest.raises(OperationError) as exc:
        await restore(env["rt"], rid, "last_name")
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


async def test_forget_leaves_nothing_of_the_record_under_any_key(env: dict[str, Any]) -> None:
    rid, _ = await conflicted(env)
    other = env["espo"].add({**PERSON_ESPO, "lastName": "Anders", "name": "Jürgen Anders"})
    await env["engine"].sync_record(other, Trigger.WEBHOOK_CREATE)
    redis = env["redis"]
    await redis.hset(keys.NOTIFY_OUTBOX, "n1", json.dumps({"id": "n1", "record_id": rid, "message": "x"}))
    assert len(await traces_of(redis, rid)) >= 3  # snapshot, history, notified marks, ...
    done = await forget(redis, rid)
    assert await traces_of(redis, rid) == []
    assert keys.snapshot(rid) in done.keys_deleted and keys.history(rid) in done.keys_deleted
    # The other record and the identity index (Advoware's parties) are untouched.
    assert await redis.exists(keys.snapshot(other), keys.history(other)) == 2
    assert await redis.hlen(keys.IDENTITY_ENTRIES) == 2


async def test_an_espocrm_delete_forgets_the_record_by_itself(env: dict[str, Any]) -> None:
    rid, betnr = await conflicted(env)
    del env["espo"].records[rid]
    await env["engine"].handle_espo_delete(rid)
    assert await traces_of(env["redis"], rid) == []
    assert betnr in env["advo"].records  # the Advoware party stays, by design
    assert any(str(betnr) in msg for _, msg in env["espo"].notifications)  # and staff are told


async def test_forget_waits_for_no_sync_and_refuses_while_one_holds_the_record(env: dict[str, Any]) -> None:
    """A sync running meanwhile would write the history or intent back after the erasure."""
    from services.sync.forget import forget_locked

    rid, _ = await conflicted(env)
    token = await env["engine"].locks.acquire(rid)
    assert token
    with pytest.raises(OperationError) as exc:
        await forget_locked(env["engine"].locks, rid)
    assert exc.value.status == 409 and await env["redis"].exists(keys.snapshot(rid))
    await env["engine"].locks.release(rid, token)
    await forget_locked(env["engine"].locks, rid)
    assert await traces_of(env["redis"], rid) == []


async def test_an_espocrm_delete_waits_for_the_running_sync_before_it_forgets(env: dict[str, Any]) -> None:
    import asyncio

    rid, _ = await conflicted(env)
    del env["espo"].records[rid]
    token = await env["engine"].locks.acquire(rid)
    assert token
    delete = asyncio.create_task(env["engine"].handle_espo_delete(rid))
    await asyncio.sleep(0.3)
    assert not delete.done()  # waits for the sync's lock
    await env["redis"].lpush(keys.history(rid), json.dumps({"at": "x", "written": "by the sync"}))
    await env["engine"].locks.release(rid, token)
    await asyncio.wait_for(delete, 10)
    assert await traces_of(env["redis"], rid) == []


async def unsettled_create_and_a_waiting_duplicate(env: dict[str, Any]) -> tuple[str, str]:
    """Record A's POST timed out (its outcome unknown); B, of the same person, waits for it."""
    from services.errors import ResponseTimeoutError
    from services.sync.model import Result

    espo, engine = env["espo"], env["engine"]
    first, second = espo.add(dict(PERSON_ESPO)), espo.add(dict(PERSON_ESPO))
    env["advo"].fail_next["create"] = [ResponseTimeoutError("read timeout", system="advoware")]
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
    env: dict[str, Any],
) -> None:
    from services.sync.model import Result

    first, second = await unsettled_create_and_a_waiting_duplicate(env)
    done = await forget(env["redis"], first)
    assert keys.create_intent(first) in done.keys_deleted
    assert await unsettled_marks(env["redis"], first) == []
    assert (await env["engine"].sync_record(second, Trigger.SWEEP)).result is Result.CREATED


async def test_an_espocrm_delete_of_a_record_with_an_unsettled_create_lets_the_other_create(
    env: dict[str, Any],
) -> None:
    from services.sync.model import Result

    first, second = await unsettled_create_and_a_waiting_duplicate(env)
    del env["espo"].records[first]
    await env["engine"].handle_espo_delete(first)
    assert await unsettled_marks(env["redis"], first) == []
    assert (await env["engine"].sync_record(second, Trigger.SWEEP)).result is Result.CREATED
