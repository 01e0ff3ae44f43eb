"""Figure 7: the cost per hour of noticing Advoware deletions (services/sync/deletions.py)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bench.harness import Bench, log
from bench.scenarios.calls import service_calls
from sandbox.act import Actor
from services.store import keys

if TYPE_CHECKING:
    from services.advoware.client import AdvowareClient
    from services.sync.deletions import DeletionScan


def deletion_scan(b: Bench, deleted: int = 10) -> dict[str, Any]:
    """Figure 7: the cost per hour of noticing Advoware deletions (services/sync/deletions.py) for
    all seeded parties. The betnr index holds every linked pair (as after a backfill or the
    priming); a person deletes `deleted` parties in Advoware; then one hour of 15-minute sweeps'
    deletion scans runs with the service's own code and client against the simulator, and each
    party found missing is read once (the adapter's confirmed 404, as the sync does)."""
    actor = Actor(b.stack.espo_url, b.stack.advo_url)
    gone = [b.betnr[rid] for rid in b.ids[:deleted]]
    for betnr in gone:
        actor.advo_call("DELETE", f"Beteiligte/{betnr}")
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
            "advo_calls_per_hour": _calls_of_the_figure(b, mark, gone),
            "seconds": round(time.monotonic() - t0, 1),
        }
    )
    out["found"] = len(out["found"])
    log(f"deletion scan: {out}")
    return out


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
    pipe = redis.pipeline(transaction=False)
    for rid in b.ids:
        pipe.set(keys.betnr_index(b.betnr[rid]), rid)
    await pipe.execute()
    advo = AdvowareClient(settings, redis)
    guard = DeletionGuard(
        redis, share=settings.SYNC_DELETION_BREAKER_SHARE, minimum=settings.SYNC_DELETION_BREAKER_MIN
    )
    interval = timedelta(seconds=settings.SYNC_DELETION_SCAN_SECONDS)
    scan = DeletionScan(advo=advo, redis=redis, guard=guard, interval=interval)
    await redis.delete(keys.DELETIONS_SCAN)
    try:
        scans, seconds, found = await _scans_of_one_hour(scan)
        confirmed = await _confirmed_missing(advo, found)
    finally:
        await advo.aclose()
        await redis.aclose()
    return {
        "scans": scans,
        "found": sorted(found),
        "confirmed": confirmed,
        "scan_seconds": round(seconds, 2),
    }


async def _scans_of_one_hour(scan: DeletionScan) -> tuple[int, float, dict[int, str]]:
    """The 15-minute sweeps of one hour, each scanning when due: scans run, their seconds, and
    the parties found missing."""
    start = datetime.now(UTC)
    found: dict[int, str] = {}
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
    return scans, seconds, found


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
