"""Advoware deletions noticed within an hour, and the bulk-404 breaker (services/sync/deletions.py),
over simulated 15-minute sweeps with the project's own Sweeper and engine."""

from __future__ import annotations

from typing import Any

from services.store import keys
from services.sync.deletions import DeletionGuard
from services.sync.engine import Result, Trigger
from tests.unit.test_outage import advance, env, linked_records, sweep

__all__ = ["env"]  # the fixture


async def settle(env: dict[str, Any]) -> None:
    advance(env)
    await sweep(env)


async def test_deletion_in_advoware_is_noticed_within_an_hour(env: dict[str, Any]) -> None:
    espo, advo = env["espo"], env["advo"]
    ids = await linked_records(env, 8)
    await settle(env)  # the first scan runs here
    gone = ids[3]
    del advo.records[int(espo.records[gone]["betnr"])]  # a person deletes it in Advoware
    lists_before = advo.calls["list"]
    for _ in range(4):  # one hour of sweeps
        await settle(env)
        if espo.records[gone]["syncStatus"] == "deleted_in_advoware":
            break
    assert espo.records[gone]["syncStatus"] == "deleted_in_advoware"
    assert {espo.records[r]["syncStatus"] for r in ids if r != gone} == {"clean"}
    # Cost: one complete listing per hour (here: one page) on top of the change polls.
    assert advo.calls["list"] - lists_before <= 4 + 1


async def test_everything_404_marks_nothing_and_waits_for_a_person(env: dict[str, Any]) -> None:
    espo, advo, redis = env["espo"], env["advo"], env["redis"]
    ids = await linked_records(env, 10)
    await settle(env)
    saved = dict(advo.records)
    advo.records.clear()  # the connector now points at the wrong database: all 404, empty listing
    advance(env, env["sweeper"].deletion_scan.interval)
    await sweep(env)
    for rid in ids:  # daily checks and edits still meet 404s: nothing is marked
        espo.edit(rid, titel="Dr. Neu")
        out = await env["engine"].sync_record(rid, Trigger.WEBHOOK_UPDATE)
        assert out.result is Result.WAITING
    assert "deleted_in_advoware" not in {espo.records[r]["syncStatus"] for r in ids}
    guard: DeletionGuard = env["engine"].deletions
    assert await guard.state() is not None
    assert set(await guard.held()) == set(ids)
    assert any("breaker_open" in k for k in await redis.keys(keys.recent("*")))
    # A person fixes the connector URL and releases: every record syncs normally again.
    advo.records.update(saved)
    released = await guard.release(confirm=False)
    for out in await env["engine"].sync_many(released, Trigger.RETRY_NOW):
        assert out.result is Result.UPDATED
    assert {espo.records[r]["syncStatus"] for r in ids} == {"clean"}


async def test_engine_stops_marking_after_the_share_is_exceeded(env: dict[str, Any]) -> None:
    espo, advo = env["espo"], env["advo"]
    ids = await linked_records(env, 12)
    await settle(env)
    for rid in ids:
        del advo.records[int(espo.records[rid]["betnr"])]
    results = []
    for rid in ids:  # people edit them; each webhook's sync meets a 404
        espo.edit(rid, titel="Dr. X")
        results.append((await env["engine"].sync_record(rid, Trigger.WEBHOOK_UPDATE)).result)
    marked = results.count(Result.DELETED_IN_ADVOWARE)
    assert marked == env["engine"].deletions.minimum - 1, results
    assert results.count(Result.WAITING) == len(ids) - marked
    # The deletions were real: a person confirms, and the held ones are marked like any 404.
    confirmed = await env["engine"].deletions.release(confirm=True)
    for out in await env["engine"].sync_many(confirmed, Trigger.RETRY_NOW):
        assert out.result is Result.DELETED_IN_ADVOWARE
    assert {espo.records[r]["syncStatus"] for r in ids} == {"deleted_in_advoware"}


async def test_a_few_real_deletions_do_not_trip_the_guard(env: dict[str, Any]) -> None:
    espo, advo = env["espo"], env["advo"]
    ids = await linked_records(env, 30)
    await settle(env)
    for rid in ids[:3]:
        del advo.records[int(espo.records[rid]["betnr"])]
    advance(env, env["sweeper"].deletion_scan.interval)
    await sweep(env)
    assert {espo.records[r]["syncStatus"] for r in ids[:3]} == {"deleted_in_advoware"}
    assert await env["engine"].deletions.state() is None
