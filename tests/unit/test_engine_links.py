"""The link-integrity paths of the per-record sync against the fakes: identity check before a
create, betnr uniqueness, relinking, write verification, the dry run's identity preview."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from services.beteiligte import mapper
from services.sync.model import Result, Trigger
from tests.support.runtime import World
from tests.unit.test_engine import PERSON_ESPO

ADVO_RICH: dict[str, Any] = {
    "rechtsform": None,
    "anrede": "Herr",
    "titel": "Prof. Dr.",
    "vorname": "Jürgen",
    "name": "Müßig",
    "geburtsdatum": "1970-03-29",
    "kommunikation": [{"kommKz": 8, "tlf": "privat@muessig.example", "bemerkung": None, "online": False}],
}


pytestmark = pytest.mark.world(ESPOCRM_NOTIFY_USER_ID="u1")


def sparse() -> dict[str, Any]:
    return {
        "beteiligterTyp": "Person",
        "firstName": "Jürgen",
        "lastName": "Müßig",
        "geburtsdatum": "1970-03-29",
    }


async def test_a_create_of_an_existing_party_links_it_and_loses_nothing(world: World) -> None:
    betnr = world.advo.add(copy.deepcopy(ADVO_RICH))
    rid = world.espo.add(sparse())
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
    assert out.result in (Result.UPDATED, Result.UNCHANGED) and out.betnr == betnr
    assert world.advo.calls["create"] == 0 and len(world.advo.records) == 1
    record = world.espo.records[rid]
    assert record["betnr"] == betnr and record["syncStatus"] == "clean" and record["titel"] == "Prof. Dr."
    assert world.advo.records[betnr]["titel"] == "Prof. Dr."  # nothing blanked


async def test_a_copied_betnr_is_held_and_advoware_is_not_touched(world: World) -> None:
    rid = world.espo.add(dict(PERSON_ESPO))
    betnr = (await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)).betnr
    assert betnr is not None
    before = copy.deepcopy(world.advo.records[betnr])
    copy_id = world.espo.add({**sparse(), "firstName": "Otto", "betnr": betnr})
    out = await world.engine.sync_record(copy_id, Trigger.WEBHOOK_CREATE)
    assert out.result is Result.HELD and world.espo.records[copy_id]["syncStatus"] == "conflict"
    assert world.advo.records[betnr] == before and not world.advo.puts
    noted = {parent for parent, _ in world.espo.notifications}
    assert {rid, copy_id} <= noted
    writes = world.espo.calls["update"]
    again = await world.engine.sync_record(copy_id, Trigger.WEBHOOK_UPDATE)  # held again: no second write
    assert again.result is Result.HELD and world.espo.calls["update"] == writes


async def test_deleted_in_advoware_relinks_when_a_person_sets_the_new_betnr(world: World) -> None:
    rid = world.espo.add(dict(PERSON_ESPO))
    old = (await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)).betnr
    assert old is not None
    del world.advo.records[old]
    assert (await world.engine.sync_record(rid, Trigger.MANUAL)).result is Result.DELETED_IN_ADVOWARE
    notes = len(world.espo.notifications)
    # An unrelated edit while the party is still gone: no second note, nothing written.
    assert (await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)).result is Result.SKIPPED
    assert len(world.espo.notifications) == notes
    survivor = world.advo.add(copy.deepcopy(ADVO_RICH))
    world.espo.records[rid]["betnr"] = survivor
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.UPDATED and world.espo.records[rid]["syncStatus"] == "clean"
    # First sync of the new pair: Advoware's party changed since advowareLastSync, EspoCRM did not.
    assert world.espo.records[rid]["titel"] == "Prof. Dr." == world.advo.records[survivor]["titel"]
    emails = {e["emailAddress"] for e in world.espo.records[rid]["emailAddressData"]}
    assert {"j.muessig@example.de", "privat@muessig.example"} <= emails  # lists merged, nothing lost


async def test_a_field_advoware_does_not_store_is_reported_and_not_copied_back(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = world.espo.add(dict(PERSON_ESPO))
    betnr = (await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)).betnr
    assert betnr is not None
    advo = world.advo
    real_update = advo.update_beteiligter

    async def ignoring_titel(b: int, payload: dict[str, Any]) -> dict[str, Any]:
        return await real_update(b, {**payload, "titel": advo.records[b]["titel"]})

    monkeypatch.setattr(advo, "update_beteiligter", ignoring_titel)
    world.espo.records[rid]["titel"] = "Prof."
    await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    record = world.espo.records[rid]
    assert "title" in (record.get("syncErrorMessage") or "") and record["titel"] == "Prof."
    assert advo.records[betnr]["titel"] == "Dr."
    out = await world.engine.sync_record(rid, Trigger.SWEEP)  # e.g. the Advoware poll saw the PUT
    assert world.espo.records[rid]["titel"] == "Prof." and out.result is Result.UNCHANGED


async def test_the_dry_run_says_a_create_would_link(world: World) -> None:
    betnr = world.advo.add(copy.deepcopy(ADVO_RICH))
    first = world.espo.add({**sparse(), "lastName": "Anders"})
    await world.engine.sync_record(first, Trigger.WEBHOOK_CREATE)  # builds the index
    rid = world.espo.add(sparse())
    plan = await world.engine.plan_record(rid, Trigger.MANUAL)
    assert plan.action == "link" and plan.betnr == betnr
    assert mapper.from_espo(world.espo.records[rid])["title"] is None  # nothing written


async def test_ops_relink_checks_the_party_and_its_other_links_then_syncs(world: World) -> None:
    from services.errors import OperationError
    from services.ops.relink import relink

    engine = world.engine
    rid = world.espo.add(dict(PERSON_ESPO))
    other = world.espo.add({**sparse(), "lastName": "Anders"})
    await engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
    taken = (await engine.sync_record(other, Trigger.WEBHOOK_CREATE)).betnr
    assert taken is not None
    with pytest.raises(OperationError) as missing:
        await relink(engine, rid, 999_999)
    assert missing.value.status == 404
    with pytest.raises(OperationError) as linked_elsewhere:
        await relink(engine, rid, taken)
    assert linked_elsewhere.value.status == 409
    target = world.advo.add(copy.deepcopy(ADVO_RICH))
    result = await relink(engine, rid, target)
    assert result["result"] in ("updated", "unchanged") and result["betnr"] == target
    assert world.espo.records[rid]["betnr"] == target and world.espo.records[rid]["syncStatus"] == "clean"
