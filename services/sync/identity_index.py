"""The identity index: every Advoware party's identity in Redis, so the identity check before a
create costs a few Redis reads instead of a full Advoware listing.

    vmh:identity:entries        hash  betnr -> Identity JSON (services/beteiligte/identity.py)
    vmh:identity:key:<lookup>   set   lookup key ("person:<name>", "company:<name>",
                                      "register:<number>") -> betnrs
    vmh:identity:state          hash  status building|ready, rows read, started/built at

Kept current from four sides: built once from full listings (`build`, resumable: it checkpoints
the rows read and a later call continues one page before that, under a lease so one instance
builds at a time; the listing's order is not stable (shared/docs/advoware-api.md), so a slice
read by offset can miss a party when rows shift, and the build is ready only after a complete
verification pass that found no party the index did not have yet, at most `MAX_PASSES`); the Advoware change poll upserts every changed row it reads
(services/sync/advoware_watch.py); the engine upserts what Advoware answers to our own creates
and updates; and right before a create the identity check reads what changed in Advoware since the
index was last brought up to date (`refresh`: one listing call with `geaendertAb`, usually one
short page), so a party a person entered in Advoware a minute ago is found too. "Up to date"
is on Advoware's own clock: the newest `geaendertAm` a refresh saw (capped at our clock, as
the change poll's watermark), so an Advoware clock running behind ours hides nothing; the
build starts it `CLOCK_MARGIN` before its own start, which its first refresh reads again. A party deleted in Advoware stays in the index until a link to it answers 404
(`remove`): a candidate is always read from Advoware before it is linked.

Until the first build has finished (and again after Redis lost the index) `ready()` is False and
creates wait: the engine leaves the record `pending_sync`, the next sweep after the build creates it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.beteiligte.identity import Identity, Match, compare, identity_of_advo, lookup_keys
from services.store import keys
from services.store.lease import Lease, LeaseBusy
from services.sync.ports import AdvowareApi

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from redis.asyncio import Redis

log = logging.getLogger(__name__)

READY = "ready"
BUILDING = "building"
MISSING = "missing"
# How often a create waiting for another process's index build looks whether it is done.
BUSY_POLL_SECONDS = 0.25
PAGE = 100  # the Advoware listing's page size: the build checkpoints once per page
# Complete listings a build reads at most: the first, then verification passes until one finds
# no party the index lacks (the listing's order may shift while it is read by offset).
MAX_PASSES = 3
# How far before the build's start (our clock) the first refresh reads Advoware's changes: the
# changes made while the build read may carry stamps that far behind (Advoware's clock).
CLOCK_MARGIN = timedelta(hours=1)


@dataclass(frozen=True)
class IndexState:
    status: str  # ready | building | missing
    read: int = 0  # Advoware rows read by the current / last build
    started_at: str | None = None
    built_at: str | None = None
    entries: int = 0
    fresh_at: str | None = None  # UTC: every Advoware change before this is in the index

    @property
    def ready(self) -> bool:
        return self.status == READY

    def describe(self) -> str:
        if self.status == READY:
            return (
                f"ready ({self.entries} Advoware parties, built {self.built_at}, current to {self.fresh_at})"
            )
        if self.status == BUILDING:
            return f"building ({self.read} Advoware parties read so far, since {self.started_at})"
        return "not built yet (the service builds it on its own within a minute)"


def _betnr(row: Mapping[str, Any]) -> int | None:
    value = row.get("betNr")
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class IdentityIndex:
    redis: Redis

    # ------------------------------------------------------------------ reading
    async def state(self) -> IndexState:
        raw = await self.redis.hgetall(keys.IDENTITY_STATE)
        data = {_s(k): _s(v) for k, v in (raw or {}).items()}
        if not data:
            return IndexState(MISSING)
        return IndexState(
            status=data.get("status", MISSING),
            read=int(data.get("read") or 0),
            started_at=data.get("started_at"),
            built_at=data.get("built_at"),
            entries=int(await self.redis.hlen(keys.IDENTITY_ENTRIES)),
            fresh_at=data.get("fresh_at"),
        )

    async def refresh(self, advo: AdvowareApi, tz: ZoneInfo) -> int:
        """Read the Advoware changes since the index was last brought up to date (with the
        polls' overlap) and upsert them; returns the rows read. Only for a ready index."""
        from services.advoware.timezone import local_to_utc, query_since_local
        from services.store.timestamps import parse_utc
        from services.store.watermark import WATERMARK_OVERLAP, next_watermark

        fresh = parse_utc(await self.redis.hget(keys.IDENTITY_STATE, "fresh_at"))
        if fresh is None:
            return 0
        started = datetime.now(UTC)
        since = query_since_local(fresh, tz, WATERMARK_OVERLAP)
        rows = [row async for row in advo.iter_beteiligte(changed_since_local=since)]
        await self.upsert(rows)
        stamps = [local_to_utc(row["geaendertAm"], tz) for row in rows if row.get("geaendertAm")]
        moved = next_watermark(fresh, max(stamps, default=None), started)
        await self.redis.hset(keys.IDENTITY_STATE, "fresh_at", moved.isoformat())
        return len(rows)

    async def ready(self) -> bool:
        return _s(await self.redis.hget(keys.IDENTITY_STATE, "status")) == READY

    async def candidates(self, identity: Identity) -> list[tuple[int, Match]]:
        """Advoware parties that are or might be `identity` (STRONG or WEAK), by betnr."""
        betnrs: set[int] = set()
        for lookup in lookup_keys(identity):
            betnrs.update(int(b) for b in await self.redis.smembers(keys.identity_lookup(lookup)))
        if not betnrs:
            return []
        ordered = sorted(betnrs)
        raws = await self.redis.hmget(keys.IDENTITY_ENTRIES, [str(b) for b in ordered])
        out = []
        for betnr, raw in zip(ordered, raws, strict=True):
            if raw:
                match = compare(identity, Identity.from_json(raw))
                if match:
                    out.append((betnr, match))
        return out

    # ------------------------------------------------------------------ keeping it current
    async def upsert(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Store the identities of Advoware rows (full records), replacing what they were."""
        return (await self._upsert(rows))[0]

    async def _upsert(self, rows: Iterable[Mapping[str, Any]]) -> tuple[int, int]:
        """(rows stored, betnrs the index did not have before)."""
        fresh: dict[int, Identity] = {}
        for row in rows:
            betnr = _betnr(row)
            if betnr is not None:
                fresh[betnr] = identity_of_advo(row)
        if not fresh:
            return 0, 0
        old = await self.redis.hmget(keys.IDENTITY_ENTRIES, [str(b) for b in fresh])
        pipe = self.redis.pipeline(transaction=True)
        for (betnr, identity), raw in zip(fresh.items(), old, strict=True):
            before = lookup_keys(Identity.from_json(raw)) if raw else []
            after = lookup_keys(identity)
            for lookup in set(before) - set(after):
                pipe.srem(keys.identity_lookup(lookup), betnr)
            for lookup in after:
                pipe.sadd(keys.identity_lookup(lookup), betnr)
            pipe.hset(keys.IDENTITY_ENTRIES, str(betnr), identity.to_json())
        await pipe.execute()
        return len(fresh), sum(1 for raw in old if not raw)

    async def remove(self, betnr: int) -> None:
        """A party Advoware no longer has (404 when it was about to be linked)."""
        raw = await self.redis.hget(keys.IDENTITY_ENTRIES, str(betnr))
        pipe = self.redis.pipeline(transaction=True)
        if raw:
            for lookup in lookup_keys(Identity.from_json(raw)):
                pipe.srem(keys.identity_lookup(lookup), betnr)
        pipe.hdel(keys.IDENTITY_ENTRIES, str(betnr))
        await pipe.execute()

    # ------------------------------------------------------------------ building
    async def build(self, advo: AdvowareApi, *, budget_seconds: float = 50.0) -> IndexState:
        """Build (or continue building) the index from the full Advoware listing, for at most about
        `budget_seconds`; returns the state after. A no-op when it is ready; another instance
        building it makes this return at once."""
        if await self.ready():
            return await self.state()
        lease = Lease(self.redis, keys.IDENTITY_BUILDING, keys.IDENTITY_BUILD_LEASE_SECONDS)
        try:
            async with lease:
                return await self._build_locked(advo, budget_seconds)
        except LeaseBusy:
            # Another process builds it (e.g. the first of a batch of creates): wait for it
            # within the same budget instead of sending this create back to wait for a sweep.
            log.info("identity index: another process is building it; waiting")
            deadline = time.monotonic() + budget_seconds
            while time.monotonic() < deadline:
                if await self.ready():
                    break
                await asyncio.sleep(BUSY_POLL_SECONDS)
            return await self.state()

    async def _build_locked(self, advo: AdvowareApi, budget_seconds: float) -> IndexState:
        state = await self.state()
        if state.status != BUILDING:
            log.info(
                "identity index: building from the full Advoware listing (creates wait until it is done)"
            )
            now = datetime.now(UTC)
            await self.redis.hset(
                keys.IDENTITY_STATE,
                mapping={
                    "status": BUILDING,
                    "read": 0,
                    "pass": 1,
                    "pass_new": 0,
                    "started_at": now.isoformat(),
                    "fresh_at": (now - CLOCK_MARGIN).isoformat(),
                },
            )
        deadline = time.monotonic() + budget_seconds
        while True:
            if not await self._read_pass(advo, deadline):
                return await self.state()
            if not await self._next_pass():
                break
        await self.redis.hset(
            keys.IDENTITY_STATE, mapping={"status": READY, "built_at": datetime.now(UTC).isoformat()}
        )
        done = await self.state()
        log.info("identity index: ready, %d Advoware parties", done.entries)
        return done

    async def _read_pass(self, advo: AdvowareApi, deadline: float) -> bool:
        """Read the current pass on from its checkpoint; True when it reached the listing's end,
        False when the budget ran out (a later call continues)."""
        checkpoint = await self.redis.hget(keys.IDENTITY_STATE, "read")
        # Continue one page before the checkpoint: the listing may have shifted a little since.
        start = max(0, int(checkpoint or 0) - PAGE)
        read, batch = start, []
        async for row in advo.iter_beteiligte(take=PAGE, start=start):
            batch.append(row)
            read += 1
            if len(batch) == PAGE:
                await self._checkpoint(batch, read)
                batch = []
                if time.monotonic() > deadline:
                    log.info("identity index: %d Advoware parties read; continuing at the next run", read)
                    return False
        await self._checkpoint(batch, read)
        return True

    async def _next_pass(self) -> bool:
        """After a complete pass: True (and the next pass set up) unless this pass found no
        party the index lacked, or `MAX_PASSES` were read."""
        raw = await self.redis.hmget(keys.IDENTITY_STATE, ["pass", "pass_new"])
        number, new = int(raw[0] or 1), int(raw[1] or 0)
        if new == 0:
            return False
        if number >= MAX_PASSES:
            log.warning("identity index: pass %d still found %d new parties; ready anyway", number, new)
            return False
        log.info("identity index: pass %d found %d new parties; verifying with another pass", number, new)
        await self.redis.hset(keys.IDENTITY_STATE, mapping={"pass": number + 1, "read": 0, "pass_new": 0})
        return True

    async def _checkpoint(self, batch: list[dict[str, Any]], read: int) -> None:
        _stored, new = await self._upsert(batch)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.IDENTITY_STATE, "read", str(read))
        pipe.hincrby(keys.IDENTITY_STATE, "pass_new", new)
        await pipe.execute()
        if read and read % (PAGE * 10) == 0:
            log.info("identity index: %d Advoware parties read", read)


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
