"""Every decision of the per-record sync, against in-memory fakes and fakeredis."""

from __future__ import annotations

from typing import Any

import pytest

from services.errors import UnavailableError, ValidationError
from services.store import keys
from services.sync.intents import CreateIntent
from services.sync.model import Result, Trigger
from services.sync.snapshot import SnapshotStore
from tests.support.fakes import fake_env
from tests.support.records import espo_email, espo_phone

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


@pytest.fixture
def env() -> dict[str, Any]:
    return fake_env(ESPOCRM_NOTIFY_USER_ID="u1", SYNC_MAX_ATTEMPTS=3)


async def linked(env: dict[str, Any]) -> tuple[str, int]:
    """A record created through the engine: linked, clean, with a snapshot."""
    rid = env["espo"].add(dict(PERSON_ESPO))
    out = await env["engine"].sync_record(rid, Trigger.WEBHOOK_CREATE)
    assert out.result is Result.CREATED
    env["espo"].calls.clear()
    env["advo"].calls.clear()
    env["espo"].updates.clear()
    env["advo"].puts.clear()
    return rid, out.betnr


async def test_create_links_and_writes_betnr_back(env: dict[str, Any]) -> None:
    rid = env["espo"].add(dict(PERSON_ESPO))
    out = await env["engine"].sync_record(rid, Trigger.WEBHOOK_CREATE)
    assert out.result is Result.CREATED
    rec = env["espo"].records[rid]
    assert rec["betnr"] == out.betnr and rec["syncStatus"] == "clean" and rec["advowareLastSync"]
    advo = env["advo"].records[out.betnr]
    assert advo["vorname"] == "Jürgen" and advo["name"] == "Müßig"
    assert env["advo"].calls["create"] == 1
    assert await SnapshotStore(env["redis"]).get(rid) is not None


async def test_no_change_writes_nothing(env: dict[str, Any]) -> None:
    rid, _ = await linked(env)
    out = await env["engine"].sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.UNCHANGED
    assert env["espo"].calls["update"] == 0 and env["advo"].calls["update"] == 0


async def test_espocrm_edit_is_one_advoware_write_and_no_echo(env: dict[str, Any]) -> None:
    rid, betnr = await linked(env)
    env["advo"].records[betnr]["zusatz"] = "c/o Kanzlei"  # unmapped: must survive the PUT
    env["espo"].edit(rid, lastName="Meier", name="Jürgen Meier")
    out = await env["engine"].sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.UPDATED and out.plan is not None and out.plan.to_advo == {"last_name"}
    assert env["advo"].calls["update"] == 1
    assert env["advo"].records[betnr]["name"] == "Meier"
    assert env["advo"].records[betnr]["zusatz"] == "c/o Kanzlei"
    # EspoCRM only got sync metadata.
    data_keys = {k for _, d in env["espo"].updates for k in d}
    assert data_keys <= {
        "syncStatus",
        "advowareLastSync",
        "syncErrorMessage",
        "syncRetryCount",
        "syncFingerprint",
    }
    # The echo: the poller / a redelivery looks again and finds nothing to do.
    env["espo"].updates.clear()
    again = await env["engine"].sync_record(rid, Trigger.SWEEP)
    assert again.result is Result.UNCHANGED and env["advo"].calls["update"] == 1 and not env["espo"].updates


async def test_advoware_edit_reaches_espocrm(env: dict[str, Any]) -> None:
    rid, betnr = await linked(env)
    env["advo"].edit(betnr, titel="Prof. Dr.")
    out = await env["engine"].sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.UPDATED and out.plan is not None and out.plan.to_espo == {"title"}
    assert env["espo"].records[rid]["titel"] == "Prof. Dr."
    assert env["advo"].calls["update"] == 0


async def test_both_sides_different_fields_keep_both(env: dict[str, Any]) -> None:
    rid, betnr = await linked(env)
    env["advo"].edit(betnr, titel="Prof. Dr.")
    env["espo"].edit(rid, lastName="Meier", name="Jürgen Meier")
    await env["engine"].sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert (
        env["espo"].records[rid]["titel"] == "Prof. Dr." and env["espo"].records[rid]["lastName"] == "Meier"
    )
    assert (
        env["advo"].records[betnr]["titel"] == "Prof. Dr." and env["advo"].records[betnr]["name"] == "Meier"
    )
    assert not env["espo"].notifications


async def test_same_field_conflict_espocrm_wins_and_names_overwritten_value(env: dict[str, Any]) -> None:
    rid, betnr = await linked(env)
    env["advo"].edit(betnr, name="Schulze")
    env["espo"].edit(rid, lastName="Meier", name="Jürgen Meier")
    out = await env["engine"].sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.plan is not None and [c.field for c in out.plan.conflicts] == ["last_name"]
    assert env["advo"].records[betnr]["name"] == "Meier"
    assert env["espo"].records[rid]["lastName"] == "Meier"
    assert any("Schulze" in msg for _, msg in env["espo"].notifications)


async def test_advoware_404_marks_deleted_keeps_record_and_notifies(env: dict[str, Any]) -> None:
    rid, betnr = await linked(env)
    del env["advo"].records[betnr]
    out = await env["engine"].sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.DELETED_IN_ADVOWARE
    rec = env["espo"].records[rid]
    assert rec["syncStatus"] == "deleted_in_advoware" and rec["advowareDeletedAt"]
    assert env["espo"].notifications
    # Parked: the sweep does not touch it again.
    assert (await env["engine"].sync_record(rid, Trigger.SWEEP)).result is Result.SKIPPED


async def test_espocrm_delete_never_deletes_in_advoware(env: dict[str, Any]) -> None:
    rid, betnr = await linked(env)
    del env["espo"].records[rid]
    out = await env["engine"].handle_espo_delete(rid)
    assert out.result is Result.UNLINKED and out.betnr == betnr
    assert betnr in env["advo"].records
    # The pair is gone with the record, and so are the service's copies of it (forget ran;
    # tests/unit/test_restore_forget.py checks every key); a person is told.
    assert not await env["redis"].exists(keys.snapshot(rid), keys.unlinked(rid), keys.betnr_index(betnr))
    assert env["espo"].notifications


async def test_transient_failure_records_failed_then_permanent(env: dict[str, Any]) -> None:
    rid, _betnr = await linked(env)
    env["espo"].edit(rid, lastName="Meier", name="Jürgen Meier")
    for attempt in (1, 2):
        env["clock"].tick(6 * 3600)  # the back-off is due
        env["advo"].fail_next["get"] = [UnavailableError("down", system="advoware", status_code=503)]
        out = await env["engine"].sync_record(rid, Trigger.SWEEP)
        assert out.result is Result.FAILED
        rec = env["espo"].records[rid]
        assert rec["syncStatus"] == "failed" and rec["syncRetryCount"] == attempt
        assert "503" in rec["syncErrorMessage"]
    env["clock"].tick(6 * 3600)
    env["advo"].fail_next["get"] = [UnavailableError("down", system="advoware", status_code=503)]
    out = await env["engine"].sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.PERMANENTLY_FAILED
    assert env["espo"].records[rid]["syncStatus"] == "permanently_failed" and env["espo"].notifications


async def test_failed_record_recovers_and_resets_counter(env: dict[str, Any]) -> None:
    rid, betnr = await linked(env)
    env["espo"].edit(rid, lastName="Meier", name="Jürgen Meier")
    env["advo"].fail_next["update"] = [UnavailableError("down", system="advoware", status_code=503)]
    assert (await env["engine"].sync_record(rid, Trigger.SWEEP)).result is Result.FAILED
    assert (await env["engine"].sync_record(rid, Trigger.SWEEP)).result is Result.SKIPPED  # back-off
    env["clock"].tick(600)
    out = await env["engine"].sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.UPDATED
    assert env["espo"].records[rid]["syncRetryCount"] == 0 and env["advo"].records[betnr]["name"] == "Meier"


async def test_validation_error_fails_fast_with_reason(env: dict[str, Any]) -> None:
    rid = env["espo"].add(dict(PERSON_ESPO))
    env["advo"].fail_next["create"] = [
        ValidationError("refused", system="advoware", status_code=400, reason="Name ist ein Pflichtfeld")
    ]
    out = await env["engine"].sync_record(rid, Trigger.WEBHOOK_CREATE)
    assert out.result is Result.PERMANENTLY_FAILED
    rec = env["espo"].records[rid]
    assert rec["syncStatus"] == "permanently_failed" and "Pflichtfeld" in rec["syncErrorMessage"]


async def test_create_after_crash_before_write_back_does_not_duplicate(env: dict[str, Any]) -> None:
    rid = env["espo"].add(dict(PERSON_ESPO))
    original_update = env["espo"].update

    async def write_back_fails(
        entity: str, record_id: str, data: dict[str, Any], **kw: Any
    ) -> dict[str, Any]:
        if "betnr" in data:  # the worker dies right after Advoware answered the POST
            raise UnavailableError("down", system="espocrm", status_code=503)
        return await original_update(entity, record_id, data, **kw)

    env["espo"].update = write_back_fails
    out = await env["engine"].sync_record(rid, Trigger.WEBHOOK_CREATE)
    assert out.result is Result.FAILED
    assert env["advo"].calls["create"] == 1
    intent = await env["engine"].intents.get(rid)
    assert intent is not None and intent.betnr is not None
    env["espo"].update = original_update
    env["clock"].tick(600)  # the back-off is due
    out = await env["engine"].sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.CREATED and out.betnr == intent.betnr
    assert env["advo"].calls["create"] == 1 and len(env["advo"].records) == 1
    assert await env["engine"].intents.get(rid) is None


async def test_create_after_lost_post_answer_finds_the_record(env: dict[str, Any]) -> None:
    rid = env["espo"].add(dict(PERSON_ESPO))
    env["advo"].lose_create_answer = UnavailableError("timeout", system="advoware")
    out = await env["engine"].sync_record(rid, Trigger.WEBHOOK_CREATE)
    assert out.result is Result.FAILED
    assert len(env["advo"].records) == 1
    env["clock"].tick(600)  # the back-off is due
    out = await env["engine"].sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.CREATED
    assert env["advo"].calls["create"] == 1 and len(env["advo"].records) == 1
    assert env["espo"].records[rid]["betnr"] == next(iter(env["advo"].records))


async def test_create_intent_without_record_creates_again(env: dict[str, Any]) -> None:
    rid = env["espo"].add(dict(PERSON_ESPO))
    await env["engine"].intents.put(CreateIntent(rid, started_at=env["clock"].now.isoformat()))
    out = await env["engine"].sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.CREATED and env["advo"].calls["create"] == 1


async def test_stale_lock_of_a_dead_worker_is_recovered(env: dict[str, Any]) -> None:
    rid, _ = await linked(env)
    env["espo"].records[rid]["syncStatus"] = "syncing"  # the dead worker's mirror
    # The dead worker's lock with a short TTL that has run out.
    await env["redis"].set(keys.record_lock(rid), "dead-worker", px=1)
    import asyncio

    await asyncio.sleep(0.01)
    out = await env["engine"].sync_record(rid, Trigger.SWEEP)
    assert out.result is Result.UNCHANGED and env["espo"].records[rid]["syncStatus"] == "clean"


async def test_locked_record_is_coalesced_not_dropped(env: dict[str, Any]) -> None:
    rid, _betnr = await linked(env)
    await env["redis"].set(keys.record_lock(rid), "other-worker", px=60_000)
    out = await env["engine"].sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.LOCKED
    assert await env["redis"].get(keys.record_again(rid)) == "1"
    # Only the owner may release.
    assert not await env["engine"].locks.release(rid, "not-the-owner")
    assert await env["redis"].get(keys.record_lock(rid)) == "other-worker"


async def test_holder_runs_again_for_events_that_came_in(env: dict[str, Any]) -> None:
    rid, betnr = await linked(env)
    engine = env["engine"]
    original = engine._sync_locked
    runs = {"n": 0}

    async def sync_and_meanwhile_edit(record_id: str, trigger: Trigger, *rest: Any):
        runs["n"] += 1
        result = await original(record_id, trigger, *rest)
        if runs["n"] == 1:  # an edit + its event arrive while we hold the lock
            env["espo"].edit(rid, lastName="Neu", name="Jürgen Neu")
            assert (await engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)).result is Result.LOCKED
        return result

    engine._sync_locked = sync_and_meanwhile_edit
    await engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert runs["n"] == 2 and env["advo"].records[betnr]["name"] == "Neu"


async def test_no_snapshot_advoware_newer_wins(env: dict[str, Any]) -> None:
    rid, betnr = await linked(env)
    await env["redis"].flushall()  # Redis emptied: no snapshot
    del env["espo"].records[rid]["syncFingerprint"]  # an instance without the field: the time rules
    env["clock"].tick(120)
    env["advo"].edit(betnr, titel="Prof. Dr.")
    out = await env["engine"].sync_record(rid, Trigger.SWEEP)
    assert out.plan is not None and out.plan.basis.value == "first_sync"
    assert env["espo"].records[rid]["titel"] == "Prof. Dr." and not out.plan.conflicts
    assert await SnapshotStore(env["redis"]).get(rid) is not None


@pytest.mark.parametrize("prints", [True, False])
async def test_no_snapshot_both_changed_is_conflict_espocrm_wins(env: dict[str, Any], prints: bool) -> None:
    rid, betnr = await linked(env)
    await env["redis"].flushall()
    if not prints:
        del env["espo"].records[rid]["syncFingerprint"]
    env["clock"].tick(120)
    env["advo"].edit(betnr, titel="Prof. Dr.")
    env["espo"].edit(rid, titel="Dr. med.")
    out = await env["engine"].sync_record(rid, Trigger.SWEEP)
    assert out.plan is not None and [c.field for c in out.plan.conflicts] == ["title"]
    assert env["advo"].records[betnr]["titel"] == "Dr. med."
    assert any("Prof. Dr." in m for _, m in env["espo"].notifications)


async def test_daily_check_writes_only_last_sync_metadata(env: dict[str, Any]) -> None:
    rid, _ = await linked(env)
    out = await env["engine"].sync_record(rid, Trigger.DAILY_CHECK)
    assert out.result is Result.UNCHANGED and env["advo"].calls["update"] == 0
    assert [set(d) for _, d in env["espo"].updates] == [
        {"syncStatus", "advowareLastSync", "syncErrorMessage", "syncRetryCount", "syncFingerprint"}
    ]


async def test_auth_failure_never_parks_records_as_permanently_failed(env: dict[str, Any]) -> None:
    from services.errors import AuthError

    rid, _ = await linked(env)
    env["advo"].down = AuthError("refused", system="advoware", status_code=401)
    out = await env["engine"].sync_record(rid, Trigger.SWEEP)
    # The probe is refused too: the breaker opens, the record waits, no attempt counted.
    assert out.result is Result.WAITING
    assert env["espo"].records[rid]["syncRetryCount"] == 0
    for _ in range(5):  # more than max_attempts (3): the open breaker sends nothing
        env["clock"].tick(6 * 3600)
        out = await env["engine"].sync_record(rid, Trigger.SWEEP)
        assert out.result is Result.WAITING
    assert env["advo"].calls["get"] == 1
    assert env["espo"].records[rid]["syncStatus"] == "pending_sync"
    assert env["espo"].records[rid]["syncErrorMessage"].startswith("Wartet auf Advoware")


async def test_events_arriving_during_a_rerun_are_still_under_the_lock(env: dict[str, Any]) -> None:
    rid, _ = await linked(env)
    engine = env["engine"]
    original = engine._sync_locked
    holders: list[str | None] = []

    async def observe(record_id: str, trigger: Trigger, *rest: Any):
        holders.append(await engine.locks.holder(record_id))
        if len(holders) < 3:
            await engine.locks.mark_again(record_id)  # another event arrives meanwhile
        return await original(record_id, trigger, *rest)

    engine._sync_locked = observe
    await engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert len(holders) == 3 and all(h is not None for h in holders)
