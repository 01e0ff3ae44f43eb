"""The position of a change poll: "every change up to here was seen and handed on".

Both polls use it: the EspoCRM poll (`modifiedAt`, services/sync/sweep.py) and the Advoware
poll (`geaendertAm`, services/sync/advoware_watch.py). Rules, the same for both:

- Stored as an ISO-8601 UTC timestamp under `vmh:watermark:<system>`.
- A poll reads from `mark - overlap`: the overlap re-reads the boundary and absorbs clock skew.
- `commit` happens only after the work found was emitted, with the newest change actually
  seen (never "now"): a crash mid-sweep re-reads. Callers never move it backwards.
- Missing (first run, or Redis restarted empty) or unreadable: the poll starts at
  `now - lookback` (24 h). That is safe because re-reading is harmless (our own writes are
  recognised, a re-synced unchanged record costs one compare) and anything older than the
  lookback is covered elsewhere: every `clean` record not verified for 24 h gets its daily
  check (both sides read and compared), and records a person left `pending_sync`/`dirty`/
  `failed` are found by their status, not by the watermark. A missing watermark therefore
  never loses an edit; it costs one wider read.
"""

from __future__ import annotations

import logging
from dataclasses import KW_ONLY, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from services.store import keys
from services.store.timestamps import as_utc, parse_utc

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

WATERMARK_OVERLAP = timedelta(minutes=2)
FIRST_RUN_LOOKBACK = timedelta(hours=24)


@dataclass(frozen=True)
class Watermark:
    """One poll's position, kept in Redis under `name` by the module's rules; `espocrm()` and
    `advoware()` build the two there are."""

    redis: Redis
    name: str
    _: KW_ONLY
    overlap: timedelta = WATERMARK_OVERLAP
    lookback: timedelta = FIRST_RUN_LOOKBACK

    @classmethod
    def espocrm(cls, redis: Redis, **kw: timedelta) -> Watermark:
        return cls(redis, keys.WATERMARK_ESPOCRM, **kw)

    @classmethod
    def advoware(cls, redis: Redis, **kw: timedelta) -> Watermark:
        return cls(redis, keys.WATERMARK_ADVOWARE, **kw)

    async def raw(self) -> str | None:
        """The committed position as stored (shown by `status`)."""
        value = await self.redis.get(self.name)
        return str(value) if value else None

    async def stored(self) -> datetime | None:
        """The committed position (UTC), or None if missing or unreadable."""
        raw = await self.raw()
        if not raw:
            return None
        value = parse_utc(raw)
        if value is None:
            log.warning("unreadable watermark %s; treating it as missing", self.name)
        return value

    async def read(self, now: datetime) -> datetime:
        """Where the next poll continues: the committed position, else `now - lookback`."""
        value = await self.stored()
        if value is None:
            log.warning(
                "no watermark %s (first run or Redis emptied): reading back %s", self.name, self.lookback
            )
            return now - self.lookback
        return value

    def read_from(self, mark: datetime) -> datetime:
        """The lower bound of the poll for a position `mark`: the overlap re-reads the boundary."""
        return mark - self.overlap

    async def commit(self, value: datetime) -> None:
        """After the work found up to `value` was emitted (callers hold the sweep lease)."""
        await self.redis.set(self.name, as_utc(value).isoformat())

    async def seed(self, value: datetime) -> bool:
        """Set only if no position exists yet (an existing one belongs to the running polls)."""
        return bool(await self.redis.set(self.name, as_utc(value).isoformat(), nx=True))


def next_watermark(mark: datetime, newest_seen: datetime | None, listing_started: datetime) -> datetime:
    """The position after a complete listing: the newest change stamp seen (the other system's
    own clock), capped at the listing start (ours), never moving backwards. A system whose clock
    runs behind ours is then read from its own newest stamp, not from our "now"."""
    if newest_seen is None:
        return mark
    return max(mark, min(newest_seen, listing_started))
