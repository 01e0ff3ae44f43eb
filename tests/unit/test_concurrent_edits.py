"""A person's edit that lands while a sync of the same record runs (services/sync/update.py):
EspoCRM writes carry the versionNumber read (409 -> read again, decide again); the Advoware
record is read again right before the full-replace PUT when the first read is old."""

from __future__ import annotations

from typing import Any

import pytest

from services.sync.model import Result, Trigger
from services.sync.update import MAX_REPLANS
from tests.support.runtime import World, fake_world
from tests.unit.test_engine import PERSON_ESPO


def make_world(reread_after: float) -> World:
    return fake_world(ESPOCRM_NOTIFY_USER_ID="u1", SYNC_ADVOWARE_REREAD_SECONDS=reread_after)


pytestmark = pytest.mark.world(ESPOCRM_NOTIFY_USER_ID="u1", SYNC_ADVOWARE_REREAD_SECONDS=2.0)


async def linked(world: World) -> tuple[str, int]:
    rid = world.espo.add(dict(PERSON_ESPO))
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
    assert out.result is Result.CREATED and out.betnr is not None
    return rid, out.betnr


def person_saves_during_our_write(world: World, rid: str, times: int = 1, **changes: Any) -> None:
    """The person's save lands between our read and our EspoCRM write carrying Advoware's changes."""
    espo = world.espo
    original = espo.update
    left = [times]

    async def update(entity: str, record_id: str, data: dict[str, Any], **kw: Any) -> dict[str, Any]:
        if left[0] and "advowareLastSync" in data and kw.get("version_number") is not None:
            left[0] -= 1
            espo.edit(record_id, **{k: f"{v}{left[0]}" if times > 1 else v for k, v in changes.items()})
        return await original(entity, record_id, data, **kw)

    espo.update = update  # type: ignore[method-assign]  # a fake patched for this test


async def test_same_field_saved_during_the_sync_is_not_overwritten(world: World) -> None:
    espo, advo = world.espo, world.advo
    rid, betnr = await linked(world)
    advo.edit(betnr, titel="Prof.")  # Advoware's change the sync is about to write to EspoCRM
    person_saves_during_our_write(world, rid, titel="Dr. med.")
    out = await world.engine.sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.UPDATED
    assert espo.calls["version_conflict"] == 1
    # Both changed the same field: EspoCRM's (the person's newest) wins, and a person is told.
    assert espo.records[rid]["titel"] == "Dr. med." and advo.records[betnr]["titel"] == "Dr. med."
    assert any("Prof." in message for _, message in espo.notifications)


async def test_other_field_saved_during_the_sync_keeps_both_edits(world: World) -> None:
    espo, advo = world.espo, world.advo
    rid, betnr = await linked(world)
    advo.edit(betnr, titel="Prof.")
    person_saves_during_our_write(world, rid, firstName="Käthe")
    out = await world.engine.sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.UPDATED and espo.calls["version_conflict"] == 1
    assert espo.records[rid]["titel"] == "Prof." and espo.records[rid]["firstName"] == "Käthe"
    assert advo.records[betnr]["titel"] == "Prof." and advo.records[betnr]["vorname"] == "Käthe"
    assert not espo.notifications  # no conflict: different fields


async def test_a_record_saved_during_every_attempt_is_failed_not_lost(world: World) -> None:
    espo, advo = world.espo, world.advo
    rid, betnr = await linked(world)
    advo.edit(betnr, titel="Prof.")
    person_saves_during_our_write(world, rid, times=MAX_REPLANS + 1, firstName="Käthe")
    out = await world.engine.sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.FAILED and espo.records[rid]["syncStatus"] == "failed"
    assert espo.calls["version_conflict"] == MAX_REPLANS + 1
    assert espo.records[rid]["firstName"] == "Käthe0"  # the person's last save stands


def advoware_edit_after_our_read(world: World, betnr: int, **changes: Any) -> None:
    advo = world.advo
    original = advo.get_beteiligter
    done = [False]

    async def get(number: int) -> dict[str, Any]:
        record = await original(number)
        if number == betnr and not done[0]:
            done[0] = True
            advo.edit(number, **changes)  # lands after our read, before our PUT
        return record

    advo.get_beteiligter = get  # type: ignore[assignment,method-assign]  # a fake patched for this test


@pytest.mark.parametrize("changes", [{"vorname": "Anneliese"}, {"zusatz": "i. L."}])
async def test_advoware_edit_between_read_and_put_survives(changes: dict[str, Any]) -> None:
    world = make_world(reread_after=0.0)  # the first read counts as old: always read again
    espo, advo = world.espo, world.advo
    rid, betnr = await linked(world)
    espo.edit(rid, titel="Prof.")
    advoware_edit_after_our_read(world, betnr, **changes)
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.UPDATED
    record = advo.records[betnr]
    assert record["titel"] == "Prof."
    for name, value in changes.items():  # a synced field (decided again) or an unmapped one
        assert record[name] == value
    if "vorname" in changes:
        assert espo.records[rid]["firstName"] == "Anneliese"


async def test_without_the_reread_the_window_is_the_read_to_put_time(world: World) -> None:
    """The first read is fresh (< SYNC_ADVOWARE_REREAD_SECONDS): no second read; an edit landing in
    that short window is what the contract leaves (docs/architecture.md)."""
    espo, advo = world.espo, world.advo
    rid, _ = await linked(world)
    espo.edit(rid, titel="Prof.")
    gets = advo.calls["get"]
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.UPDATED and advo.calls["get"] == gets + 1


def person_saves_during_the_advoware_call(world: World, rid: str, method: str, **changes: Any) -> None:
    """The person's save lands after our EspoCRM read, while an Advoware call of the run is under
    way (`get_beteiligter`: before any write of the run; `create_beteiligter`: during the POST)."""
    espo, advo = world.espo, world.advo
    original = getattr(advo, method)
    done = [False]

    async def call(*args: Any) -> Any:
        if not done[0]:
            done[0] = True
            espo.edit(rid, **changes)
        return await original(*args)

    setattr(advo, method, call)


async def test_a_save_during_the_advoware_read_is_not_laundered_by_the_syncing_mark(
    world: World,
) -> None:
    """Issue 20: the unversioned `syncing` mark adopted the version the person's save produced,
    and the write carrying Advoware's title then overwrote their title without a word."""
    espo, advo = world.espo, world.advo
    rid, betnr = await linked(world)
    advo.edit(betnr, titel="Prof.")  # Advoware's change the sync is about to write to EspoCRM
    person_saves_during_the_advoware_call(world, rid, "get_beteiligter", titel="Dr. med.")
    out = await world.engine.sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.UPDATED and espo.calls["version_conflict"] == 1
    # Both changed the title: the person's (EspoCRM's) wins on both sides, and the notice names
    # the Advoware value it overwrote.
    assert espo.records[rid]["titel"] == "Dr. med." and advo.records[betnr]["titel"] == "Dr. med."
    assert any("Prof." in message and "Dr. med." in message for _, message in espo.notifications)


async def test_a_save_during_a_link_is_kept(world: World) -> None:
    """The identity check links an existing party; the person saves while it reads Advoware. The
    betnr write is versioned: the link is decided again on what they saved, and their title is not
    replaced by Advoware's (the first sync would otherwise fill it from Advoware)."""
    espo, advo = world.espo, world.advo
    betnr = advo.add(
        {"rechtsform": None, "anrede": "Herr", "titel": "Prof.", "vorname": "Jürgen", "name": "Müßig",
         "geburtsdatum": "1970-03-29", "kommunikation": []}
    )  # fmt: skip
    rid = espo.add(
        {"beteiligterTyp": "Person", "firstName": "Jürgen", "lastName": "Müßig", "geburtsdatum": "1970-03-29"}
    )
    # The first Advoware read of the run is the identity check's read of the candidate.
    person_saves_during_the_advoware_call(world, rid, "get_beteiligter", titel="Dr. med.")
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
    assert out.betnr == betnr and advo.calls["create"] == 0
    assert espo.records[rid]["titel"] == "Dr. med." and advo.records[betnr]["titel"] == "Dr. med."
    assert any("Prof." in message for _, message in espo.notifications)  # both had a title: told


async def test_a_save_during_the_create_post_reaches_advoware(world: World) -> None:
    """The write-back of a create carries the version read: a person's save during the POST makes
    it run again, and their edit reaches Advoware now (no second party)."""
    espo, advo = world.espo, world.advo
    rid = espo.add(dict(PERSON_ESPO))
    person_saves_during_the_advoware_call(world, rid, "create_beteiligter", titel="Dr. med.")
    await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
    assert advo.calls["create"] == 1 and len(advo.records) == 1
    betnr = espo.records[rid]["betnr"]
    assert espo.records[rid]["syncStatus"] == "clean"
    assert espo.records[rid]["titel"] == "Dr. med." and advo.records[betnr]["titel"] == "Dr. med."
