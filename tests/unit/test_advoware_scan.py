"""Change detection that does not rest on `geaendertAm` (services/sync/deletions.py, the hourly
listing; services/sync/snapshot.py `advoware_change`): an Advoware edit whose stamp the server
left unchanged reaches EspoCRM within one scan interval, at no Advoware call beyond the
listing's pages; a server sending `rowId` is compared by it."""

from __future__ import annotations

import copy
import itertools
from datetime import timedelta
from typing import Any

import pytest

from services.beteiligte import mapper
from services.sync.model import Result
from services.sync.snapshot import Snapshot, advoware_change
from services.sync.verify import ADVO_BASELINE
from tests.support.fakes import Clock, FakeAdvo, FakeEspo, fake_redis
from tests.support.runtime import World, fake_runtime
from tests.unit.test_outage import advance, linked_records, sweep

PERSON = {"anrede": "Frau", "vorname": "Erika", "name": "Muster", "kommunikation": []}


def snapshot(content_of: dict[str, Any], **over: Any) -> Snapshot:
    content = mapper.from_advo(content_of)
    return Snapshot(
        espo_id="e1",
        betnr=1,
        content=content,
        content_hash=mapper.content_hash(content),
        synced_at="2026-07-01T10:00:00+00:00",
        **over,
    )


# ---------------------------------------------------------------- the rule (pure)


def test_no_snapshot_is_a_change() -> None:
    assert advoware_change(None, PERSON) == "no snapshot"


def test_row_ids_decide_when_both_sides_have_one() -> None:
    snap = snapshot(PERSON, advo_row_id="AAA=")
    assert advoware_change(snap, {**PERSON, "rowId": "AAA="}) is None
    assert advoware_change(snap, {**PERSON, "rowId": "AAB="}) == "rowId"  # an unmapped field changed


def test_content_decides_without_a_row_id() -> None:
    snap = snapshot(PERSON)
    assert advoware_change(snap, dict(PERSON)) is None
    assert advoware_change(snap, {**PERSON, "titel": "Dr."}) == "content"
    # A server that sends rowId now, for a snapshot taken before: content decides.
    assert advoware_change(snap, {**PERSON, "rowId": "AAA="}) is None


def test_a_known_divergence_is_not_found_again_every_hour() -> None:
    """Advoware did not store `titel` as sent (verify.py's baseline): its row holds the old value."""
    sent = {**PERSON, "titel": "Prof."}
    snap = snapshot(sent, extra={ADVO_BASELINE: {"title": None}})  # canonical names
    assert advoware_change(snap, dict(PERSON)) is None
    assert advoware_change(snap, {**PERSON, "titel": "Dr."}) == "content"


# ---------------------------------------------------------------- over simulated sweeps


class FrozenStampAdvo(FakeAdvo):
    """A server whose row version moves on every write (`row_ids`) and whose `geaendertAm`
    a person's edit may leave unchanged (`edit_keeping_stamp`)."""

    def __init__(self, clock: Clock, *, row_ids: bool = False) -> None:
        super().__init__(clock)
        self.row_ids = row_ids
        self._version = itertools.count(1)

    def _bump(self, betnr: int) -> None:
        if self.row_ids:
            self.records[betnr]["rowId"] = f"row-{next(self._version)}"

    def add(self, record: dict[str, Any]) -> int:
        betnr = super().add(record)
        self._bump(betnr)
        return betnr

    async def update_beteiligter(self, betnr: int, payload: dict[str, Any]) -> dict[str, Any]:
        await super().update_beteiligter(betnr, payload)
        self._bump(betnr)
        return copy.deepcopy(self.records[betnr])

    def edit_keeping_stamp(self, betnr: int, **changes: Any) -> None:
        self.records[betnr].update(changes)
        self._bump(betnr)


def scan_world(*, row_ids: bool = False) -> World:
    clock, redis = Clock(), fake_redis()
    espo, advo = FakeEspo(clock), FrozenStampAdvo(clock, row_ids=row_ids)
    return World(
        clock, redis, espo, advo, fake_runtime(espo, advo, redis, clock, ESPOCRM_NOTIFY_USER_ID="u1")
    )


async def settled(world: World, n: int) -> list[str]:
    """`n` linked, synced records whose creation lies behind the change poll's overlap window: a
    later edit of one more record moved the poll's watermark on, as ordinary edits do."""
    *ids, mover = await linked_records(world, n + 1)
    advance(world)
    await sweep(world)  # the first sweep: the first scan too
    advance(world)
    world.advo.edit(int(world.espo.records[mover]["betnr"]), zusatz="moved on")
    await sweep(world)
    advance(world)
    await sweep(world)
    return ids


@pytest.mark.parametrize("row_ids", [False, True], ids=["by-content", "by-rowId"])
async def test_an_edit_the_stamp_hides_arrives_within_one_scan_interval(row_ids: bool) -> None:
    world = scan_world(row_ids=row_ids)
    espo, advo = world.espo, world.advo
    assert isinstance(advo, FrozenStampAdvo)
    ids = await settled(world, 5)
    edited = ids[2]
    betnr = int(espo.records[edited]["betnr"])
    advo.edit_keeping_stamp(betnr, titel="Dr. Stempel")
    interval = world.rt.sweeper().deletion_scan.interval
    synced: dict[str, Result] = {}
    elapsed = timedelta(0)
    while elapsed < interval + timedelta(minutes=15) and espo.records[edited].get("titel") != "Dr. Stempel":
        advance(world)
        elapsed += timedelta(minutes=15)
        synced.update(await sweep(world))
    # Before: only the daily check (24 h) would have read it; the stamp poll cannot see it.
    assert espo.records[edited]["titel"] == "Dr. Stempel"
    assert elapsed <= interval + timedelta(minutes=15)
    assert set(synced) == {edited}  # the other records were not synced: equal to their snapshots


@pytest.mark.parametrize("row_ids", [False, True], ids=["by-content", "by-rowId"])
async def test_the_scan_costs_no_advoware_call_beyond_the_listing(row_ids: bool) -> None:
    world = scan_world(row_ids=row_ids)
    advo = world.advo
    await settled(world, 20)
    scan = world.rt.sweeper().deletion_scan
    before = dict(advo.calls)
    result = await scan.run(world.clock.now)
    assert result.linked == 21 and result.listed == 21  # with the one that moved the watermark
    assert result.changed == {} and result.missing == {}
    spent = {k: v - before.get(k, 0) for k, v in advo.calls.items() if v != before.get(k, 0)}
    assert spent == {"list": 1}  # one listing; no GET per unchanged party


async def test_a_row_id_change_without_a_content_change_is_synced_once() -> None:
    world = scan_world(row_ids=True)
    espo, advo = world.espo, world.advo
    assert isinstance(advo, FrozenStampAdvo)
    ids = await settled(world, 3)
    betnr = int(espo.records[ids[0]]["betnr"])
    advo.edit_keeping_stamp(betnr, aktenvermerk="unmapped field")  # a field the sync does not own
    scan = world.rt.sweeper().deletion_scan
    first = await scan.run(world.clock.now)
    assert first.changed == {betnr: ids[0]} and first.reasons == {"rowId": 1}
    out = await world.engine.sync_record(ids[0])
    assert out.result is Result.UNCHANGED  # nothing to write; the snapshot takes the new rowId
    assert (await scan.run(world.clock.now)).changed == {}
