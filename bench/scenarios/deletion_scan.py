"""Figure 7: the cost per hour of the hourly full Advoware listing (services/sync/deletions.py):
noticing deletions, and edits whose `geaendertAm` did not move (the content comparison)."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bench.harness import Bench, log
from bench.scenarios.calls import service_calls
from sandbox.act import Actor
from services.store import keys
from tests.support.sweep_cost import edit_advoware

if TYPE_CHECKING:
    from services.advoware.client import AdvowareClient
    from services.sync.deletions import DeletionScan


def deletion_scan(b: Bench, deleted: int = 10, edited: int = 10) -> dict[str, Any]:
    """Figure 7: the cost per hour of the hourly full listing for all seeded parties. Every linked
    pair has its snapshot and betnr index entry (as after a backfill or the priming, built from
    the simulator's records); a person deletes `deleted` parties in Advoware and edits `edited`
    others on a server that leaves `geaendertAm` unchanged (drift `frozen_stamp`: only the
    content comparison can find them); then one hour of 15-minute sweeps' scans runs with the
    service's own code and client against the simulator, and each party found missing is read
    once (the adapter's confirmed 404, as the sync does). Parties found changed are not read:
    the scan emits them for a sync, whose cost is the ordinary sync's (figure 4)."""
    actor = Actor(b.stack.espo_url, b.stack.advo_url)
    gone = [b.betnr[rid] for rid in b.ids[:deleted]]
    changed = [b.betnr[rid] for rid in b.ids[deleted : deleted + edited]]
    asyncio.run(_snapshots(b))  # before the edits: the state both sides agreed on
    for betnr in gone:
        actor.advo_call("DELETE", f"Beteiligte/{betnr}")
    b.http.post(f"{b.stack.advo_url}/__sandbox/drift", json={"frozen_stamp": True}).raise_for_status()
    try:
        edit_advoware(actor, changed, "Dr. Stempel")
    finally:
        b.http.post(f"{b.stack.advo_url}/__sandbox/drift", json={"frozen_stamp": False}).raise_for_status()
    _wait_identity_index(b)  # its first build lists Advoware too: not part of this figure
    b.settle(quiet_seconds=1.0)
    mark = b.seq("advo")
    t0 = time.monotonic()
    out = asyncio.run(_one_hour(b))
    out.update(
        {
            "parties": len(b.ids),
            "deleted": len(gone),
            "all_found": sorted(gone) == out["found"],
            "edited": len(changed),
            "all_changed_found": sorted(changed) == out["changed"],
            "list_pages_of_one_listing": math.ceil((len(b.ids) - len(gone)) / 100) + 1,  # + the empty page
            "advo_calls_per_hour": _calls_of_the_figure(b, mark, gone),
            "seconds": round(time.monotonic() - t0, 1),
        }
    )
    out["found"], out["changed"] = len(out["found"]), len(out["changed"])
    log(f"deletion scan: {out}")
    return out


async def _snapshots(b: Bench) -> None:
    """Every seeded pair's snapshot (and so its betnr index entry), from the simulator's records
    (its admin dump: no service call), the way a sync writes it."""
    from services.beteiligte import mapper
    from services.store.connection import connect
    from services.sync.snapshot import Snapshot, SnapshotStore

    records = b.http.get(f"{b.stack.advo_url}/__sandbox/records", timeout=120).json()["records"]
    by_betnr = {int(r["betNr"]): r for r in records}
    redis = connect(b.stack.redis_url)
    try:
        store = SnapshotStore(redis)
        now = datetime.now(UTC).isoformat()
        for rid in b.ids:
            content = mapper.from_advo(by_betnr[b.betnr[rid]])
            snap = Snapshot(rid, b.betnr[rid], content, mapper.content_hash(content), now)
            await store.put(snap)
    finally:
        await redis.aclose()


def _wait_identity_index(b: Bench, timeout: float = 600) -> None:
    import redis

    r = redis.Redis.from_url(b.stack.redis_url, decode_responses=True)
    try:
        b.wait(lambda: r.hget(keys.IDENTITY_STATE, "status") == "ready", timeout, 1.0, "identity index built")
    finally:
        r.close()


async def _one_hour(b: Bench) -> dict[str, Any]:
    """The deletion scans of one hour's sweeps, in this process with the service's own code."""
    from services.advoware.client import AdvowareClient
    from services.settings import Settings
    from services.store.connection import connect
    from services.sync.deletions import DeletionGuard, DeletionScan

    settings = Settings(**b.stack.env)  # type: ignore[arg-type]
    redis = connect(b.stack.redis_url)
    advo = AdvowareClient(settings, redis)
    guard = DeletionGuard(
        redis, share=settings.SYNC_DELETION_BREAKER_SHARE, minimum=settings.SYNC_DELETION_BREAKER_MIN
    )
    interval = timedelta(seconds=settings.SYNC_DELETION_SCAN_SECONDS)
    scan = DeletionScan(advo=advo, redis=redis, guard=guard, interval=interval)
    await redis.delete(keys.DELETIONS_SCAN)
    try:
        scans, seconds, found, changed = await _scans_of_one_hour(scan)
        confirmed = await _confirmed_missing(advo, found)
    finally:
        await advo.aclose()
        await redis.aclose()
    return {
        "scans": scans,
        "found": sorted(found),
        "changed": sorted(changed),
        "confirmed": confirmed,
        "scan_seconds": round(seconds, 2),
    }


async def _scans_of_one_hour(scan: DeletionScan) -> tuple[int, float, dict[int, str], dict[int, str]]:
    """The 15-minute sweeps of one hour, each scanning when due: scans run, their seconds, the
    parties found missing and those found changed."""
    start = datetime.now(UTC)
    found: dict[int, str] = {}
    changed: dict[int, str] = {}
    scans, seconds = 0, 0.0
    for tick in range(4):  # the sweeps of one hour
        now = start + timedelta(minutes=15 * tick)
        if not await scan.due(now):
            continue
        t0 = time.monotonic()
        result = await scan.run(now)
        seconds += time.monotonic() - t0
        await scan.done(now)
        scans += 1
        found.update(result.missing)
        changed.update(result.changed)
    return scans, seconds, found, changed


async def _confirmed_missing(advo: AdvowareClient, found: dict[int, str]) -> int:
    """Each party found missing read once, as the sync does: how many the adapter confirms gone."""
    from services.errors import NotFoundError

    confirmed = 0
    for betnr in found:
        try:
            await advo.get_beteiligter(betnr)
        except NotFoundError:
            confirmed += 1
    return confirmed


def _calls_of_the_figure(b: Bench, mark: int, gone: list[int]) -> dict[str, int]:
    """The service's own syncs (its first sweep after the identity index) may still run: count
    only this figure's calls, the list pages and the reads of the deleted parties."""
    made = service_calls(b.calls("advo", mark))
    pages = [
        c
        for c in made
        if c["method"] == "GET" and "Beteiligte" in c["path"] and "Beteiligte/" not in c["path"]
    ]
    reads = [c for c in made if c["method"] == "GET" and any(c["path"].endswith(f"/{n}") for n in gone)]
    tokens = [c for c in made if c["path"].endswith("/Token")]
    calls = {"list_pages": len(pages), "reads": len(reads), "token": len(tokens)}
    calls["total"] = sum(calls.values())
    return calls
