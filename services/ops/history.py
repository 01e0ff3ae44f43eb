"""What the sync did to one record, and why: the last decisions per record, in Redis.

Each entry is one decision of one sync run (time, trigger, result, direction of the writes,
the fields written, conflicts with both values, the API error with status and reason, and
who won). Entries hold personal values (a conflict's overwritten Advoware value), so they
are shown only through the authenticated interfaces (`python -m services.ops history`,
`GET /vmh/beteiligte/sync/history`), never logged.

Bounded twice: at most `limit` entries per record (LPUSH + LTRIM) and no entry older than
`max_age` (the list expires `max_age` after its last write; older entries in a busy list
are dropped on read and on write).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import KW_ONLY, asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.store import keys
from services.store.timestamps import parse_utc, utc_now

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from services.settings import Settings

# An entry whose time is unreadable counts as older than any age bound.
OLDEST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class HistoryEntry:
    """One decision. `direction`: to_advoware | to_espocrm | both | none.
    `winner`: espocrm | advoware | None (no field had to be decided).
    `changes`: [{field, old, new}] for the fields written (old = the overwritten value)."""

    at: str
    trigger: str
    result: str
    direction: str = "none"
    fields_to_advoware: tuple[str, ...] = ()
    fields_to_espocrm: tuple[str, ...] = ()
    changes: tuple[dict[str, Any], ...] = ()
    conflicts: tuple[dict[str, Any], ...] = ()
    winner: str | None = None
    betnr: int | None = None
    error: dict[str, Any] | None = None
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str, ensure_ascii=False)


def direction_of(to_advo: Sequence[str], to_espo: Sequence[str]) -> str:
    if to_advo and to_espo:
        return "both"
    if to_advo:
        return "to_advoware"
    if to_espo:
        return "to_espocrm"
    return "none"


@dataclass(frozen=True)
class HistoryStore:
    """`limit` and `max_age`: SYNC_HISTORY_LIMIT and SYNC_HISTORY_MAX_AGE_DAYS (Settings)."""

    redis: Redis
    _: KW_ONLY
    limit: int
    max_age: timedelta

    async def add(self, record_id: str, entry: HistoryEntry) -> None:
        name = keys.history(record_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.lpush(name, entry.to_json())
        pipe.ltrim(name, 0, self.limit - 1)
        pipe.expire(name, int(self.max_age.total_seconds()))
        await pipe.execute()
        await self._drop_expired(name)

    async def entries(self, record_id: str, *, now: datetime | None = None) -> list[dict[str, Any]]:
        """Newest first, without entries older than the age bound."""
        raws = await self.redis.lrange(keys.history(record_id), 0, self.limit - 1)
        cutoff = (now or utc_now()) - self.max_age
        out: list[dict[str, Any]] = []
        for raw in raws:
            entry = json.loads(raw)
            if _at(entry) >= cutoff:
                out.append(entry)
        return out

    async def _drop_expired(self, name: str) -> None:
        """Trim the tail of entries past the age bound (the list is newest first)."""
        cutoff = utc_now() - self.max_age
        while True:
            tail = await self.redis.lindex(name, -1)
            if tail is None or _at(json.loads(tail)) >= cutoff:
                return
            await self.redis.rpop(name)


def _at(entry: dict[str, Any]) -> datetime:
    return parse_utc(entry.get("at")) or OLDEST


def history_for(redis: Redis, settings: Settings) -> HistoryStore:
    """The history store with the limits in `settings`: what the recorder writes and the ops
    read (one construction, so both see the same bounds)."""
    return HistoryStore(
        redis, limit=settings.SYNC_HISTORY_LIMIT, max_age=timedelta(days=settings.SYNC_HISTORY_MAX_AGE_DAYS)
    )
