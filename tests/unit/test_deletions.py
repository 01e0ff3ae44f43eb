"""Advoware deletions noticed within an hour, and the bulk-404 breaker (services/sync/deletions.py),
over simulated 15-minute sweeps with the project's own Sweeper and engine."""

from __future__ import annotations

import pytest

from services.store import keys
from services.sync.deletions import DeletionGuard
from services.sync.engine import Result, Trigger
from tests.support.runtime import World
from tests.unit.test_outage import advance, linked_records, sweep

pytestmark = pytest.mark.world(ESPOCRM_NOTIFY_USER_ID="u1")


async def settle(world: World) -> None:
    advance(world)
    await sweep(world)


async def settled_records(world: World, count: int) -> list[str]:
    """`count` linked records, with the first sweep (and so the first deletion scan) done."""
    ids = await linked_records(world, count)
    await settle(world)
    return ids


def delete_in_advoware(world: World, ids: list[str]) -> None:
    """A person deletes the Advoware side of each record."""
    for rid in ids:
        del world.advo.records[int(world.espo.records[rid]["betnr"])]


def statuses(world: World, ids: list[str]) -> set[str]:
    """The EspoCRM `syncStatus` values among the records."""
    return {world.espo.records[rid]["syncStatus"] for rid in ids}


async def edit_each(world: World, ids: list[str], titel: str) -> list[Result]:
    """People edit each record in EspoCRM; each webhook's sync runs."""
    results = []
    for rid in ids:
        world.espo.edit(rid, titel=titel)
        results.append((await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)).result)
    return results


async def release_and_retry(world: World, *, confirm: bool) -> list[Result]:
    """A person releases the held records (confirming the deletions or not); each is retried."""
    released = await world.engine.deletions.release(confirm=confirm)
    return [out.result for out in await world.engine.sync_many(released, Trigger.RETRY_NOW)]


async def test_deletion_in_advoware_is_noticed_within_an_hour(world: World) -> None:
    espo, advo = world.espo, world.advo
    ids = await settled_records(world, 8)
    gone = ids[3]
    delete_in_advoware(world, [gone])
    lists_before = advo.calls["list"]
    for _ in range(4):  # one hour of sweeps
        await settle(world)
        if espo.records[gone]["syncStatus"] == "deleted_in_advoware":
            break
    assert espo.records[gone]["syncStatus"] == "deleted_in_advoware"
    assert statuses(world, [r for r in ids if r != gone]) == {"clean"}
    # Cost: one complete listing per hour (here: one page) on top of the change polls.
    assert advo.calls["list"] - lists_before <= 4 + 1


async def test_everything_404_marks_nothing_and_waits_for_a_person(world: World) -> None:
    advo, redis = world.advo, world.redis
    ids = await settled_records(world, 10)
    saved = dict(advo.records)
    advo.records.clear()  # the connector now points at the wrong database: all 404, empty listing
    advance(world, world.rt.sweeper().deletion_scan.interval)
    await sweep(world)
    for result in await edit_each(world, ids, "Dr. Neu"):  # edits still meet 404s: nothing is marked
        assert result is Result.WAITING
    assert "deleted_in_advoware" not in statuses(world, ids)
    guard: DeletionGuard = world.engine.deletions
    assert await guard.state() is not None
    assert set(await guard.held()) == set(ids)
    assert any("breaker_open" in k for k in await redis.keys(keys.recent("*")))
    # A person fixes the connector URL and releases: every record syncs normally again.
    advo.records.update(saved)
    for result in await release_and_retry(world, confirm=False):
        assert result is Result.UPDATED
    assert statuses(world, ids) == {"clean"}


async def test_engine_stops_marking_after_the_share_is_exceeded(world: World) -> None:
    ids = await settled_records(world, 12)
    delete_in_advoware(world, ids)
    results = await edit_each(world, ids, "Dr. X")  # each webhook's sync meets a 404
    marked = results.count(Result.DELETED_IN_ADVOWARE)
    assert marked == world.engine.deletions.minimum - 1, results
    assert results.count(Result.WAITING) == len(ids) - marked
    # The deletions were real: a person confirms, and the held ones are marked like any 404.
    for result in await release_and_retry(world, confirm=True):
        assert result is Result.DELETED_IN_ADVOWARE
    assert statuses(world, ids) == {"deleted_in_advoware"}


async def test_a_few_real_deletions_do_not_trip_the_guard(world: World) -> None:
    ids = await settled_records(world, 30)
    delete_in_advoware(world, ids[:3])
    advance(world, world.rt.sweeper().deletion_scan.interval)
    await sweep(world)
    assert statuses(world, ids[:3]) == {"deleted_in_advoware"}
    assert await world.engine.deletions.state() is None
