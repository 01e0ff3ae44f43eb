"""Conflict notices are idempotent per record, field and values (services/sync/update.py
`report_conflicts`, services/sync/stores.py `PendingConflicts`, services/sync/notify.py
`Notifier.notify_once`): a pending entry that outlived its report is not counted or told again,
a notice whose worker died right after claiming it is still posted, and the same conflict
found again later is told again (issue 20: the chaos run's 308 conflicts for 307 planned)."""

from __future__ import annotations

from typing import Any

import pytest

from services.store import keys
from services.store.counters import Stat
from services.sync.model import Trigger
from services.sync.notify import Notifier
from services.sync.stores import PendingConflicts
from tests.support.runtime import World
from tests.unit.test_concurrent_edits import linked

pytestmark = pytest.mark.world(ESPOCRM_NOTIFY_USER_ID="u1")


class WorkerDied(Exception):
    pass


def told(world: World, value: str) -> int:
    return sum(value in message for _, message in world.espo.notifications)


async def counted(world: World) -> int:
    return int(await world.redis.hget(keys.STATS, "conflicts") or 0)


async def same_field_conflict(world: World) -> tuple[str, int]:
    rid, betnr = await linked(world)
    world.advo.edit(betnr, name="Schulze")
    world.espo.edit(rid, lastName="Meier", name="Jürgen Meier")
    return rid, betnr


def dies_once(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> None:
    original = getattr(cls, name)
    left = [1]

    async def once(self: Any, *args: Any, **kw: Any) -> Any:
        if left[0]:
            left[0] -= 1
            raise WorkerDied(name)
        return await original(self, *args, **kw)

    monkeypatch.setattr(cls, name, once)


async def test_a_pending_entry_that_outlived_its_notice_is_not_told_twice(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid, _ = await same_field_conflict(world)
    dies_once(monkeypatch, PendingConflicts, "delete")  # the notice went out, the entry stayed
    with pytest.raises(WorkerDied):
        await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert told(world, "Schulze") == 1 and await counted(world) == 1
    await world.engine.sync_record(rid, Trigger.SWEEP)  # the next run finds the pending entry
    assert told(world, "Schulze") == 1 and await counted(world) == 1
    assert await world.redis.get(keys.pending_conflicts(rid)) is None


# Without the recorder: its after-sync step would post the outbox at the record's next sync;
# this test shows the notice waits in the outbox until a retry (the ops watch) posts it.
@pytest.mark.world(ESPOCRM_NOTIFY_USER_ID="u1", recorded=False)
async def test_a_worker_dying_right_after_claiming_the_notice_still_tells_the_person(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid, _ = await same_field_conflict(world)
    dies_once(monkeypatch, Notifier, "_deliver")
    with pytest.raises(WorkerDied):
        await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert told(world, "Schulze") == 0 and await counted(world) == 1
    await world.engine.sync_record(rid, Trigger.SWEEP)
    assert told(world, "Schulze") == 0  # claimed already: the outbox has it
    assert await world.rt.notifier.retry_pending() == 1  # the record's next sync or the ops watch
    assert told(world, "Schulze") == 1 and await counted(world) == 1


async def test_the_same_conflict_found_again_later_is_told_again(world: World) -> None:
    rid, betnr = await same_field_conflict(world)
    await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    world.espo.edit(rid, lastName="Maier", name="Jürgen Maier")
    await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert world.advo.records[betnr]["name"] == "Maier"
    # A -> B -> A: both sides changed again, to the values of the first conflict.
    world.advo.edit(betnr, name="Schulze")
    world.espo.edit(rid, lastName="Meier", name="Jürgen Meier")
    await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert world.advo.records[betnr]["name"] == "Meier"
    assert told(world, "Schulze") == 2 and await counted(world) == 2


async def test_notify_once_claims_counts_and_queues_in_one_step(world: World) -> None:
    notifier, redis = world.rt.notifier, world.redis
    claims = [keys.conflict_notified("r1", "d1"), keys.conflict_notified("r1", "d2")]
    assert await notifier.notify_once(
        "r1", "Konflikt", claims=claims, ttl_seconds=60, counters={Stat.CONFLICTS: 2}
    )
    assert 0 < await redis.ttl(claims[1]) <= 60
    # Any claim taken: nothing at all (not the other claim, no count, no post).
    await redis.delete(claims[0])
    assert not await notifier.notify_once(
        "r1", "Konflikt", claims=claims, ttl_seconds=60, counters={Stat.CONFLICTS: 2}
    )
    assert await redis.get(claims[0]) is None
    assert (
        await redis.hget(keys.STATS, "conflicts") == "2"
        and await redis.hget(keys.STATS, "notifications") == "1"
    )
    assert len(world.espo.notifications) == 1 and not await redis.hgetall(keys.NOTIFY_OUTBOX)
