"""Failure scheduling over simulated 15-minute sweeps (the project's own Sweeper and engine, a
fake clock, in-memory fakes of both systems).

The outage reproduction: Advoware is down for two hours while people edit records. The
service's own failure writes (syncStatus, syncErrorMessage, syncRetryCount) carry a new
modifiedAt; before the fix the EspoCRM change poll took them for a person's edit and retried
every record at every sweep, burning all attempts (permanently_failed) long before the back-off
allowed a single retry.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.conditions import AlertCondition
from services.errors import AuthError, ConnectorOfflineError, UnavailableError, ValidationError
from services.sync.model import Result, Trigger
from services.sync.sweep import Sweeper
from tests.support.fakes import Clock, FakeAdvo, FakeEspo, fake_redis
from tests.support.runtime import World, fake_runtime
from tests.unit.test_engine import PERSON_ESPO

SWEEP_EVERY = timedelta(minutes=15)


pytestmark = pytest.mark.world(ESPOCRM_NOTIFY_USER_ID="u1")


async def sweep(world: World) -> dict[str, Result]:
    """One cron tick as the steps run it: collect, sync every emitted batch, commit."""
    sweeper: Sweeper = world.rt.sweeper()
    plan = await sweeper.collect(world.clock.now)
    results: dict[str, Result] = {}
    for trigger, ids in plan.batches(100):
        for out in await world.engine.sync_many(ids, trigger):
            results[out.record_id] = out.result
    await sweeper.commit(plan)
    return results


async def linked_records(world: World, n: int) -> list[str]:
    ids = []
    for i in range(n):
        rid = world.espo.add({**PERSON_ESPO, "lastName": f"Outage{i}"})
        out = await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
        assert out.result is Result.CREATED
        ids.append(rid)
    return ids


def advance(world: World, delta: timedelta = SWEEP_EVERY) -> None:
    world.clock.now += delta


async def test_two_hour_advoware_outage_parks_nothing_and_releases_at_once(world: World) -> None:
    espo, advo = world.espo, world.advo
    ids = await linked_records(world, 6)
    advance(world)
    await sweep(world)  # settle: everything clean, watermarks set

    advo.down = UnavailableError("connector offline", system="advoware", status_code=503)
    for rid in ids:  # people keep working; each edit's webhook runs a sync that fails
        espo.edit(rid, titel=f"Prof. {rid[-3:]}")
        await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)

    advo_calls_per_sweep = []
    for _ in range(8):  # two hours of 15-minute sweeps with Advoware down
        advance(world)
        before = sum(advo.calls.values())
        await sweep(world)
        advo_calls_per_sweep.append(sum(advo.calls.values()) - before)
    statuses = {espo.records[r]["syncStatus"] for r in ids}
    assert "permanently_failed" not in statuses, statuses
    # While the breaker is open: one cheap probe per sweep, no record sent to Advoware.
    assert all(n <= 1 for n in advo_calls_per_sweep), advo_calls_per_sweep
    assert max(int(espo.records[r].get("syncRetryCount") or 0) for r in ids) <= 8

    advo.down = None
    advance(world)
    await sweep(world)  # the probe answers: the waiting records are synced at once
    assert {espo.records[r]["syncStatus"] for r in ids} == {"clean"}
    for rid in ids:
        betnr = int(espo.records[rid]["betnr"])
        assert advo.records[betnr]["titel"] == f"Prof. {rid[-3:]}"


@pytest.mark.parametrize("advoware_edits", [False, True])
async def test_own_failure_write_is_not_a_persons_edit(world: World, advoware_edits: bool) -> None:
    """A record that fails on its own (5xx for that record only) is retried when its back-off
    is due and not before, however many sweeps pass in between - also when the Advoware change
    poll keeps finding it (edited in Advoware at every sweep)."""
    espo, advo = world.espo, world.advo
    ids = await linked_records(world, 3)
    bad, ok = ids[0], ids[1:]
    advance(world)
    await sweep(world)
    espo.edit(bad, titel="Dr. Fehler")
    betnr = int(espo.records[bad]["betnr"])
    original_put = advo.update_beteiligter

    async def put(number: int, payload: dict[str, Any]) -> dict[str, Any]:
        if number == betnr:
            raise UnavailableError("record locked on server", system="advoware", status_code=500)
        return await original_put(number, payload)

    advo.update_beteiligter = put  # type: ignore[assignment,method-assign]  # a fake patched for this test
    out = await world.engine.sync_record(bad, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.FAILED
    failed_at = world.clock.now
    attempts_at: list[timedelta] = []
    for _ in range(16):  # four hours of sweeps; the other records keep syncing fine
        advance(world)
        espo.edit(ok[0], titel=f"Dr. {world.clock.now.minute}")
        if advoware_edits:
            advo.edit(betnr, vorname=f"Hans-{world.clock.now.minute}")
        before = int(espo.records[bad].get("syncRetryCount") or 0)
        await sweep(world)
        if int(espo.records[bad].get("syncRetryCount") or 0) > before:
            attempts_at.append(world.clock.now - failed_at)
            failed_at = world.clock.now
    # Back-off 10 min, 20, 40, 80, 160: never retried before it was due.
    assert espo.records[bad]["syncStatus"] == "failed"
    assert len(attempts_at) <= 5, attempts_at
    for n, waited in enumerate(attempts_at, start=1):
        assert waited >= timedelta(minutes=10) * 2 ** (n - 1), (n, waited, attempts_at)


async def test_auth_failure_on_first_espocrm_read_is_handled(world: World) -> None:
    """A refused EspoCRM login on the first read never raises (a raise makes BullMQ retry it
    four times, enough to trip EspoCRM's failed-login lockout): the breaker opens and the
    record waits for the probe."""
    espo = world.espo
    ids = await linked_records(world, 2)
    espo.edit(ids[0], titel="Dr. Auth")
    espo.down = AuthError("login refused", system="espocrm", status_code=401)
    out = await world.engine.sync_record(ids[0], Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.WAITING
    calls = espo.calls["get"]
    out = await world.engine.sync_record(ids[1], Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.WAITING
    assert espo.calls["get"] == calls  # the open breaker sends nothing
    advance(world)
    await sweep(world)  # probe fails: still open, nothing else sent
    assert espo.calls["get"] == calls
    espo.down = None
    advance(world)
    await sweep(world)
    assert espo.records[ids[0]]["syncStatus"] == "clean"
    assert world.advo.records[int(espo.records[ids[0]]["betnr"])]["titel"] == "Dr. Auth"


async def test_validation_failure_is_parked_not_retried(world: World) -> None:
    espo, advo = world.espo, world.advo
    (rid,) = await linked_records(world, 1)
    espo.edit(rid, titel="Dr. Ungültig")
    advo.fail_next["update"] = [ValidationError("bad", system="advoware", status_code=400)]
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.PERMANENTLY_FAILED
    for _ in range(4):
        advance(world)
        results = await sweep(world)
        assert rid not in results


async def test_a_persons_later_edit_of_a_parked_record_is_found_by_the_sweep(world: World) -> None:
    """permanently_failed: its own failure write stays parked; a person's later CRM edit whose
    webhook never arrived (EspoCRM gave up, or it was taken for a redelivery) is synced by
    the sweep's EspoCRM poll, as the webhook would have done."""
    espo, advo = world.espo, world.advo
    (rid,) = await linked_records(world, 1)
    advance(world)
    await sweep(world)  # settle: watermarks set
    espo.edit(rid, titel="Dr. Ungültig")
    advo.fail_next["update"] = [ValidationError("bad", system="advoware", status_code=400)]
    assert (await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)).result is Result.PERMANENTLY_FAILED
    advance(world)
    assert rid not in await sweep(world)  # our own failure write is nobody's edit
    espo.edit(rid, titel="Dr. Korrigiert")  # no webhook
    advance(world)
    assert (await sweep(world))[rid] is Result.UPDATED
    betnr = int(espo.records[rid]["betnr"])
    assert advo.records[betnr]["titel"] == "Dr. Korrigiert" and espo.records[rid]["syncStatus"] == "clean"


def offline() -> ConnectorOfflineError:
    return ConnectorOfflineError(
        "POST Beteiligte not passed on", system="advoware", status_code=503, reason="nicht angemeldet"
    )


async def test_one_record_is_enough_to_open_the_breaker_and_be_released_at_once(
    world: World,
) -> None:
    """A person creates one client while Advoware answers "nicht angemeldet": one confirming
    probe opens the breaker, the record waits (no attempt, says so), and the first probe that
    answers releases it - not its back-off, not a 15-minute sweep."""
    espo, advo, rt = world.espo, world.advo, world.rt
    advo.down = offline()
    rid = espo.add({**PERSON_ESPO, "lastName": "Eilig"})
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
    assert out.result is Result.WAITING
    record = espo.records[rid]
    assert record["syncStatus"] == "pending_sync" and int(record.get("syncRetryCount") or 0) == 0
    assert record["syncErrorMessage"].startswith("Wartet auf Advoware")
    report = await rt.breakers.report()
    assert report["advoware"]["open"] and report["advoware"]["waiting"] == 1
    assert "oldest_waiting_since" in report["advoware"]

    advance(world, timedelta(minutes=1))
    assert (await rt.breakers.release()).blocked == ["advoware"]  # the minute's probe: still down
    advo.down = None
    advance(world, timedelta(minutes=1))
    release = await rt.breakers.release()
    assert release.blocked == [] and release.ids == [rid]
    (done,) = await world.engine.sync_many(release.ids, Trigger.RETRY_NOW)
    assert done.result is Result.CREATED
    assert espo.records[rid]["syncStatus"] == "clean" and not espo.records[rid]["syncErrorMessage"]
    assert (await rt.breakers.report())["advoware"] == {"open": False, "waiting": 0}


async def test_a_probe_that_answers_makes_it_the_records_own_failure(world: World) -> None:
    """A 503 for one record while the listing answers: the record's failure, with back-off."""
    espo, advo, rt = world.espo, world.advo, world.rt
    (rid,) = await linked_records(world, 1)
    espo.edit(rid, titel="Dr. Eins")
    advo.fail_next["update"] = [UnavailableError("busy", system="advoware", status_code=503)]
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.FAILED
    assert espo.records[rid]["syncStatus"] == "failed" and espo.records[rid]["syncRetryCount"] == 1
    assert await rt.breakers.open_states() == {}
    advance(world, timedelta(minutes=1))
    assert (await rt.breakers.release()).ids == []  # nothing held: it waits out its back-off


async def test_refused_data_opens_nothing_and_sends_no_probe(world: World) -> None:
    espo, advo = world.espo, world.advo
    (rid,) = await linked_records(world, 1)
    espo.edit(rid, titel="Dr. Ungültig")
    advo.fail_next["update"] = [ValidationError("bad", system="advoware", status_code=400)]
    lists = advo.calls["list"]
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.PERMANENTLY_FAILED
    assert advo.calls["list"] == lists and await world.rt.breakers.open_states() == {}


async def test_while_open_only_spaced_probes_are_sent(world: World) -> None:
    espo, advo, rt = world.espo, world.advo, world.rt
    ids = await linked_records(world, 2)
    advo.down = offline()
    espo.edit(ids[0], titel="Dr. A")
    assert (await world.engine.sync_record(ids[0], Trigger.WEBHOOK_UPDATE)).result is Result.WAITING
    calls = sum(advo.calls.values())
    espo.edit(ids[1], titel="Dr. B")  # a second edit: held without sending anything
    assert (await world.engine.sync_record(ids[1], Trigger.WEBHOOK_UPDATE)).result is Result.WAITING
    await rt.breakers.release()  # within 30 s of the confirming probe: no new probe
    assert sum(advo.calls.values()) == calls
    advance(world, timedelta(seconds=30))
    await rt.breakers.release()
    await rt.breakers.release()
    assert sum(advo.calls.values()) == calls + 1
    assert {espo.records[r]["syncRetryCount"] or 0 for r in ids} == {0}


async def test_released_oldest_first(world: World) -> None:
    rt = world.rt
    for rid, system in (("c", "advoware"), ("a", "espocrm"), ("b", "advoware"), ("a", "advoware")):
        await rt.breakers.hold([system], rid)
        advance(world, timedelta(seconds=5))
    assert (await rt.breakers.release()).ids == ["c", "a", "b"]


async def test_breaker_alerts_once_and_clears_on_close(world: World) -> None:
    from services.sync.breaker import CircuitBreakers, system_probes
    from services.sync.model import ENTITY

    seen: list[tuple[str, bool]] = []

    async def alert(condition: AlertCondition, detail: str, active: bool) -> None:
        seen.append((condition.name, active))

    advo = world.advo
    breakers = CircuitBreakers(
        world.redis,
        probes=system_probes(world.espo, advo, ENTITY),
        alert=alert,
        clock=lambda: world.clock.now,
    )
    advo.down = offline()
    assert await breakers.confirm(offline(), "a")
    advance(world, timedelta(minutes=1))
    assert await breakers.confirm(offline(), "b")  # already open: held, no second alert
    assert seen == [("advoware_unreachable", True)]
    advo.down = None
    assert (await breakers.release()).ids == ["a", "b"]
    assert seen[1:] == [("advoware_credentials", False), ("advoware_unreachable", False)]


async def test_refused_credentials_open_the_breaker_as_auth(world: World) -> None:
    rt, espo = world.rt, world.espo
    espo.down = AuthError("401", system="espocrm", status_code=401)
    assert await rt.breakers.confirm(espo.down, "x")
    assert (await rt.breakers.open_states())["espocrm"].kind == "auth"


async def test_health_reports_an_open_breaker_without_calling_the_system(world: World) -> None:
    from services.ops.health import FAIL, HealthDeps, run_checks
    from services.sync.breaker import BreakerStates

    advo, rt = world.advo, world.rt
    advo.down = offline()
    assert await rt.breakers.confirm(offline(), "r1")
    calls = sum(advo.calls.values())
    report = await run_checks(
        HealthDeps(
            redis=world.redis,
            espo=world.espo,
            advo=advo,
            notifier=rt.notifier,
            sweep_overdue=timedelta(hours=1),
            breakers=BreakerStates(world.redis).report,
        )
    )
    check = report.checks["advoware"]
    assert check.state == FAIL and check.detail["problem"] == "unreachable"
    assert check.detail["records_waiting"] == 1 and check.detail["breaker_open_since"]
    assert sum(advo.calls.values()) == calls


async def test_one_sweep_per_tick_across_instances() -> None:
    """Every instance's cron fires at each tick; one Redis claim lets exactly one of them sweep."""
    import asyncio

    redis = fake_redis()
    clock = Clock()
    instances = [fake_runtime(FakeEspo(clock), FakeAdvo(clock), redis, clock).sweeper() for _ in range(3)]
    for tick in ("202607011000", "202607011015"):
        claims = await asyncio.gather(*(s.claim_tick(tick) for s in instances))
        assert sorted(claims) == [False, False, True]
