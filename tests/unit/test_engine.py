"""Every decision of the per-record sync, against in-memory fakes and fakeredis."""

from __future__ import annotations

from typing import Any

import pytest

from services.errors import UnavailableError, ValidationError
from services.store import keys
from services.sync.intents import CreateIntent
from services.sync.model import Result, Trigger
from services.sync.snapshot import SnapshotStore
from tests.support.records import espo_email, espo_phone
from tests.support.runtime import World

PERSON_ESPO: dict[str, Any] = {
    "beteiligterTyp": "Person",
    "salutationName": "Mrs.",
    "firstName": "Jürgen",
    "lastName": "Müßig",
    "name": "Jürgen Müßig",
    "titel": "Dr.",
    "geburtsdatum": "1970-03-29",
    "emailAddress": "j.muessig@example.de",
    "emailAddressData": [espo_email("j.muessig@example.de")],
    "phoneNumber": "+49 30 1234567",
    "phoneNumberData": [espo_phone("+49 30 1234567")],
}


pytestmark = pytest.mark.world(ESPOCRM_NOTIFY_USER_ID="u1", SYNC_MAX_ATTEMPTS=3)


async def linked(world: World) -> tuple[str, int]:
    """A record created through the engine: linked, clean, with a snapshot."""
    rid = world.espo.add(dict(PERSON_ESPO))
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
    assert out.result is Result.CREATED
    world.espo.calls.clear()
    world.advo.calls.clear()
    world.espo.updates.clear()
    world.advo.puts.clear()
    assert out.betnr is not None
    return rid, out.betnr


async def test_create_links_and_writes_betnr_back(world: World) -> None:
    rid = world.espo.add(dict(PERSON_ESPO))
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
    assert out.result is Result.CREATED
    rec = world.espo.records[rid]
    assert rec["betnr"] == out.betnr and rec["syncStatus"] == "clean" and rec["advowareLastSync"]
    advo = world.advo.records[out.betnr]
    assert advo["vorname"] == "Jürgen" and advo["name"] == "Müßig"
    assert world.advo.calls["create"] == 1
    assert await SnapshotStore(world.redis).get(rid) is not None


async def test_no_change_writes_nothing(world: World) -> None:
    rid, _ = await linked(world)
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.UNCHANGED
    assert world.espo.calls["update"] == 0 and world.advo.calls["update"] == 0


async def test_espocrm_edit_is_one_advoware_write_and_no_echo(world: World) -> None:
    rid, betnr = await linked(world)
    world.advo.records[betnr]["zusatz"] = "c/o Kanzlei"  # unmapped: must survive the PUT
    world.espo.edit(rid, lastName="Meier", name="Jürgen Meier")
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.UPDATED and out.plan is not None and out.plan.to_advo == {"last_name"}
    assert world.advo.calls["update"] == 1
    assert world.advo.records[betnr]["name"] == "Meier"
    assert world.advo.records[betnr]["zusatz"] == "c/o Kanzlei"
    # EspoCRM only got sync metadata.
    data_keys = {k for _, d in world.espo.updates for k in d}
    assert data_keys <= {
        "syncStatus",
        "advowareLastSync",
        "syncErrorMessage",
        "syncRetryCount",
        "syncFingerprint",
    }
    # The echo: the poller / a redelivery looks again and finds nothing to do.
    world.espo.updates.clear()
    again = await world.engine.sync_record(rid, Trigger.SWEEP)
    assert again.result is Result.UNCHANGED and world.advo.calls["update"] == 1 and not world.espo.updates


async def test_advoware_edit_reaches_espocrm(world: World) -> None:
    rid, betnr = await linked(world)
    world.advo.edit(betnr, titel="Prof. Dr.")
    out = await world.engine.sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.UPDATED and out.plan is not None and out.plan.to_espo == {"title"}
    assert world.espo.records[rid]["titel"] == "Prof. Dr."
    assert world.advo.calls["update"] == 0


async def test_both_sides_different_fields_keep_both(world: World) -> None:
    rid, betnr = await linked(world)
    world.advo.edit(betnr, titel="Prof. Dr.")
    world.espo.edit(rid, lastName="Meier", name="Jürgen Meier")
    await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert world.espo.records[rid]["titel"] == "Prof. Dr." and world.espo.records[rid]["lastName"] == "Meier"
    assert world.advo.records[betnr]["titel"] == "Prof. Dr." and world.advo.records[betnr]["name"] == "Meier"
    assert not world.espo.notifications


async def test_same_field_conflict_espocrm_wins_and_names_overwritten_value(world: World) -> None:
    rid, betnr = await linked(world)
    world.advo.edit(betnr, name="Schulze")
    world.espo.edit(rid, lastName="Meier", name="Jürgen Meier")
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.plan is not None and [c.field for c in out.plan.conflicts] == ["last_name"]
    assert world.advo.records[betnr]["name"] == "Meier"
    assert world.espo.records[rid]["lastName"] == "Meier"
    assert any("Schulze" in msg for _, msg in world.espo.notifications)


async def test_advoware_404_marks_deleted_keeps_record_and_notifies(world: World) -> None:
    rid, betnr = await linked(world)
    del world.advo.records[betnr]
    out = await world.engine.sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.DELETED_IN_ADVOWARE
    rec = world.espo.records[rid]
    assert rec["syncStatus"] == "deleted_in_advoware" and rec["advowareDeletedAt"]
    assert world.espo.notifications
    # Parked: the sweep does not touch it again.
    assert (await world.engine.sync_record(rid, Trigger.SWEEP)).result is Result.SKIPPED


async def test_espocrm_delete_never_deletes_in_advoware(world: World) -> None:
    rid, betnr = await linked(world)
    del world.espo.records[rid]
    out = await world.engine.handle_espo_delete(rid)
    assert out.result is Result.UNLINKED and out.betnr == betnr
    assert betnr in world.advo.records
    # The pair is gone with the record, and so are the service's copies of it (forget ran;
    # tests/unit/test_restore_forget.py checks every key); a person is told.
    assert not await world.redis.exists(keys.snapshot(rid), keys.unlinked(rid), keys.betnr_index(betnr))
    assert world.espo.notifications


async def test_transient_failure_records_failed_then_permanent(world: World) -> None:
    rid, _betnr = await linked(world)
    world.espo.edit(rid, lastName="Meier", name="Jürgen Meier")
    for attempt in (1, 2):
        world.clock.tick(6 * 3600)  # the back-off is due
        world.advo.fail_next["get"] = [UnavailableError("down", system="advoware", status_code=503)]
        out = await world.engine.sync_record(rid, Trigger.SWEEP)
        assert out.result is Result.FAILED
        rec = world.espo.records[rid]
        assert rec["syncStatus"] == "failed" and rec["syncRetryCount"] == attempt
        assert "503" in rec["syncErrorMessage"]
    world.clock.tick(6 * 3600)
    world.advo.fail_next["get"] = [UnavailableError("down", system="advoware", status_code=503)]
    out = await world.engine.sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.PERMANENTLY_FAILED
    assert world.espo.records[rid]["syncStatus"] == "permanently_failed" and world.espo.notifications


async def test_failed_record_recovers_and_resets_counter(world: World) -> None:
    rid, betnr = await linked(world)
    world.espo.edit(rid, lastName="Meier", name="Jürgen Meier")
    world.advo.fail_next["update"] = [UnavailableError("down", system="advoware", status_code=503)]
    assert (await world.engine.sync_record(rid, Trigger.SWEEP)).result is Result.FAILED
    assert (await world.engine.sync_record(rid, Trigger.SWEEP)).result is Result.SKIPPED  # back-off
    world.clock.tick(600)
    out = await world.engine.sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.UPDATED
    assert world.espo.records[rid]["syncRetryCount"] == 0 and world.advo.records[betnr]["name"] == "Meier"


async def test_validation_error_fails_fast_with_reason(world: World) -> None:
    rid = world.espo.add(dict(PERSON_ESPO))
    world.advo.fail_next["create"] = [
        ValidationError("refused", system="advoware", status_code=400, reason="Name ist ein Pflichtfeld")
    ]
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
    assert out.result is Result.PERMANENTLY_FAILED
    rec = world.espo.records[rid]
    assert rec["syncStatus"] == "permanently_failed" and "Pflichtfeld" in rec["syncErrorMessage"]


async def test_create_after_crash_before_write_back_does_not_duplicate(world: World) -> None:
    rid = world.espo.add(dict(PERSON_ESPO))
    original_update = world.espo.update

    async def write_back_fails(
        entity: str, record_id: str, data: dict[str, Any], **kw: Any
    ) -> dict[str, Any]:
        if "betnr" in data:  # the worker dies right after Advoware answered the POST
            raise UnavailableError("down", system="espocrm", status_code=503)
        return await original_update(entity, record_id, data, **kw)

    world.espo.update = write_back_fails  # type: ignore[method-assign]  # a fake patched for this test
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
    assert out.result is Result.FAILED
    assert world.advo.calls["create"] == 1
    intent = await world.engine.intents.get(rid)
    assert intent is not None and intent.betnr is not None
    world.espo.update = original_update  # type: ignore[method-assign]  # a fake patched for this test
    world.clock.tick(600)  # the back-off is due
    out = await world.engine.sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.CREATED and out.betnr == intent.betnr
    assert world.advo.calls["create"] == 1 and len(world.advo.records) == 1
    assert await world.engine.intents.get(rid) is None


async def test_create_after_lost_post_answer_finds_the_record(world: World) -> None:
    rid = world.espo.add(dict(PERSON_ESPO))
    world.advo.lose_create_answer = UnavailableError("timeout", system="advoware")
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
    assert out.result is Result.FAILED
    assert len(world.advo.records) == 1
    world.clock.tick(600)  # the back-off is due
    out = await world.engine.sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.CREATED
    assert world.advo.calls["create"] == 1 and len(world.advo.records) == 1
    assert world.espo.records[rid]["betnr"] == next(iter(world.advo.records))


async def test_create_intent_without_record_creates_again(world: World) -> None:
    rid = world.espo.add(dict(PERSON_ESPO))
    await world.engine.intents.put(CreateIntent(rid, started_at=world.clock.now.isoformat()))
    out = await world.engine.sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.CREATED and world.advo.calls["create"] == 1


async def test_stale_lock_of_a_dead_worker_is_recovered(world: World) -> None:
    rid, _ = await linked(world)
    world.espo.records[rid]["syncStatus"] = "syncing"  # the dead worker's mirror
    # The dead worker's lock with a short TTL that has run out.
    await world.redis.set(keys.record_lock(rid), "dead-worker", px=1)
    import asyncio

    await asyncio.sleep(0.01)
    out = await world.engine.sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.UNCHANGED and world.espo.records[rid]["syncStatus"] == "clean"


async def test_locked_record_is_coalesced_not_dropped(world: World) -> None:
    rid, _betnr = await linked(world)
    await world.redis.set(keys.record_lock(rid), "other-worker", px=60_000)
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.LOCKED
    assert await world.redis.get(keys.record_again(rid)) == "1"
    # Only the owner may release.
    assert not await world.engine.locks.release(rid, "not-the-owner")
    assert await world.redis.get(keys.record_lock(rid)) == "other-worker"


async def test_holder_runs_again_for_events_that_came_in(world: World) -> None:
    rid, betnr = await linked(world)
    engine = world.engine
    original = engine._sync_locked
    runs = {"n": 0}

    async def sync_and_meanwhile_edit(record_id: str, trigger: Trigger, *rest: Any):
        runs["n"] += 1
        result = await original(record_id, trigger, *rest)
        if runs["n"] == 1:  # an edit + its event arrive while we hold the lock
            world.espo.edit(rid, lastName="Neu", name="Jürgen Neu")
            assert (await engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)).result is Result.LOCKED
        return result

    engine._sync_locked = sync_and_meanwhile_edit  # type: ignore[assignment,method-assign]  # a fake patched for this test
    await engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert runs["n"] == 2 and world.advo.records[betnr]["name"] == "Neu"


async def test_no_snapshot_advoware_newer_wins(world: World) -> None:
    rid, betnr = await linked(world)
    await world.redis.flushall()  # Redis emptied: no snapshot
    del world.espo.records[rid]["syncFingerprint"]  # an instance without the field: the time rules
    world.clock.tick(120)
    world.advo.edit(betnr, titel="Prof. Dr.")
    out = await world.engine.sync_record(rid, Trigger.SWEEP)
    assert out.plan is not None and out.plan.basis.value == "first_sync"
    assert world.espo.records[rid]["titel"] == "Prof. Dr." and not out.plan.conflicts
    assert await SnapshotStore(world.redis).get(rid) is not None


@pytest.mark.parametrize("prints", [True, False])
async def test_no_snapshot_both_changed_is_conflict_espocrm_wins(world: World, prints: bool) -> None:
    rid, betnr = await linked(world)
    await world.redis.flushall()
    if not prints:
        del world.espo.records[rid]["syncFingerprint"]
    world.clock.tick(120)
    world.advo.edit(betnr, titel="Prof. Dr.")
    world.espo.edit(rid, titel="Dr. med.")
    out = await world.engine.sync_record(rid, Trigger.SWEEP)
    assert out.plan is not None and [c.field for c in out.plan.conflicts] == ["title"]
    assert world.advo.records[betnr]["titel"] == "Dr. med."
    assert any("Prof. Dr." in m for _, m in world.espo.notifications)


async def test_daily_check_writes_only_last_sync_metadata(world: World) -> None:
    rid, _ = await linked(world)
    out = await world.engine.sync_record(rid, Trigger.DAILY_CHECK)
    assert out.result is Result.UNCHANGED and world.advo.calls["update"] == 0
    assert [set(d) for _, d in world.espo.updates] == [
        {"syncStatus", "advowareLastSync", "syncErrorMessage", "syncRetryCount", "syncFingerprint"}
    ]


async def test_auth_failure_never_parks_records_as_permanently_failed(world: World) -> None:
    from services.errors import AuthError

    rid, _ = await linked(world)
    world.advo.down = AuthError("refused", system="advoware", status_code=401)
    out = await world.engine.sync_record(rid, Trigger.SWEEP)
    # The probe is refused too: the breaker opens, the record waits, no attempt counted.
    assert out.result is Result.WAITING
    assert world.espo.records[rid]["syncRetryCount"] == 0
    for _ in range(5):  # more than max_attempts (3): the open breaker sends nothing
        world.clock.tick(6 * 3600)
        out = await world.engine.sync_record(rid, Trigger.SWEEP)
        assert out.result is Result.WAITING
    assert world.advo.calls["get"] == 1
    assert world.espo.records[rid]["syncStatus"] == "pending_sync"
    assert world.espo.records[rid]["syncErrorMessage"].startswith("Wartet auf Advoware")


async def test_events_arriving_during_a_rerun_are_still_under_the_lock(world: World) -> None:
    rid, _ = await linked(world)
    engine = world.engine
    original = engine._sync_locked
    holders: list[str | None] = []

    async def observe(record_id: str, trigger: Trigger, *rest: Any):
        holders.append(await engine.locks.holder(record_id))
        if len(holders) < 3:
            await engine.locks.mark_again(record_id)  # another event arrives meanwhile
        return await original(record_id, trigger, *rest)

    engine._sync_locked = observe  # type: ignore[assignment,method-assign]  # a fake patched for this test
    await engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert len(holders) == 3 and all(h is not None for h in holders)
