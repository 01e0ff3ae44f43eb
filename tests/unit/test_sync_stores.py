"""The sync's small JSON stores in Redis, and what each makes of a value it cannot read:
create intents (services/sync/intents.py) raise, snapshots (services/sync/snapshot.py) and
pending conflicts (services/sync/stores.py) count as missing."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import pytest

from services.store import keys
from services.sync.decide import FieldConflict
from services.sync.intents import CreateIntent, IntentStore
from services.sync.snapshot import Snapshot, SnapshotStore
from services.sync.stores import PendingConflicts

UNREADABLE = ["{not json", json.dumps({"espo_id": "r1", "no_such_field": 1}), json.dumps([1, 2])]


def snapshot(espo_id: str = "r1", betnr: int = 7) -> Snapshot:
    return Snapshot(espo_id, betnr, {"last_name": "Meier"}, "h1", "2026-07-01T10:00:00+00:00")


# --------------------------------------------------------------------------- create intents


async def test_an_intent_round_trips_and_expires(redis: Any) -> None:
    store = IntentStore(redis)
    intent = CreateIntent("r1", started_at="2026-07-01T10:00:00+00:00", content_hash="h1")
    await store.put(intent)
    assert await store.get("r1") == intent
    assert 0 < await redis.ttl(keys.create_intent("r1")) <= keys.CREATE_INTENT_TTL_SECONDS
    await store.put(CreateIntent("r1", started_at=intent.started_at, betnr=42, content_hash="h1"))
    assert (await store.get("r1")) == CreateIntent("r1", intent.started_at, 42, "h1")
    await store.delete("r1")
    assert await store.get("r1") is None


@pytest.mark.parametrize("raw", UNREADABLE)
async def test_an_unreadable_intent_raises_rather_than_counting_as_missing(redis: Any, raw: str) -> None:
    """Missing would let the retry POST again: a second Advoware party for the same record."""
    await redis.set(keys.create_intent("r1"), raw)
    with pytest.raises((ValueError, TypeError)):
        await IntentStore(redis).get("r1")


# --------------------------------------------------------------------------- snapshots


async def test_a_snapshot_round_trips_with_its_betnr_index(redis: Any) -> None:
    store = SnapshotStore(redis)
    await store.put(snapshot())
    assert await store.get("r1") == snapshot()
    assert await store.espo_id_for_betnr(7) == "r1"
    assert await store.get_many(["r1", "r2"]) == {"r1": snapshot()}
    assert await store.get_many([]) == {}
    await store.delete("r1")
    assert await store.get("r1") is None and await store.espo_id_for_betnr(7) is None


@pytest.mark.parametrize("raw", UNREADABLE)
async def test_an_unreadable_snapshot_counts_as_missing(redis: Any, raw: str) -> None:
    """The sync then falls back to its no-snapshot rules and writes a new one."""
    store = SnapshotStore(redis)
    await store.put(snapshot("r2", betnr=8))
    await redis.set(keys.snapshot("r1"), raw)
    assert await store.get("r1") is None
    assert await store.get_many(["r1", "r2"]) == {"r2": snapshot("r2", betnr=8)}
    await store.delete("r1")
    assert not await redis.exists(keys.snapshot("r1"))


async def test_a_snapshot_with_keys_of_a_newer_version_is_read(redis: Any) -> None:
    """Two instances on one Redis during an upgrade: the older reads the newer's snapshot."""
    store = SnapshotStore(redis)
    body = {**asdict(snapshot()), "a_later_field": {"x": 1}}
    await redis.set(keys.snapshot("r1"), json.dumps(body))
    assert await store.get("r1") == snapshot()


# --------------------------------------------------------------------------- pending conflicts


async def test_pending_conflicts_belong_to_their_pair(redis: Any) -> None:
    store = PendingConflicts(redis)
    conflicts = [FieldConflict("last_name", "Meier", "Schulze")]
    await store.put("r1", 7, conflicts)
    assert await store.get("r1", 7) == conflicts
    assert await store.get("r1", 8) == []  # relinked since: about another pair
    assert 0 < await redis.ttl(keys.pending_conflicts("r1")) <= keys.PENDING_CONFLICTS_TTL_SECONDS
    await store.delete("r1")
    assert await store.get("r1", 7) == []


@pytest.mark.parametrize(
    "raw", [*UNREADABLE, json.dumps({"betnr": 7}), json.dumps({"betnr": 7, "conflicts": [1]})]
)
async def test_unreadable_pending_conflicts_count_as_none(redis: Any, raw: str) -> None:
    await redis.set(keys.pending_conflicts("r1"), raw)
    assert await PendingConflicts(redis).get("r1", 7) == []
