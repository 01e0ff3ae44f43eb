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
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.store import keys

if TYPE_CHECKING:
    from redis.asyncio import Redis

DEFAULT_LIMIT = 50
DEFAULT_MAX_AGE = timedelta(days=90)


def history_key(record_id: str) -> str:
    return keys.history(record_id)


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


class HistoryStore:
    def __init__(
        self,
        redis: Redis,
        *,
        limit: int = DEFAULT_LIMIT,
        max_age: timedelta = DEFAULT_MAX_AGE,
    ) -> None:
        self._redis = redis
        self._limit = limit
        self._max_age = max_age

    async def add(self, record_id: str, entry: HistoryEntry) -> None:
        name = history_key(record_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.lpush(name, entry.to_json())
        pipe.ltrim(name, 0, self._limit - 1)
        pipe.expire(name, int(self._max_age.total_seconds()))
        await pipe.execute()
        await self._drop_expired(name)

    async def entries(self, record_id: str, *, now: datetime | None = None) -> list[dict[str, Any]]:
        """Newest first, without entries older than the age bound."""
        raws = await self._redis.lrange(history_key(record_id), 0, self._limit - 1)
        cutoff = (now or datetime.now(UTC)) - self._max_age
        out: list[dict[str, Any]] = []
        for raw in raws:
            entry = json.loads(raw)
            if _parse(entry.get("at")) >= cutoff:
                out.append(entry)
        return out

    async def _drop_expired(self, name: str) -> None:
        """Trim the tail of entries past the age bound (the list is newest first)."""
        cutoff = datetime.now(UTC) - self._max_age
        while True:
            tail = await self._redis.lindex(name, -1)
            if tail is None or _parse(json.loads(tail).get("at")) >= cutoff:
                return
            await self._redis.rpop(name)


def _parse(raw: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(str(raw))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
