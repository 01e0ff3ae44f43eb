"""Creates that survive any lost answer without a second party, serialised per identity
(services/sync/create.py, linking.py, claims.py), against the fakes and fakeredis."""

from __future__ import annotations

import asyncio
import copy
import re
from typing import Any

import pytest

from services.errors import UnavailableError
from services.sync.model import Result, Trigger
from tests.support.records import espo_email
from tests.support.runtime import World, fake_runtime
from tests.unit.test_engine import PERSON_ESPO

MOBILE = {"kommKz": 3, "tlf": "+49 171 5550100", "bemerkung": None, "online": False}


pytestmark = pytest.mark.world(ESPOCRM_NOTIFY_USER_ID="u1", SYNC_MAX_ATTEMPTS=5)


def digits(record: dict[str, Any]) -> set[str]:
    return {re.sub(r"\D", "", p["phoneNumber"]) for p in record.get("phoneNumberData") or []}


def slow_creates(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """Advoware takes a moment to answer a POST: long enough for another record's sync to run."""
    advo, real = world.advo, world.advo.create_beteiligter

    async def slow(payload: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0.05)
        return await real(payload)

    monkeypatch.setattr(advo, "create_beteiligter", slow)


async def test_a_lost_answer_then_staff_and_crm_edits_link_the_one_party_and_keep_both(
    world: World,
) -> None:
    espo, advo = world.espo, world.advo
    rid = espo.add(dict(PERSON_ESPO))
    advo.lose_create_answer = UnavailableError("timeout", system="advoware")
    assert (await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)).result is Result.FAILED
    (betnr,) = advo.records
    # Staff complete the new party in Advoware; a person edits the e-mail in the CRM.
    advo.edit(betnr, titel="Prof. Dr.", kommunikation=[*advo.records[betnr]["kommunikation"], MOBILE])
    espo.edit(rid, emailAddress="neu@example.de", emailAddressData=[espo_email("neu@example.de")])
    world.clock.tick(600)
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.CREATED and out.betnr == betnr
    assert list(advo.records) == [betnr] and advo.calls["create"] == 1, "no second party"
    record, party = espo.records[rid], advo.records[betnr]
    assert record["betnr"] == betnr and record["syncStatus"] == "clean"
    # The staff edits reached the CRM (not reverted by the CRM's values as sent) ...
    assert record["titel"] == "Prof. Dr." == party["titel"]
    assert "491715550100" in digits(record) and any(k["tlf"] == MOBILE["tlf"] for k in party["kommunikation"])
    # ... and the person's CRM edit reached Advoware, without a conflict notice.
    mails = {k["tlf"] for k in party["kommunikation"] if k["kommKz"] in (4, 8)}
    assert mails == {"neu@example.de"} and record["emailAddress"] == "neu@example.de"
    assert not [n for n in espo.notifications if "Konflikt" in n[1] or "beide" in n[1]]
    assert await world.engine.intents.get(rid) is None


async def test_a_create_recovered_after_a_failed_write_back_keeps_the_staff_edit(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    espo, advo = world.espo, world.advo
    rid = espo.add(dict(PERSON_ESPO))
    real_update = espo.update

    async def write_back_fails(entity: str, record_id: str, data: dict[str, Any], **kw: Any) -> Any:
        if "betnr" in data:
            raise UnavailableError("down", system="espocrm", status_code=503)
        return await real_update(entity, record_id, data, **kw)

    monkeypatch.setattr(espo, "update", write_back_fails)
    assert (await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)).result is Result.FAILED
    (betnr,) = advo.records
    monkeypatch.setattr(espo, "update", real_update)
    advo.edit(betnr, titel="Prof. Dr.")  # staff, before the retry
    world.clock.tick(600)
    out = await world.engine.sync_record(rid, Trigger.SWEEP)
    assert advo.records[betnr]["titel"] == "Prof. Dr.", "the staff edit was reverted"
    assert espo.records[rid]["titel"] == "Prof. Dr." and espo.records[rid]["betnr"] == betnr
    assert out.result is Result.CREATED and out.betnr == betnr and list(advo.records) == [betnr]


async def test_a_lost_answer_of_a_create_advoware_cut_short_makes_no_second_party(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    espo, advo = world.espo, world.advo
    rid = espo.add({**PERSON_ESPO, "titel": "Dr. med. dent."})
    real_create = advo.create_beteiligter

    async def cut_short(payload: dict[str, Any]) -> dict[str, Any]:
        return await real_create({**payload, "titel": payload["titel"][:6]})  # stores "Dr. me"

    monkeypatch.setattr(advo, "create_beteiligter", cut_short)
    advo.lose_create_answer = UnavailableError("timeout", system="advoware")
    assert (await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)).result is Result.FAILED
    world.clock.tick(600)
    out = await world.engine.sync_record(rid, Trigger.SWEEP)
    (betnr,) = advo.records
    assert out.result is Result.CREATED and out.betnr == betnr, "a second party"
    # Advoware's own cut is not a staff edit: the CRM keeps its value, the cut is reported.
    record = espo.records[rid]
    assert record["titel"] == "Dr. med. dent." and advo.records[betnr]["titel"] == "Dr. me"
    assert [n for n in espo.notifications if "nicht alle Werte" in n[1]]
    assert (await world.engine.sync_record(rid, Trigger.SWEEP)).result is Result.UNCHANGED


async def test_a_retry_runs_the_identity_check_and_links_a_party_entered_meanwhile(
    world: World,
) -> None:
    espo, advo = world.espo, world.advo
    rid = espo.add(dict(PERSON_ESPO))
    advo.fail_next["create"] = [UnavailableError("timeout", system="advoware")]  # never arrived
    assert (await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)).result is Result.FAILED
    assert advo.records == {} and await world.engine.intents.get(rid) is not None
    entered = advo.add(
        {"rechtsform": None, "anrede": "Herr", "vorname": "Jürgen", "name": "Müßig", "titel": "Prof.",
         "geburtsdatum": "1970-03-29", "kommunikation": []}
    )  # fmt: skip
    world.clock.tick(600)
    out = await world.engine.sync_record(rid, Trigger.SWEEP)
    assert out.betnr == entered and list(advo.records) == [entered], "no second party"
    assert espo.records[rid]["betnr"] == entered and espo.records[rid]["syncStatus"] == "clean"


async def test_two_records_of_one_person_in_one_batch_make_one_party_and_hold_the_second(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    espo, advo = world.espo, world.advo
    first, second = espo.add(dict(PERSON_ESPO)), espo.add(copy.deepcopy(PERSON_ESPO))
    slow_creates(world, monkeypatch)
    outs = {o.record_id: o for o in await world.engine.sync_many([first, second], Trigger.WEBHOOK_CREATE)}
    assert len(advo.records) == 1, "a second Advoware party"
    assert_one_created_one_held(world, outs, first, second)


async def test_two_simultaneous_deliveries_of_one_person_make_one_party(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes (two engines on the one Redis), one record each, at the same moment."""
    espo, advo = world.espo, world.advo
    first, second = espo.add(dict(PERSON_ESPO)), espo.add(copy.deepcopy(PERSON_ESPO))
    slow_creates(world, monkeypatch)
    other = fake_runtime(espo, advo, world.redis, world.clock, ESPOCRM_NOTIFY_USER_ID="u1").engine
    done = await asyncio.gather(
        world.engine.sync_record(first, Trigger.WEBHOOK_CREATE),
        other.sync_record(second, Trigger.WEBHOOK_CREATE),
    )
    assert len(advo.records) == 1, "a second Advoware party"
    assert_one_created_one_held(world, {o.record_id: o for o in done}, first, second)


def assert_one_created_one_held(world: World, outs: dict[str, Any], first: str, second: str) -> None:
    espo, advo = world.espo, world.advo
    (betnr,) = advo.records
    results = sorted(o.result.value for o in outs.values())
    assert results == ["created", "held"], results
    linked = next(r for r, o in outs.items() if o.result is Result.CREATED)
    held = second if linked == first else first
    assert espo.records[linked]["betnr"] == betnr and espo.records[linked]["syncStatus"] == "clean"
    assert espo.records[held].get("betnr") in (None, "") and espo.records[held]["syncStatus"] == "conflict"
    assert (
        linked in espo.records[held]["syncErrorMessage"]
        and str(betnr) in espo.records[held]["syncErrorMessage"]
    )
    assert {held, linked} <= {parent for parent, _ in espo.notifications}


async def test_create_it_anyway_still_links_the_party_an_earlier_try_made(world: World) -> None:
    espo, advo = world.espo, world.advo
    rid = espo.add(dict(PERSON_ESPO))
    advo.lose_create_answer = UnavailableError("timeout", system="advoware")
    await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
    (betnr,) = advo.records
    espo.records[rid]["syncStatus"] = "conflict"  # e.g. held meanwhile; an operator: `sync <id>`
    world.clock.tick(600)
    out = await world.engine.sync_record(rid, Trigger.MANUAL)
    assert out.betnr == betnr and list(advo.records) == [betnr]


async def test_a_create_waiting_too_long_for_the_same_party_is_left_for_the_sweep(
    world: World,
) -> None:
    from services.beteiligte import mapper
    from services.sync.claims import Claims
    from services.sync.create import claim_keys

    espo, advo, linker = world.espo, world.advo, world.engine.linker
    linker.claims = Claims(world.redis, 30, wait_seconds=0.2)
    rid = espo.add(dict(PERSON_ESPO))
    async with Claims(world.redis, 30).hold(claim_keys(mapper.from_espo(PERSON_ESPO), None)):
        out = await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)  # another record's create
    assert out.result is Result.SKIPPED and advo.calls["create"] == 0
    assert espo.records[rid]["syncStatus"] == "pending_sync"  # the sweep's pending source finds it
    assert (await world.engine.sync_record(rid, Trigger.SWEEP)).result is Result.CREATED


async def test_a_claim_lost_during_the_identity_check_stops_the_create_before_the_post(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.store.lease import force_release
    from services.sync.claims import Claims

    espo, advo, linker = world.espo, world.advo, world.engine.linker
    linker.claims = Claims(world.redis, 0.6)  # renewed every 0.2 s
    real_check = linker.before_create

    async def claim_expires_meanwhile(*args: Any, **kwargs: Any) -> Any:
        decision = await real_check(*args, **kwargs)
        held = kwargs["held"]
        for lease in held.leases:
            await force_release(world.redis, lease.name)  # e.g. expired during a Redis outage
        for _ in range(100):  # until the renewal notices
            if any(lease.lost for lease in held.leases):
                break
            await asyncio.sleep(0.05)
        return decision

    monkeypatch.setattr(linker, "before_create", claim_expires_meanwhile)
    rid = espo.add(dict(PERSON_ESPO))
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
    assert out.result is Result.FAILED and advo.calls["create"] == 0, "POSTed without the claim"
    monkeypatch.setattr(linker, "before_create", real_check)
    world.clock.tick(600)
    assert (await world.engine.sync_record(rid, Trigger.SWEEP)).result is Result.CREATED
    assert len(advo.records) == 1


def late_first_create(world: World, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """A slow Advoware: the first POST times out for the client, and the server carries it out
    later (when the test appends the payload's party: `advo.add(late.pop())`)."""
    from services.errors import ResponseTimeoutError

    advo, real = world.advo, world.advo.create_beteiligter
    late: list[dict[str, Any]] = []

    async def slow_server(payload: dict[str, Any]) -> dict[str, Any]:
        if advo.calls["create"] == 0:
            advo.calls["create"] += 1
            late.append(copy.deepcopy(payload))
            raise ResponseTimeoutError("read timeout", system="advoware")
        return await real(payload)

    monkeypatch.setattr(advo, "create_beteiligter", slow_server)
    return late


async def test_a_create_answered_late_keeps_another_records_create_of_the_party_waiting(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chaos run's sequence: A's POST times out but Advoware creates A's party later; B, of
    the same person, must not find nothing in between and POST a second party."""
    espo, advo, engine = world.espo, world.advo, world.engine
    first, second = espo.add(dict(PERSON_ESPO)), espo.add(copy.deepcopy(PERSON_ESPO))
    late = late_first_create(world, monkeypatch)
    assert (await engine.sync_record(first, Trigger.WEBHOOK_CREATE)).result is Result.FAILED
    out = await engine.sync_record(second, Trigger.WEBHOOK_CREATE)
    assert advo.calls["create"] == 1, "B POSTed while A's POST may still be carried out: two parties"
    assert out.result is Result.SKIPPED and first in (out.reason or ""), out
    assert espo.records[second]["syncStatus"] == "pending_sync"  # the sweep's pending source
    advo.add(late.pop())  # the slow server finishes A's POST
    world.clock.tick(600)
    a = await engine.sync_record(first, Trigger.SWEEP)  # not kept waiting by its own mark
    assert a.result is Result.CREATED and len(advo.records) == 1, "a second Advoware party"
    b = await engine.sync_record(second, Trigger.SWEEP)
    (betnr,) = advo.records
    assert a.betnr == betnr and b.result is Result.HELD and espo.records[second]["syncStatus"] == "conflict"
    assert first in espo.records[second]["syncErrorMessage"]
    assert advo.calls["create"] == 1


async def test_a_mark_whose_record_has_no_intent_any_more_keeps_nobody_waiting(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.store import keys

    espo, advo, engine, redis = world.espo, world.advo, world.engine, world.redis
    first, second = espo.add(dict(PERSON_ESPO)), espo.add(copy.deepcopy(PERSON_ESPO))
    late_first_create(world, monkeypatch)  # never carried out
    await engine.sync_record(first, Trigger.WEBHOOK_CREATE)
    await redis.delete(keys.create_intent(first))  # e.g. expired; its marks left behind
    assert (await engine.sync_record(second, Trigger.WEBHOOK_CREATE)).result is Result.CREATED
    assert len(advo.records) == 1
    async for name in redis.scan_iter(match=keys.unresolved_create("*")):
        assert first not in await redis.smembers(name), "the stale mark was not dropped"


async def test_a_post_advoware_refused_keeps_nobody_waiting(world: World) -> None:
    from services.errors import ValidationError

    espo, advo, engine = world.espo, world.advo, world.engine
    first, second = espo.add(dict(PERSON_ESPO)), espo.add(copy.deepcopy(PERSON_ESPO))
    advo.fail_next["create"] = [ValidationError("refused", system="advoware", status_code=400)]
    assert (await engine.sync_record(first, Trigger.WEBHOOK_CREATE)).result is Result.PERMANENTLY_FAILED
    assert await engine.intents.get(first) is None  # nothing was created: nothing to wait for
    assert (await engine.sync_record(second, Trigger.WEBHOOK_CREATE)).result is Result.CREATED
