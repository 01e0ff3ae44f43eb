"""A record lease lost mid-sync (expired while the process or Redis stalled, or force-released)
stops the run before its next write: nothing is written without the lease, a create in flight
is never POSTed twice, and the loss is recorded for the lease's new holder."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.http.base import write_check
from services.store import keys
from services.store.lease import LeaseLost
from services.sync.model import Result, Trigger
from tests.support.runtime import World
from tests.unit.test_engine import PERSON_ESPO, linked
from tests.unit.test_http_base import Demo, answer

pytestmark = pytest.mark.world(ESPOCRM_NOTIFY_USER_ID="u1")


def steal_lock_after_first_espocrm_write(world: World, rid: str) -> None:
    """After the run's first EspoCRM write (its `syncing` mark), the lease expires and another
    worker takes it (what a stalled process finds when it wakes up)."""
    original = world.espo.update

    async def update(*args: Any, **kwargs: Any) -> dict[str, Any]:
        saved = await original(*args, **kwargs)
        await world.redis.set(keys.record_lock(rid), "another-workers-token")
        return saved

    world.espo.update = update  # type: ignore[method-assign]  # a fake patched for this test


async def test_lost_lease_stops_a_create_before_its_post(world: World) -> None:
    rid = world.espo.add(dict(PERSON_ESPO))
    steal_lock_after_first_espocrm_write(world, rid)
    writes_before = len(world.espo.updates)
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
    assert out.result is Result.LOCKED and out.reason == "lease lost mid-sync"
    assert not world.advo.records  # no POST without the lease
    assert len(world.espo.updates) == writes_before + 1  # only the `syncing` mark, before the loss
    assert not world.espo.records[rid].get("betnr")
    assert await world.redis.get(keys.record_again(rid))  # the new holder runs it once more
    assert await world.redis.get(keys.record_lock(rid)) == "another-workers-token"  # not released
    assert int(await world.redis.hget(keys.STATS, "lease_lost")) == 1


async def test_lost_lease_stops_an_update_before_its_put(world: World) -> None:
    rid, _betnr = await linked(world)
    world.espo.edit(rid, titel="Prof.")
    steal_lock_after_first_espocrm_write(world, rid)
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.LOCKED
    assert not world.advo.puts  # no PUT without the lease


async def test_a_write_is_not_sent_when_the_task_lost_its_lease() -> None:
    """The client base runs the task's write check before every write, reads pass."""
    handler, seen = answer(httpx.Response(200, json={"ok": True}))
    client = Demo(handler)

    async def lost() -> None:
        raise LeaseLost(keys.record_lock("r1"))

    reset = write_check.set(lost)
    try:
        assert await client.request("GET", "X/1", template="X/{id}") == {"ok": True}
        with pytest.raises(LeaseLost):
            await client.request("PUT", "X/1", template="X/{id}", body={"a": 1})
        with pytest.raises(LeaseLost):
            await client.request("POST", "X", template="X", body={"a": 1})
    finally:
        write_check.reset(reset)
    assert [r.method for r in seen] == ["GET"]
    await client.aclose()
