"""Claims per identity and per betnr (services/sync/claims.py), the betnr claim of the uniqueness
check (services/sync/linking.py) and the daily "one betnr, one record" check
(services/sync/link_audit.py), against fakeredis and the fakes."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from services.events import Emitted
from services.store import keys
from services.store.lease import force_release
from services.sync.claims import ClaimBusy, ClaimLost, Claims
from services.sync.link_audit import LinkAudit
from services.sync.status import status_report
from services.sync.sweep_runner import run_sweep
from tests.support.runtime import fake_world
from tests.unit.test_sweep_runner import factory


async def test_overlapping_identities_wait_for_each_other_and_disjoint_ones_do_not(redis: Any) -> None:
    claims = Claims(redis, 30, wait_seconds=0.2)
    async with claims.hold(["person:mueller|hans", "company:x"]):
        with pytest.raises(ClaimBusy):
            async with claims.hold(["person:mueller|hans"]):
                pass
        async with claims.hold(["person:meier|hans"]):  # another party: not held up
            pass
    async with claims.hold(["person:mueller|hans"]):  # released on exit
        pass


async def test_the_second_holder_gets_the_claim_when_the_first_lets_go(redis: Any) -> None:
    claims = Claims(redis, 30, wait_seconds=5)
    order: list[str] = []

    async def holder(name: str, work: float) -> None:
        async with claims.hold(["person:k"], [7]):
            order.append(f"{name} in")
            await asyncio.sleep(work)
            order.append(f"{name} out")

    await asyncio.gather(holder("a", 0.2), holder("b", 0))
    assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])


async def test_claims_are_released_when_the_work_raises(redis: Any) -> None:
    claims = Claims(redis, 30, wait_seconds=0.2)
    with pytest.raises(RuntimeError):
        async with claims.hold(["person:k"], [7]):
            raise RuntimeError("boom")
    assert await redis.get(keys.identity_claim("person:k")) is None
    assert await redis.get(keys.betnr_claim(7)) is None


async def test_a_claim_lost_while_held_stops_the_next_write(redis: Any) -> None:
    claims = Claims(redis, 0.3, wait_seconds=0.2)
    async with claims.hold(["person:k"]) as held:
        await held.check()
        await force_release(redis, keys.identity_claim("person:k"))  # e.g. expired in an outage
        for _ in range(100):  # until the renewal (every 0.1 s) notices
            if held.leases[0].lost:
                break
            await asyncio.sleep(0.05)
        with pytest.raises(ClaimLost):
            await held.check()


async def test_a_claim_another_record_holds_now_stops_the_write_before_the_renewal_notices(
    redis: Any,
) -> None:
    # The claim expired while this holder stalled (renewal runs only every third of the TTL) and
    # another record of the same party took it: the check before the POST must see that at once.
    claims = Claims(redis, 30, wait_seconds=0.2)
    async with claims.hold(["person:k"]) as held:
        await force_release(redis, keys.identity_claim("person:k"))
        async with claims.hold(["person:k"]):  # the other record's create, past its check
            assert not held.leases[0].lost  # the renewal has not run since
            with pytest.raises(ClaimLost):
                await held.check()


async def test_the_uniqueness_check_waits_for_a_create_linking_the_same_betnr() -> None:
    world = fake_world()
    linker = world.engine.linker
    held_elsewhere = Claims(world.redis, 30)
    async with held_elsewhere.hold(betnrs=[4711]):
        waiting = asyncio.create_task(linker.unique_link("r2", 4711))
        await asyncio.sleep(0.2)
        assert not waiting.done(), "asked while another record was linking 4711"
        world.espo.add({"id": "r1", "betnr": 4711})  # the create's write-back, before it lets go
    decision = await waiting
    assert decision.action.value == "hold" and decision.related == ("r1",)


async def test_relink_waits_for_a_create_linking_the_same_betnr() -> None:
    from services.errors import OperationError
    from services.ops.relink import relink

    world = fake_world()
    betnr = world.advo.add({"rechtsform": None, "vorname": "Ida", "name": "Link", "kommunikation": []})
    rid = world.espo.add({"beteiligterTyp": "Person", "firstName": "Ida", "lastName": "Link"})
    async with Claims(world.redis, 30).hold(betnrs=[betnr]):
        waiting = asyncio.create_task(relink(world.engine, rid, betnr))
        await asyncio.sleep(0.2)
        assert not waiting.done(), "relinked while a create was linking the same betnr"
        other = world.espo.add({"betnr": betnr})  # that create's write-back
    with pytest.raises(OperationError) as refused:
        await waiting
    assert refused.value.status == 409 and other in str(refused.value)


async def test_the_link_check_reports_a_betnr_held_by_two_records_once() -> None:
    world = fake_world(ESPOCRM_NOTIFY_USER_ID="u1")
    espo, clock = world.espo, world.clock
    a, b = espo.add({"betnr": 7, "lastName": "A"}), espo.add({"betnr": 7, "lastName": "B"})
    espo.add({"betnr": 8, "lastName": "C"})
    audit = LinkAudit(espo=espo, redis=world.redis, notifier=world.rt.notifier)
    assert await audit.run_if_due(clock.now) == {7: sorted([a, b])}
    assert {parent for parent, _ in espo.notifications} == {a, b}
    report = await status_report(espo, world.redis)
    assert report["link_audit"]["duplicates"] == {"7": sorted([a, b])}
    assert report["recent_duplicate_links"][0]["reason"] == f"betnr=7 records={','.join(sorted([a, b]))}"
    assert await audit.run_if_due(clock.tick(60)) is None  # once a day
    notes = len(espo.notifications)
    assert await audit.run_if_due(clock.now + timedelta(days=1, seconds=1)) == {7: sorted([a, b])}
    assert len(espo.notifications) == notes, "told once, not every day"


async def test_the_sweep_runs_the_link_check() -> None:
    world = fake_world(ESPOCRM_NOTIFY_USER_ID="u1")
    a, b = world.espo.add({"betnr": 9, "lastName": "A"}), world.espo.add({"betnr": 9, "lastName": "B"})

    async def emit(event: Emitted) -> None:
        pass

    await run_sweep(emit, runtime=factory(world.rt))
    audit = await LinkAudit(espo=world.espo, redis=world.redis, notifier=world.rt.notifier).last()
    assert audit is not None and audit["duplicates"] == {"9": sorted([a, b])}
