"""Advoware change detection: what the poll finds, what it costs, and the watermark guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.store import keys
from services.sync.advoware_watch import PENDING_GRACE, next_watermark
from services.sync.model import Result, Trigger
from services.sync.snapshot import SnapshotStore
from tests.support.fakes import fake_env

PERSON: dict[str, Any] = {
    "beteiligterTyp": "Person",
    "salutationName": "Mr.",
    "firstName": "Jörg",
    "lastName": "Weiß",
    "name": "Jörg Weiß",
    "emailAddressData": [],
    "phoneNumberData": [],
}


@pytest.fixture
def env() -> dict[str, Any]:
    env = fake_env()
    env["watch"] = env["rt"].watch()
    return env


async def linked(env: dict[str, Any], n: int = 1) -> list[tuple[str, int]]:
    out = []
    for i in range(n):
        rid = env["espo"].add({**PERSON, "lastName": f"Weiß{i}", "name": f"Jörg Weiß{i}"})
        res = await env["engine"].sync_record(rid, Trigger.WEBHOOK_CREATE)
        assert res.result is Result.CREATED
        out.append((rid, res.betnr))
    return out


async def settle(env: dict[str, Any]) -> None:
    """One poll that commits, so the next one starts from the current state."""
    changes = await env["watch"].collect(env["clock"].now)
    await env["watch"].commit(changes)
    await env["redis"].delete(keys.PENDING_ADVOWARE)


async def test_an_advoware_edit_is_found_and_our_own_writes_are_not(env: dict[str, Any]) -> None:
    pairs = await linked(env, 3)
    await settle(env)
    env["clock"].tick(300)  # past the overlap window
    (rid, betnr), (_other, other_nr) = pairs[0], pairs[1]
    env["advo"].edit(betnr, titel="Dr.")  # a person in Advoware
    # Our own write to another pair (its snapshot matches what Advoware now holds).
    env["espo"].edit(pairs[1][0], titel="Prof.")
    await env["engine"].sync_record(pairs[1][0], Trigger.WEBHOOK_UPDATE)
    assert env["advo"].records[other_nr]["titel"] == "Prof."
    env["espo"].calls.clear()
    changes = await env["watch"].collect(env["clock"].now)
    assert changes.ids == [rid]
    assert env["espo"].calls["list"] == 0  # mapped through the snapshot index: no EspoCRM call


async def test_pairs_without_snapshot_are_looked_up_by_betnr_and_unknown_ones_counted(
    env: dict[str, Any],
) -> None:
    pairs = await linked(env, 2)
    await settle(env)
    env["clock"].tick(60)
    rid, betnr = pairs[0]
    await SnapshotStore(env["redis"]).delete(rid)  # e.g. Redis was emptied
    env["advo"].edit(betnr, titel="Dr.")
    alone = env["advo"].add({"anrede": "Frau", "vorname": "Nur", "name": "Advoware"})
    env["espo"].calls.clear()
    changes = await env["watch"].collect(env["clock"].now)
    assert changes.ids == [rid] and changes.advoware_only == [alone]
    assert env["espo"].calls["list"] == 1  # one `in` query for both unknown betnrs


async def test_lookups_are_chunked_by_100(env: dict[str, Any]) -> None:
    for i in range(250):
        env["advo"].add({"anrede": "Herr", "vorname": "A", "name": f"N{i}"})
    changes = await env["watch"].collect(env["clock"].now)
    assert len(changes.advoware_only) == 250 and env["espo"].calls["list"] == 3


def test_watermark_moves_to_what_was_seen_capped_at_the_listing_start() -> None:
    t0 = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert next_watermark(t0, None, t0 + timedelta(hours=1)) == t0  # nothing seen: stays
    assert next_watermark(t0, t0 + timedelta(minutes=5), t0 + timedelta(hours=1)) == t0 + timedelta(minutes=5)
    # Changes stamped after the listing started may have been skipped by offset paging.
    assert next_watermark(t0, t0 + timedelta(hours=2), t0 + timedelta(hours=1)) == t0 + timedelta(hours=1)
    assert next_watermark(t0, t0 - timedelta(hours=1), t0 + timedelta(hours=1)) == t0  # never backwards


async def test_watermark_commit_and_overlap(env: dict[str, Any]) -> None:
    await linked(env, 1)
    changes = await env["watch"].collect(env["clock"].now)
    await env["watch"].commit(changes)
    mark = datetime.fromisoformat(await env["redis"].get(keys.WATERMARK_ADVOWARE))
    assert mark <= env["clock"].now
    # Re-reading the overlap window finds the row again, and the content compare drops it.
    again = await env["watch"].collect(env["clock"].now)
    assert again.rows == 1 and again.ids == []


async def test_first_run_reads_the_last_24_hours_only(env: dict[str, Any]) -> None:
    old = env["advo"].add({"anrede": "Herr", "vorname": "A", "name": "Alt"})
    env["advo"].records[old]["geaendertAm"] = "2026-06-01T10:00:00"
    changes = await env["watch"].collect(env["clock"].now)
    assert changes.rows == 0


async def test_unfinished_syncs_are_emitted_again_after_the_grace(env: dict[str, Any]) -> None:
    (rid, betnr), (rid2, betnr2), (_rid3, betnr3) = await linked(env, 3)
    await settle(env)
    env["clock"].tick(300)
    env["advo"].edit(betnr, titel="Dr.")
    env["advo"].edit(betnr2, titel="Dr.")
    first = await env["watch"].collect(env["clock"].now)
    await env["watch"].commit(first)
    assert sorted(first.ids) == sorted([rid, rid2])
    assert await env["redis"].zcard(keys.PENDING_ADVOWARE) == 2
    # rid2's sync finishes; rid's worker dies (its event is lost).
    out = await env["engine"].sync_record(rid2, Trigger.SWEEP)
    assert out.result is Result.UPDATED
    assert await env["redis"].zscore(keys.PENDING_ADVOWARE, rid2) is None
    # A later change moves the watermark past rid's row (re-read once more in the overlap) ...
    env["clock"].tick(300)
    env["advo"].edit(betnr3, titel="Dr.")
    second = await env["watch"].collect(env["clock"].now)
    await env["watch"].commit(second)
    assert rid in second.ids
    # ... after which only the pending set remembers that rid's sync never finished.
    env["clock"].tick(PENDING_GRACE.total_seconds() + 1)
    later = await env["watch"].collect(env["clock"].now)
    assert later.ids == [_rid3]  # still in the overlap window
    assert later.unfinished == [rid]  # out of the window: only the pending set has it
    await env["engine"].sync_record(rid, Trigger.SWEEP)
    await env["engine"].sync_record(_rid3, Trigger.SWEEP)
    assert await env["redis"].zcard(keys.PENDING_ADVOWARE) == 0


async def test_the_sweep_reports_the_poll(env: dict[str, Any]) -> None:
    ((rid, betnr),) = await linked(env, 1)
    sweeper = env["rt"].sweeper()
    plan = await sweeper.collect(env["clock"].now)
    await sweeper.commit(plan)
    env["clock"].tick(60)
    env["advo"].edit(betnr, titel="Dr.")
    plan = await sweeper.collect(env["clock"].now)
    assert plan.work == {rid: Trigger.SWEEP}
    assert plan.counts["advoware_changed"] == 1 and plan.counts["advoware_unfinished"] == 0
    await sweeper.commit(plan)
    assert await env["redis"].get(keys.WATERMARK_ADVOWARE)
