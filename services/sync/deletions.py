"""Advoware deletions and edits the change stamp hides: noticed within an hour, and deletions
never marked in bulk on a status code.

**The scan** (`DeletionScan`, run by the sweep once `interval` has passed since the last one,
default hourly). Advoware sends no webhooks and its change listing shows no deleted rows, so
without a scan a deletion was noticed only at the record's next sync (up to 24 h, the daily
check). One complete listing `GET Beteiligte?skip&take=100` is compared with the betnrs the
service has linked (the snapshot index in Redis, no API call); a linked betnr missing from the
listing is a candidate, and its record is emitted for a sync, whose read of the record (the
adapter's confirmed 404) decides. Cost per hour for N parties: ceil(N/100) list calls plus one
read per candidate (bench figure 7). The listing is read whole within one sweep rather than a
slice per sweep: the contract does not promise a stable order across calls, so slices read 15
minutes apart could skip live records and report them missing.

**Changes the stamp does not show.** The 15-minute change poll (advoware_watch.py) finds an edit
only through `geaendertAm`; a server whose stamp is missing, late or in another zone than
ADVOWARE_TIMEZONE would hide it until the daily check. The same listing's rows are full records,
so each linked row is also compared with its snapshot (`snapshot.advoware_change`: by `rowId`
when the server sends one, else by content), in Redis only; the differing records are emitted
for a sync. This costs no Advoware call beyond the listing's pages (bench figure 7).

| a linked row in the listing     | rowId (both sides have one) | content (else)           |
|---------------------------------|-----------------------------|--------------------------|
| equal to the snapshot           | nothing                     | nothing                  |
| differs                         | emitted (`changed`)         | emitted (`changed`)      |
| no readable snapshot            | emitted (the sync makes one)| emitted                  |

**The bulk-404 breaker** (`DeletionGuard`). A misrouted connector URL, a wrong database or a
stale Kanzlei answers 404 for records that exist. So deletions are held, not marked, when

| where            | counted over                             | trips when                          |
|------------------|------------------------------------------|-------------------------------------|
| the scan         | linked betnrs vs the listing             | missing >= min and > share * linked |
| the engine       | Advoware reads since the sweep started   | 404s >= min and > share * reads     |

While it is open no record is marked `deleted_in_advoware`: a 404 record keeps its status and
joins the held set (result `waiting`); one alert goes out. The way out is a person's
(`python -m services.ops deletions`, docs/operations in README): `--release` after fixing the
configuration (the held records sync again normally), or `--confirm` when the deletions are
real (the held records are then marked `deleted_in_advoware`, as a single 404 would).

Keys: `vmh:breaker:deletions` (open state), `vmh:breaker:deletions:waiting` (held ids),
`vmh:deletions:window` (reads/404s since the sweep started), `vmh:deletions:confirmed`,
`vmh:deletions:scan` (start of the last complete scan).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from services.conditions import Alert, AlertCondition, ConditionKind
from services.store import keys
from services.store.counters import EventKind
from services.store.timestamps import utc_now
from services.sync.snapshot import SnapshotStore, advoware_change
from services.sync.stores import RecentEvents

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

GUARD = "deletions"
INDEX_CHUNK = 1000
COMPARE_CHUNK = 500  # linked listing rows compared with their snapshots per Redis round trip

CONDITION = AlertCondition(ConditionKind.DELETIONS_HELD)  # the alert condition while deletions are held


class ListingApi(Protocol):
    def iter_beteiligte(
        self, *, changed_since_local: str | None = None, take: int = 100
    ) -> AsyncIterator[dict[str, Any]]: ...


@dataclass
class ScanResult:
    listed: int = 0
    linked: int = 0
    missing: dict[int, str] = field(default_factory=dict)  # betnr -> EspoCRM id
    held: bool = False  # the guard tripped: nothing emitted
    changed: dict[int, str] = field(default_factory=dict)  # betnr -> EspoCRM id, differs from its snapshot
    reasons: dict[str, int] = field(default_factory=dict)  # why they differ: rowId, content, no snapshot


@dataclass
class DeletionGuard:
    """`share` and `minimum`: SYNC_DELETION_BREAKER_SHARE and SYNC_DELETION_BREAKER_MIN (Settings)."""

    redis: Redis
    _: KW_ONLY
    share: float
    minimum: int
    alert: Alert | None = None
    clock: Callable[[], datetime] = utc_now

    def __post_init__(self) -> None:
        self.minimum = max(1, self.minimum)

    async def state(self) -> dict[str, Any] | None:
        raw = await self.redis.get(keys.breaker(GUARD))
        return json.loads(raw) if raw else None

    async def new_window(self) -> None:
        """A sweep starts: the engine's counts start again."""
        await self.redis.delete(keys.DELETIONS_WINDOW)

    async def checked(self) -> None:
        """The engine read a linked record from Advoware (found or not)."""
        await self.redis.hincrby(keys.DELETIONS_WINDOW, "checked", 1)

    def _too_many(self, missing: int, checked: int) -> bool:
        return missing >= self.minimum and missing > self.share * max(checked, 1)

    async def allow(self, record_id: str) -> bool:
        """May this confirmed 404 be marked deleted_in_advoware? False = held for a person."""
        if await self.redis.srem(keys.DELETIONS_CONFIRMED, record_id):
            return True  # a person confirmed it
        if await self.redis.exists(keys.breaker(GUARD)):
            await self.redis.sadd(keys.breaker_waiting(GUARD), record_id)
            return False
        missing = int(await self.redis.hincrby(keys.DELETIONS_WINDOW, "missing", 1))
        checked = int(await self.redis.hget(keys.DELETIONS_WINDOW, "checked") or 0)
        if self._too_many(missing, checked):
            await self._trip(f"{missing} of {checked} records read since the sweep answered 404")
            await self.redis.sadd(keys.breaker_waiting(GUARD), record_id)
            return False
        return True

    async def check_scan(self, missing: int, linked: int) -> bool:
        """The scan's own count; False (and tripped) if too many linked parties are missing."""
        if await self.redis.exists(keys.breaker(GUARD)):
            return False
        if self._too_many(missing, linked):
            await self._trip(f"{missing} of {linked} linked parties missing from the Advoware listing")
            return False
        return True

    async def _trip(self, reason: str) -> None:
        state = json.dumps({"since": self.clock().isoformat(), "reason": reason})
        if not await self.redis.set(keys.breaker(GUARD), state, nx=True):
            return
        log.error("deletions held (bulk 404): %s", reason)
        await RecentEvents(self.redis).record(EventKind.BREAKER_OPEN, GUARD, reason)
        await self._alert(reason, active=True)

    async def _alert(self, detail: str, *, active: bool) -> None:
        if self.alert is None:
            return
        try:
            await self.alert(CONDITION, detail, active)
        except Exception as exc:  # an alert must never fail the caller
            log.warning("deletion alert failed: %s", type(exc).__name__)

    async def held(self) -> list[str]:
        return sorted(str(m) for m in await self.redis.smembers(keys.breaker_waiting(GUARD)))

    async def release(self, *, confirm: bool) -> list[str]:
        """A person's way out: close the guard and hand back the held records to sync again;
        with `confirm`, their 404 is taken as a real deletion."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.smembers(keys.breaker_waiting(GUARD))
        pipe.delete(keys.breaker(GUARD), keys.breaker_waiting(GUARD), keys.DELETIONS_WINDOW)
        members, _ = await pipe.execute()
        ids = sorted(str(m) for m in members)
        if confirm and ids:
            await self.redis.sadd(keys.DELETIONS_CONFIRMED, *ids)
            await self.redis.expire(keys.DELETIONS_CONFIRMED, keys.DELETIONS_CONFIRMED_TTL_SECONDS)
        await RecentEvents(self.redis).record(
            EventKind.BREAKER_CLOSED, GUARD, f"{'confirmed' if confirm else 'released'}={len(ids)}"
        )
        await self._alert("", active=False)
        log.warning(
            "deletion guard closed by a person (%s); %d held records",
            "confirm" if confirm else "release",
            len(ids),
        )
        return ids


@dataclass(frozen=True, kw_only=True)
class DeletionScan:
    """`interval`: SYNC_DELETION_SCAN_SECONDS (Settings)."""

    advo: ListingApi
    redis: Redis
    guard: DeletionGuard
    interval: timedelta

    async def due(self, now: datetime) -> bool:
        raw = await self.redis.get(keys.DELETIONS_SCAN)
        if not raw:
            return True
        try:
            return datetime.fromisoformat(raw) + self.interval <= now
        except ValueError:
            return True

    async def linked(self) -> dict[int, str]:
        """betnr -> EspoCRM id of every linked pair (the snapshot index; Redis only)."""
        prefix = keys.BETNR_INDEX_PREFIX
        names = [n async for n in self.redis.scan_iter(match=prefix + "*", count=INDEX_CHUNK)]
        out: dict[int, str] = {}
        for start in range(0, len(names), INDEX_CHUNK):
            chunk = names[start : start + INDEX_CHUNK]
            for name, espo_id in zip(chunk, await self.redis.mget(chunk), strict=True):
                try:
                    betnr = int(str(name)[len(prefix) :])
                except ValueError:
                    continue
                if espo_id:
                    out[betnr] = str(espo_id)
        return out

    async def run(self, now: datetime) -> ScanResult:
        """One complete listing: the missing linked betnrs (unless the guard holds them) and the
        linked ones whose Advoware side differs from its snapshot."""
        linked = await self.linked()
        result = ScanResult(linked=len(linked))
        seen: set[int] = set()
        rows: dict[int, dict[str, Any]] = {}
        async for row in self.advo.iter_beteiligte():
            betnr = row.get("betNr")
            if betnr is None:
                continue
            seen.add(int(betnr))
            if int(betnr) in linked:
                rows[int(betnr)] = row
            if len(rows) >= COMPARE_CHUNK:
                await self._compare(rows, linked, result)
        await self._compare(rows, linked, result)
        result.listed = len(seen)
        result.missing = {b: i for b, i in linked.items() if b not in seen}
        if result.missing and not await self.guard.check_scan(len(result.missing), len(linked)):
            result.held = True
            await self.redis.sadd(keys.breaker_waiting(GUARD), *result.missing.values())
        log.info(
            "advoware scan: %d listed, %d linked, %d missing%s, %d changed %s",
            result.listed,
            result.linked,
            len(result.missing),
            " (held: bulk 404 breaker)" if result.held else "",
            len(result.changed),
            json.dumps(result.reasons, sort_keys=True),
        )
        return result

    async def _compare(
        self, rows: dict[int, dict[str, Any]], linked: dict[int, str], out: ScanResult
    ) -> None:
        """Compare `rows` (linked, by betnr) with their snapshots (one Redis round trip); empties `rows`."""
        snaps = await SnapshotStore(self.redis).get_many([linked[b] for b in rows])
        for betnr, row in rows.items():
            espo_id = linked[betnr]
            snap = snaps.get(espo_id)
            reason = advoware_change(snap if snap is not None and snap.betnr == betnr else None, row)
            if reason is not None:
                out.changed[betnr] = espo_id
                out.reasons[reason] = out.reasons.get(reason, 0) + 1
        rows.clear()

    async def done(self, started: datetime) -> None:
        await self.redis.set(keys.DELETIONS_SCAN, started.isoformat())
