"""Advoware change detection. Advoware sends no webhooks, so every sweep polls it.

Per sweep (`AdvowareWatch.collect`, then `commit` once the work was emitted):

1. `GET Beteiligte?geaendertAb=<watermark - overlap>`, paged (100 per call): only records
   changed since the watermark, so the cost grows with the number of changes, not with the
   size of either database.
2. Each row is mapped to its EspoCRM record by betnr through the snapshot index in Redis (no
   API call). A row whose content equals the last-synced snapshot is our own write (or was
   already synced) and is dropped. Changed rows without a snapshot are looked up in EspoCRM
   with one `in` query per 100 betnrs; betnrs with no EspoCRM record are counted as
   Advoware-only (the backfill's business, not the sweep's).
3. The found record ids are written to the pending set `keys.PENDING_ADVOWARE` (id -> time)
   *before* they are emitted; the engine removes an id when its sync has recorded an outcome.
   An id still there after `PENDING_GRACE` (worker died, job dead-lettered) is emitted again.
4. `commit` moves the watermark to the newest `geaendertAm` seen - never to "now", never
   backwards, and never past the moment the listing started (our clock): a record changed
   *while* we paged can be shifted behind our offset and missed; its stamp lies after the
   listing start, so it is read next time. The overlap window re-reads the boundary and
   absorbs clock skew between us and Advoware up to its length. Re-reading is harmless (the
   content compare drops it); missing is not.

First run (no watermark yet): the last `FIRST_RUN_LOOKBACK` is read. A completed backfill
sets the watermark to what it read (`seed_watermark`), and the daily check of every clean
record covers anything older, so nothing depends on the lookback being long.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.store.watermark import next_watermark
from services.sync.deps import Stores, Systems
from services.sync.model import ENTITY

log = logging.getLogger(__name__)

# An emitted Advoware change whose sync has not finished after this long is emitted again.
PENDING_GRACE = timedelta(minutes=10)
LOOKUP_CHUNK = 100


@dataclass
class AdvowareChanges:
    """What one poll found."""

    ids: list[str] = field(default_factory=list)  # EspoCRM records whose Advoware side changed
    unfinished: list[str] = field(default_factory=list)  # emitted before, sync never finished
    advoware_only: list[int] = field(default_factory=list)  # changed, no EspoCRM record
    rows: int = 0  # changed Advoware rows read
    watermark: datetime | None = None  # to commit after the work was emitted


@dataclass(kw_only=True)
class AdvowareWatch:
    """Built by the composition root (services/runtime.py `Runtime.watch`)."""

    systems: Systems
    stores: Stores

    def __post_init__(self) -> None:
        self.pending = self.stores.pending_advoware
        self.mark = self.stores.advo_watermark
        self.snapshots = self.stores.snapshots

    async def watermark(self, now: datetime) -> datetime:
        return await self.mark.read(now)

    async def collect(self, now: datetime | None = None) -> AdvowareChanges:
        now = now or datetime.now(UTC)
        mark = await self.watermark(now)
        rows, newest = await self._changed_rows(mark)
        # The sweep started before the listing: `now` is a safe (earlier) cap for the watermark.
        out = AdvowareChanges(rows=len(rows), watermark=next_watermark(mark, newest, now))
        # Every changed row read keeps the identity index current (Redis only, no API call).
        await self.stores.index.upsert(rows.values())
        changed, unlinked = await self._changed_pairs(rows)
        found, out.advoware_only = await self._by_betnr(unlinked)
        out.ids = changed + found
        out.unfinished = await self._mark_pending(out.ids, now)
        log.info(
            "advoware poll: %d changed rows, %d records to sync, %d unfinished, %d advoware-only",
            out.rows,
            len(out.ids),
            len(out.unfinished),
            len(out.advoware_only),
        )
        return out

    async def _changed_rows(self, mark: datetime) -> tuple[dict[int, dict[str, Any]], datetime | None]:
        """The rows changed since `mark` (less the overlap), by betnr, and the newest change
        stamp among them (UTC; None if no row carries one)."""
        from services.advoware.timezone import local_to_utc, query_since_local

        since_local = query_since_local(mark, self.systems.tz, self.mark.overlap)
        newest: datetime | None = None
        rows: dict[int, dict[str, Any]] = {}
        async for row in self.systems.advo.iter_beteiligte(changed_since_local=since_local):
            betnr, changed_at = row.get("betNr"), row.get("geaendertAm")
            if betnr is None:
                continue
            rows[int(betnr)] = row
            if changed_at:
                stamp = local_to_utc(changed_at, self.systems.tz)
                newest = stamp if newest is None else max(newest, stamp)
        return rows, newest

    async def _changed_pairs(self, rows: dict[int, dict[str, Any]]) -> tuple[list[str], list[int]]:
        """Linked rows against their snapshots: the EspoCRM ids whose Advoware content changed,
        and the betnrs without a link in Redis. Two Redis round trips, no API call."""
        from services.beteiligte import mapper

        betnrs = list(rows)
        linked = await self.snapshots.espo_ids_for_betnrs(betnrs)
        snaps = await self.snapshots.get_many([str(i) for i in linked if i])
        changed: list[str] = []
        unlinked: list[int] = []
        for betnr, espo_id in zip(betnrs, linked, strict=True):
            if not espo_id:
                unlinked.append(betnr)
                continue
            snap = snaps.get(str(espo_id))
            # List rows are full records: compare content, not timestamps (geaendertAm has 1 s
            # resolution, so a person's edit in the same second as our write looks alike).
            if (
                snap is not None
                and snap.betnr == betnr
                and snap.content_hash == mapper.content_hash(mapper.from_advo(rows[betnr]))
            ):
                continue  # our own write, or already synced
            changed.append(str(espo_id))
        return changed, unlinked

    async def _by_betnr(self, betnrs: list[int]) -> tuple[list[str], list[int]]:
        """Pairs without a snapshot (linked by a person, or Redis was emptied), looked up in
        EspoCRM by betnr, one query per chunk: the ids found, and the betnrs no record holds
        (Advoware-only)."""
        found_ids: list[str] = []
        advoware_only: list[int] = []
        for start in range(0, len(betnrs), LOOKUP_CHUNK):
            chunk = betnrs[start : start + LOOKUP_CHUNK]
            found = [
                r
                async for r in self.systems.espo.iterate(
                    ENTITY, where=[{"type": "in", "attribute": "betnr", "value": chunk}], select="id,betnr"
                )
            ]
            matched = {int(r["betnr"]) for r in found if r.get("betnr") is not None}
            found_ids.extend(str(r["id"]) for r in found)
            advoware_only.extend(b for b in chunk if b not in matched)
        return found_ids, advoware_only

    async def _mark_pending(self, ids: list[str], now: datetime) -> list[str]:
        """Put `ids` and the unfinished ones into the pending set; returns the unfinished: emitted
        before and never finished (the worker died or the job was dead-lettered)."""
        cutoff = (now - PENDING_GRACE).timestamp()
        stale = await self.pending.older_than(cutoff)
        seen = set(ids)
        unfinished = [i for i in stale if i not in seen]
        # Marked before the emit, so a sync that finishes before `commit` still clears it.
        emitted = ids + unfinished
        if emitted:
            await self.pending.add(emitted, now.timestamp())
        return unfinished

    async def commit(self, changes: AdvowareChanges) -> None:
        if changes.watermark is not None:
            await self.mark.commit(changes.watermark)

    async def seed_watermark(self, newest_seen: datetime | None, listing_started: datetime) -> bool:
        """First run: after a complete backfill read, start polling from what it read (only if
        no watermark exists yet - an existing one belongs to the sweep)."""
        value = next_watermark(listing_started - self.mark.lookback, newest_seen, listing_started)
        return await self.mark.seed(value)

    async def pending_count(self) -> int:
        return await self.pending.count()
