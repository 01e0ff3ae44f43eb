"""Last-synced snapshots: the synced content both systems agreed on at the end of the
last successful sync of a pair, with its content hash and the change stamps our own
writes produced (so pollers recognise their own echoes without any API call).

Key `keys.snapshot(<espocrm id>)` -> JSON. Lost snapshots (Redis emptied) are survivable: the
sync falls back to its timestamp rule and writes a new one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

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
    extra: dict[str, Any] = field(default_factory=dict)


class SnapshotStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    @staticmethod
    def snapshot_key(espo_id: str) -> str:
        return keys.snapshot(espo_id)

    @staticmethod
    def betnr_key(betnr: int) -> str:
        return keys.betnr_index(betnr)

    async def get(self, espo_id: str) -> Snapshot | None:
        raw = await self._redis.get(self.snapshot_key(espo_id))
        if not raw:
            return None
        try:
            return Snapshot(**json.loads(raw))
        except (TypeError, ValueError):
            return None  # unreadable snapshot: treat as missing (timestamp fallback)

    async def put(self, snap: Snapshot) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(self.snapshot_key(snap.espo_id), json.dumps(asdict(snap), sort_keys=True))
        pipe.set(self.betnr_key(snap.betnr), snap.espo_id)
        await pipe.execute()

    async def delete(self, espo_id: str) -> None:
        snap = await self.get(espo_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(self.snapshot_key(espo_id))
        if snap is not None:
            pipe.delete(self.betnr_key(snap.betnr))
        await pipe.execute()

    async def espo_id_for_betnr(self, betnr: int) -> str | None:
        value = await self._redis.get(self.betnr_key(betnr))
        return str(value) if value else None

    async def get_many(self, espo_ids: list[str]) -> dict[str, Snapshot]:
        if not espo_ids:
            return {}
        raws = await self._redis.mget([self.snapshot_key(i) for i in espo_ids])
        out: dict[str, Snapshot] = {}
        for espo_id, raw in zip(espo_ids, raws, strict=True):
            if raw:
                try:
                    out[espo_id] = Snapshot(**json.loads(raw))
                except (TypeError, ValueError):
                    continue
        return out
