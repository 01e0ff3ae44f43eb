"""Forget one party's traces: the service's own copies of a record's personal data in Redis.

EspoCRM and Advoware hold the firm's data; the service keeps copies to do its work (README,
"Personal data the service keeps"). `forget(redis, id)` removes every copy that belongs to one
EspoCRM record, key by key from the registry (services/store/keys.py):

| what                                   | key                                        |
|----------------------------------------|--------------------------------------------|
| last-synced snapshot (names, contacts) | `vmh:snap:<id>`, its `vmh:betnr:<betnr>`   |
| create intent (content sent)           | `vmh:intent:<id>`, its `vmh:create:unresolved:*` marks |
| history (values old -> new)            | `vmh:history:<id>`                         |
| conflicts waiting / notified marks     | `vmh:conflict:pending:<id>`, `…:notified:<id>:*` |
| notices waiting for delivery           | entries of `vmh:notify:outbox` for the id  |
| recent notifications and events        | entries of `vmh:notifications`, `vmh:recent:*` |
| unlink record, sync bookkeeping        | `vmh:unlinked:<id>`, `vmh:again:<id>`, `vmh:own:espocrm`, `vmh:webhook:gen:<id>`, `vmh:pending:advoware`, `vmh:breaker:*:held` |

Kept on purpose: the identity index (`vmh:identity:*`) describes *Advoware's* parties, which
stay when an EspoCRM record goes (by design nothing is deleted in Advoware); without it, the next
create of the same person could not find that party and would make a second one. It holds no
EspoCRM id. The record lock is left to expire (taking it away could let two syncs overlap).

Runs by itself after an EspoCRM record is deleted (services/sync/engine.py), after the
deletion notice was delivered or queued: that notice is the staff's one message about it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from services.store import keys

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from services.sync.lock import RecordLocks

# Lists whose JSON entries name a record by "id".
_EVENT_LISTS = (keys.NOTIFICATIONS,)


@dataclass
class Forgotten:
    record_id: str
    keys_deleted: list[str] = field(default_factory=list)
    entries_removed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.record_id,
            "keysDeleted": sorted(self.keys_deleted),
            "entriesRemoved": self.entries_removed,
        }


async def forget(redis: Redis, record_id: str, *, keep_outbox: bool = False) -> Forgotten:
    """Remove the record's traces (see the module doc). `keep_outbox`: leave its notices that
    still wait for delivery (the automatic forget after a delete: the deletion notice must
    still reach a person; the outbox drops it once delivered)."""
    from services.sync.intents import IntentStore

    done = Forgotten(record_id)
    await _drop_snapshot(redis, record_id, done)
    # With its marks: another record's create of the same party no longer waits for this one.
    if await IntentStore(redis).delete(record_id):
        done.keys_deleted.append(keys.create_intent(record_id))
    per_record = [
        keys.history(record_id),
        keys.pending_conflicts(record_id),
        keys.unlinked(record_id),
        keys.record_again(record_id),
        keys.webhook_generation(record_id),
    ]
    async for name in redis.scan_iter(match=keys.conflict_notified(record_id, "*"), count=500):
        per_record.append(name if isinstance(name, str) else name.decode())
    for name in per_record:
        if await redis.delete(name):
            done.keys_deleted.append(name)
    done.entries_removed += int(await redis.hdel(keys.OWN_WRITES_ESPOCRM, record_id))
    done.entries_removed += int(await redis.zrem(keys.PENDING_ADVOWARE, record_id))
    async for name in redis.scan_iter(match=keys.breaker_held("*"), count=100):
        done.entries_removed += int(await redis.zrem(name, record_id))
    if not keep_outbox:
        done.entries_removed += await _drop_hash_entries(redis, keys.NOTIFY_OUTBOX, record_id)
    lists = [*_EVENT_LISTS]
    async for name in redis.scan_iter(match=keys.recent("*"), count=100):
        lists.append(name if isinstance(name, str) else name.decode())
    for name in lists:
        done.entries_removed += await _drop_list_entries(redis, name, record_id)
    return done


async def _drop_snapshot(redis: Redis, record_id: str, done: Forgotten) -> None:
    from services.sync.snapshot import SnapshotStore

    store = SnapshotStore(redis)
    snap = await store.get(record_id)
    if snap is None:
        return
    await store.delete(record_id)  # the betnr index entry with it, when it points here
    done.keys_deleted.append(keys.snapshot(record_id))


def _names(raw: Any, record_id: str) -> bool:
    """An entry about the record: by its id field, or a notice whose text names it (a notice
    about a deleted record goes to the user's stream and names the record in its text)."""
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return False
    if not isinstance(value, dict):
        return False
    return record_id in (value.get("id"), value.get("record_id")) or record_id in str(
        value.get("message", "")
    )


async def _drop_list_entries(redis: Redis, name: str, record_id: str) -> int:
    removed = 0
    for raw in await redis.lrange(name, 0, -1):
        if _names(raw, record_id):
            removed += int(await redis.lrem(name, 0, raw))
    return removed


async def _drop_hash_entries(redis: Redis, name: str, record_id: str) -> int:
    removed = 0
    for entry_id, raw in (await redis.hgetall(name)).items():
        if _names(raw, record_id):
            removed += int(await redis.hdel(name, entry_id))
    return removed


async def forget_locked(locks: RecordLocks, record_id: str) -> Forgotten:
    """`forget` under the record's lock (409 while a sync holds it): a sync running meanwhile
    would write its history or intent back after the erasure."""
    async with locks.holding(record_id):
        return await forget(locks.redis, record_id)


async def forget_request(locks: RecordLocks, body: Any) -> dict[str, Any]:
    """`POST /vmh/beteiligte/sync/forget` with `{"id": "<EspoCRM id>"}`."""
    from services.errors import OperationError

    if not isinstance(body, dict) or not isinstance(body.get("id"), str) or not body["id"].strip():
        raise OperationError('expected {"id": "<EspoCRM id>"}')
    return (await forget_locked(locks, body["id"].strip())).as_dict()
