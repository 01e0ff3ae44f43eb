"""Last-synced snapshots: the synced content both systems agreed on at the end of the
last successful sync of a pair, with its content hash and the change stamps our own
writes produced (so pollers recognise their own echoes without any API call).

Key `keys.snapshot(<espocrm id>)` -> JSON. Lost snapshots (Redis emptied) are survivable: the
sync falls back to its timestamp rule and writes a new one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from services.advoware.contract import FIELD_ROW_ID
from services.store import keys

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass
class Snapshot:
    espo_id: str
    betnr: int
    content: dict[str, Any]
    content_hash: str
    synced_at: str  # UTC ISO
    # modifiedAt EspoCRM returned for our last write, geaendertAm Advoware returned for ours.
    espo_modified_at: str | None = None
    advo_changed_at: str | None = None
    # Advoware's row version (`rowId`) of the state synced, when the server sends one: the
    # hourly listing's change signal that needs no content compare (services/sync/deletions.py).
    advo_row_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # What a later run sent and never saw answered (services/sync/in_doubt.py); the snapshot
    # that ends a successful run has none.
    in_doubt: dict[str, Any] = field(default_factory=dict)


def row_id(advo: Mapping[str, Any] | None) -> str | None:
    """Advoware's row version of a record as read (None when the server sends none)."""
    value = (advo or {}).get(FIELD_ROW_ID)
    return None if value is None or value == "" else str(value)


def advoware_change(snap: Snapshot | None, row: Mapping[str, Any]) -> str | None:
    """Why the Advoware record `row` (a full listing row or GET) differs from the synced state,
    or None when it does not: by `rowId` when both carry one, else by content.

    The content compared is what Advoware should hold: the snapshot's content with the fields
    Advoware is known not to have stored (verify.py's baseline) as it stored them, so a known
    divergence is not found again every hour."""
    from services.beteiligte import mapper
    from services.sync.verify import ADVO_BASELINE

    if snap is None:
        return "no snapshot"
    current = row_id(row)
    if current is not None and snap.advo_row_id is not None:
        return None if current == snap.advo_row_id else "rowId"
    baseline = snap.extra.get(ADVO_BASELINE) or {}
    expected = snap.content_hash if not baseline else mapper.content_hash({**snap.content, **baseline})
    return None if mapper.content_hash(mapper.from_advo(row)) == expected else "content"


_FIELDS = frozenset(f.name for f in fields(Snapshot))


def _decode(raw: str) -> Snapshot | None:
    try:
        data = json.loads(raw)
        # Keys this version does not know (a newer instance on the same Redis) are left out.
        return Snapshot(**{k: v for k, v in data.items() if k in _FIELDS})
    except (TypeError, ValueError, AttributeError):
        return None  # unreadable snapshot: treat as missing (timestamp fallback)


@dataclass(frozen=True)
class SnapshotStore:
    redis: Redis

    async def get(self, espo_id: str) -> Snapshot | None:
        raw = await self.redis.get(keys.snapshot(espo_id))
        return _decode(raw) if raw else None

    async def put(self, snap: Snapshot) -> None:
        pipe = self.redis.pipeline(transaction=True)
        body = asdict(snap)
        if not body["in_doubt"]:
            del body["in_doubt"]  # the usual case, readable by a version from before it
        pipe.set(keys.snapshot(snap.espo_id), json.dumps(body, sort_keys=True))
        pipe.set(keys.betnr_index(snap.betnr), snap.espo_id)
        await pipe.execute()

    async def delete(self, espo_id: str) -> None:
        snap = await self.get(espo_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(keys.snapshot(espo_id))
        if snap is not None:
            pipe.delete(keys.betnr_index(snap.betnr))
        await pipe.execute()

    async def espo_id_for_betnr(self, betnr: int) -> str | None:
        value = await self.redis.get(keys.betnr_index(betnr))
        return str(value) if value else None

    async def espo_ids_for_betnrs(self, betnrs: list[int]) -> list[str | None]:
        """The linked EspoCRM id of each betnr, in order (None: not linked)."""
        if not betnrs:
            return []
        return [str(v) if v else None for v in await self.redis.mget([keys.betnr_index(b) for b in betnrs])]

    async def get_many(self, espo_ids: list[str]) -> dict[str, Snapshot]:
        if not espo_ids:
            return {}
        raws = await self.redis.mget([keys.snapshot(i) for i in espo_ids])
        out: dict[str, Snapshot] = {}
        for espo_id, raw in zip(espo_ids, raws, strict=True):
            snap = _decode(raw) if raw else None
            if snap is not None:
                out[espo_id] = snap
        return out
