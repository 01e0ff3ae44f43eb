"""Advoware change detection: what the poll finds, what it costs, and the watermark guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.store import keys
from services.sync.advoware_watch import PENDING_GRACE, next_watermark
from services.sync.model import Result, Trigger
from services.sync.snapshot import SnapshotStore
from tests.support.runtime import World

PERSON: dict[str, Any] = {
    "beteiligterTyp": "Person",
    "salutationName": "Mr.",
    "firstName": "Jörg",
    "lastName": "Weiß",
    "name": "Jörg Weiß",
    "emailAddressData": [],
    "phoneNumberData": [],
}


async def linked(world: World, n: int = 1) -> list[tuple[str, int]]:
    out = []
    for i in range(n):
        rid = world.espo.add({**PERSON, "lastName": f"Weiß{i}", "name": f"Jörg Weiß{i}"})
        res = await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
        assert res.result is Result.CREATED and res.betnr is not None
        out.append((rid, res.betnr))
    return out


async def settle(world: World) -> None:
    """One poll that commits, so the next one starts from the current state."""
    changes = await world.rt.watch().collect(world.clock.now)
    await world.rt.watch().commit(changes)
    await world.redis.delete(keys.PENDING_ADVOWARE)


async def test_an_advoware_edit_is_found_and_our_own_writes_are_not(world: World) -> None:
    pairs = await linked(world, 3)
    await settle(world)
    world.clock.tick(300)  # past the overlap window
    (rid, betnr), (_other, other_nr) = pairs[0], pairs[1]
    world.advo.edit(betnr, titel="Dr.")  # a person in Advoware
    # Our own write to another pair (its snapshot matches what Advoware now holds).
    world.espo.edit(pairs[1][0], titel="Prof.")
    await world.engine.sync_record(pairs[1][0], Trigger.WEBHOOK_UPDATE)
    assert world.advo.records[other_nr]["titel"] == "Prof."
    world.espo.calls.clear()
    changes = await world.rt.watch().collect(world.clock.now)
    assert changes.ids == [rid]
    assert world.espo.calls["list"] == 0  # mapped through the snapshot index: no EspoCRM call


async def test_pairs_without_snapshot_are_looked_up_by_betnr_and_unknown_ones_counted(
    world: World,
) -> None:
    pairs = await linked(world, 2)
    await settle(world)
    world.clock.tick(60)
    rid, betnr = pairs[0]
    await SnapshotStore(world.redis).delete(rid)  # e.g. Redis was emptied
    world.advo.edit(betnr, titel="Dr.")
    alone = world.advo.add({"anrede": "Frau", "vorname": "Nur", "name": "Advoware"})
    world.espo.calls.clear()
    changes = await world.rt.watch().collect(world.clock.now)
    assert changes.ids == [rid] and changes.advoware_only == [alone]
    assert world.espo.calls["list"] == 1  # one `in` query for both unknown betnrs


async def test_lookups_are_chunked_by_100(world: World) -> None:
    for i in range(250):
        world.advo.add({"anrede": "Herr", "vorname": "A", "name": f"N{i}"})
    changes = await world.rt.watch().collect(world.clock.now)
    assert len(changes.advoware_only) == 250 and world.espo.calls["list"] == 3


def test_watermark_moves_to_what_was_seen_capped_at_the_listing_start() -> None:
    t0 = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert next_watermark(t0, None, t0 + timedelta(hours=1)) == t0  # nothing seen: stays
    assert next_watermark(t0, t0 + timedelta(minutes=5), t0 + timedelta(hours=1)) == t0 + timedelta(minutes=5)
    # Changes stamped after the listing started may have been skipped by offset paging.
    assert next_watermark(t0, t0 + timedelta(hours=2), t0 + timedelta(hours=1)) == t0 + timedelta(hours=1)
    assert next_watermark(t0, t0 - timedelta(hours=1), t0 + timedelta(hours=1)) == t0  # never backwards


async def test_watermark_commit_and_overlap(world: World) -> None:
    await linked(world, 1)
    changes = await world.rt.watch().collect(world.clock.now)
    await world.rt.watch().commit(changes)
    mark = datetime.fromisoformat(await world.redis.get(keys.WATERMARK_ADVOWARE))
    assert mark <= world.clock.now
    # Re-reading the overlap window finds the row again, and the content compare drops it.
    again = await world.rt.watch().collect(world.clock.now)
    assert again.rows == 1 and again.ids == []


async def test_first_run_reads_the_last_24_hours_only(world: World) -> None:
    old = world.advo.add({"anrede": "Herr", "vorname": "A", "name": "Alt"})
    world.advo.records[old]["geaendertAm"] = "2026-06-01T10:00:00"
    changes = await world.rt.watch().collect(world.clock.now)
    assert changes.rows == 0


async def test_unfinished_syncs_are_emitted_again_after_the_grace(world: World) -> None:
    (rid, betnr), (rid2, betnr2), (_rid3, betnr3) = await linked(world, 3)
    await settle(world)
    world.clock.tick(300)
    world.advo.edit(betnr, titel="Dr.")
    world.advo.edit(betnr2, titel="Dr.")
    first = await world.rt.watch().collect(world.clock.now)
    await world.rt.watch().commit(first)
    assert sorted(first.ids) == sorted([rid, rid2])
    assert await world.redis.zcard(keys.PENDING_ADVOWARE) == 2
    # rid2's sync finishes; rid's worker dies (its event is lost).
    out = await world.engine.sync_record(rid2, Trigger.SWEEP)
    assert out.result is Result.UPDATED
    assert await world.redis.zscore(keys.PENDING_ADVOWARE, rid2) is None
    # A later change moves the watermark past rid's row (re-read once more in the overlap) ...
    world.clock.tick(300)
    world.advo.edit(betnr3, titel="Dr.")
    second = await world.rt.watch().collect(world.clock.now)
    await world.rt.watch().commit(second)
    assert rid in second.ids
    # ... after which only the pending set remembers that rid's sync never finished.
    world.clock.tick(PENDING_GRACE.total_seconds() + 1)
    later = await world.rt.watch().collect(world.clock.now)
    assert later.ids == [_rid3]  # still in the overlap window
    assert later.unfinished == [rid]  # out of the window: only the pending set has it
    await world.engine.sync_record(rid, Trigger.SWEEP)
    await world.engine.sync_record(_rid3, Trigger.SWEEP)
    assert await world.redis.zcard(keys.PENDING_ADVOWARE) == 0


async def test_the_sweep_reports_the_poll(world: World) -> None:
    ((rid, betnr),) = await linked(world, 1)
    sweeper = world.rt.sweeper()
    plan = await sweeper.collect(world.clock.now)
    await sweeper.commit(plan)
    world.clock.tick(60)
    world.advo.edit(betnr, titel="Dr.")
    plan = await sweeper.collect(world.clock.now)
    assert plan.work == {rid: Trigger.SWEEP}
    assert plan.counts["advoware_changed"] == 1 and plan.counts["advoware_unfinished"] == 0
    await sweeper.commit(plan)
    assert await world.redis.get(keys.WATERMARK_ADVOWARE)
