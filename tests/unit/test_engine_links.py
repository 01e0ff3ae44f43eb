"""The link-integrity paths of the per-record sync against the fakes: identity check before a
create, betnr uniqueness, relinking, write verification, the dry run's identity preview."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from services.beteiligte import mapper
from services.sync.model import Result, Trigger
from tests.support.fakes import fake_env
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


@pytest.fixture
def env() -> dict[str, Any]:
    return fake_env(ESPOCRM_NOTIFY_USER_ID="u1")


def sparse() -> dict[str, Any]:
    return {
        "beteiligterTyp": "Person",
        "firstName": "Jürgen",
        "lastName": "Müßig",
        "geburtsdatum": "1970-03-29",
    }


async def test_a_create_of_an_existing_party_links_it_and_loses_nothing(env: dict[str, Any]) -> None:
    betnr = env["advo"].add(copy.deepcopy(ADVO_RICH))
    rid = env["espo"].add(sparse())
    out = await env["engine"].sync_record(rid, Trigger.WEBHOOK_CREATE)
    assert out.result in (Result.UPDATED, Result.UNCHANGED) and out.betnr == betnr
    assert env["advo"].calls["create"] == 0 and len(env["advo"].records) == 1
    record = env["espo"].records[rid]
    assert record["betnr"] == betnr and record["syncStatus"] == "clean" and record["titel"] == "Prof. Dr."
    assert env["advo"].records[betnr]["titel"] == "Prof. Dr."  # nothing blanked


async def test_a_copied_betnr_is_held_and_advoware_is_not_touched(env: dict[str, Any]) -> None:
    rid = env["espo"].add(dict(PERSON_ESPO))
    betnr = (await env["engine"].sync_record(rid, Trigger.WEBHOOK_CREATE)).betnr
    before = copy.deepcopy(env["advo"].records[betnr])
    copy_id = env["espo"].add({**sparse(), "firstName": "Otto", "betnr": betnr})
    out = await env["engine"].sync_record(copy_id, Trigger.WEBHOOK_CREATE)
    assert out.result is Result.HELD and env["espo"].records[copy_id]["syncStatus"] == "conflict"
    assert env["advo"].records[betnr] == before and not env["advo"].puts
    noted = {parent for parent, _ in env["espo"].notifications}
    assert {rid, copy_id} <= noted
    writes = env["espo"].calls["update"]
    again = await env["engine"].sync_record(copy_id, Trigger.WEBHOOK_UPDATE)  # held again: no second write
    assert again.result is Result.HELD and env["espo"].calls["update"] == writes


async def test_deleted_in_advoware_relinks_when_a_person_sets_the_new_betnr(env: dict[str, Any]) -> None:
    rid = env["espo"].add(dict(PERSON_ESPO))
    old = (await env["engine"].sync_record(rid, Trigger.WEBHOOK_CREATE)).betnr
    del env["advo"].records[old]
    assert (await env["engine"].sync_record(rid, Trigger.MANUAL)).result is Result.DELETED_IN_ADVOWARE
    notes = len(env["espo"].notifications)
    # An unrelated edit while the party is still gone: no second note, nothing written.
    assert (await env["engine"].sync_record(rid, Trigger.WEBHOOK_UPDATE)).result is Result.SKIPPED
    assert len(env["espo"].notifications) == notes
    survivor = env["advo"].add(copy.deepcopy(ADVO_RICH))
    env["espo"].records[rid]["betnr"] = survivor
    out = await env["engine"].sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.UPDATED and env["espo"].records[rid]["syncStatus"] == "clean"
    # First sync of the new pair: Advoware's party changed since advowareLastSync, EspoCRM did not.
    assert env["espo"].records[rid]["titel"] == "Prof. Dr." == env["advo"].records[survivor]["titel"]
    emails = {e["emailAddress"] for e in env["espo"].records[rid]["emailAddressData"]}
    assert {"j.muessig@example.de", "privat@muessig.example"} <= emails  # lists merged, nothing lost


async def test_a_field_advoware_does_not_store_is_reported_and_not_copied_back(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rid = env["espo"].add(dict(PERSON_ESPO))
    betnr = (await env["engine"].sync_record(rid, Trigger.WEBHOOK_CREATE)).betnr
    advo = env["advo"]
    real_update = advo.update_beteiligter

    async def ignoring_titel(b: int, payload: dict[str, Any]) -> dict[str, Any]:
        return await real_update(b, {**payload, "titel": advo.records[b]["titel"]})

    monkeypatch.setattr(advo, "update_beteiligter", ignoring_titel)
    env["espo"].records[rid]["titel"] = "Prof."
    await env["engine"].sync_record(rid, Trigger.WEBHOOK_UPDATE)
    record = env["espo"].records[rid]
    assert "title" in (record.get("syncErrorMessage") or "") and record["titel"] == "Prof."
    assert advo.records[betnr]["titel"] == "Dr."
    out = await env["engine"].sync_record(rid, Trigger.SWEEP)  # e.g. the Advoware poll saw the PUT
    assert env["espo"].records[rid]["titel"] == "Prof." and out.result is Result.UNCHANGED


async def test_the_dry_run_says_a_create_would_link(env: dict[str, Any]) -> None:
    betnr = env["advo"].add(copy.deepcopy(ADVO_RICH))
    first = env["espo"].add({**sparse(), "lastName": "Anders"})
    await env["engine"].sync_record(first, Trigger.WEBHOOK_CREATE)  # builds the index
    rid = env["espo"].add(sparse())
    plan = await env["engine"].plan_record(rid, Trigger.MANUAL)
    assert plan.action == "link" and plan.betnr == betnr
    assert mapper.from_espo(env["espo"].records[rid])["title"] is None  # nothing written


async def test_ops_relink_checks_the_party_and_its_other_links_then_syncs(env: dict[str, Any]) -> None:
    from services.errors import OperationError
    from services.ops.relink import relink

    engine = env["engine"]
    rid = env["espo"].add(dict(PERSON_ESPO))
    other = env["espo"].add({**sparse(), "lastName": "Anders"})
    await engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
    taken = (await engine.sync_record(other, Trigger.WEBHOOK_CREATE)).betnr
    with pytest.raises(OperationError) as missing:
        await relink(engine, rid, 999_999)
    assert missing.value.status == 404
    with pytest.raises(OperationError) as linked_elsewhere:
        await relink(engine, rid, taken)
    assert linked_elsewhere.value.status == 409
    target = env["advo"].add(copy.deepcopy(ADVO_RICH))
    result = await relink(engine, rid, target)
    assert result["result"] in ("updated", "unchanged") and result["betnr"] == target
    assert env["espo"].records[rid]["betnr"] == target and env["espo"].records[rid]["syncStatus"] == "clean"
