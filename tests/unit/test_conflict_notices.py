"""Conflict notices are idempotent per record, field and values (services/sync/update.py
`report_conflicts`, services/sync/stores.py `PendingConflicts`, services/sync/notify.py
`Notifier.notify_once`): a pending entry that outlived its report is not counted or told again,
a notice whose worker died right after claiming it is still posted, and the same conflict
found again later is told again (issue 20: the chaos run's 308 conflicts for 307 planned)."""

from __future__ import annotations

from typing import Any

import pytest

from services.store import keys
from services.sync.model import Trigger
from services.sync.notify import Notifier
from services.sync.stores import PendingConflicts
from tests.support.fakes import fake_env
from tests.unit.test_concurrent_edits import linked


@pytest.fixture
def env() -> dict[str, Any]:
    return fake_env(ESPOCRM_NOTIFY_USER_ID="u1")


class WorkerDied(Exception):
    pass


def told(env: dict[str, Any], value: str) -> int:
    return sum(value in message for _, message in env["espo"].notifications)


async def counted(env: dict[str, Any]) -> int:
    return int(await env["redis"].hget(keys.STATS, "conflicts") or 0)


async def same_field_conflict(env: dict[str, Any]) -> tuple[str, int]:
    rid, betnr = await linked(env)
    env["advo"].edit(betnr, name="Schulze")
    env["espo"].edit(rid, lastName="Meier", name="Jürgen Meier")
    return rid, betnr


def dies_once(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> None:
    original = getattr(cls, name)
    left = [1]

    async def once(self: Any, *args: Any, **kw: Any) -> Any:
        if left[0]:
            left[0] -= 1
            raise WorkerDied(name)
        return await original(self, *args, **kw)

    monkeypatch.setattr(cls, name, once)


async def test_a_pending_entry_that_outlived_its_notice_is_not_told_twice(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rid, _ = await same_field_conflict(env)
    dies_once(monkeypatch, PendingConflicts, "delete")  # the notice went out, the entry stayed
    with pytest.raises(WorkerDied):
        await env["engine"].sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert told(env, "Schulze") == 1 and await counted(env) == 1
    await env["engine"].sync_record(rid, Trigger.SWEEP)  # the next run finds the pending entry
    assert told(env, "Schulze") == 1 and await counted(env) == 1
    assert await env["redis"].get(keys.pending_conflicts(rid)) is None


async def test_a_worker_dying_right_after_claiming_the_notice_still_tells_the_person(
    env: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rid, _ = await same_field_conflict(env)
    dies_once(monkeypatch, Notifier, "_deliver")
    with pytest.raises(WorkerDied):
        await env["engine"].sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert told(env, "Schulze") == 0 and await counted(env) == 1
    await env["engine"].sync_record(rid, Trigger.SWEEP)
    assert told(env, "Schulze") == 0  # claimed already: the outbox has it
    assert await env["rt"].notifier.retry_pending() == 1  # the record's next sync or the ops watch
    assert told(env, "Schulze") == 1 and await counted(env) == 1


async def test_the_same_conflict_found_again_later_is_told_again(env: dict[str, Any]) -> None:
    rid, betnr = await same_field_conflict(env)
    await env["engine"].sync_record(rid, Trigger.WEBHOOK_UPDATE)
    env["espo"].edit(rid, lastName="Maier", name="Jürgen Maier")
    await env["engine"].sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert env["advo"].records[betnr]["name"] == "Maier"
    # A -> B -> A: both sides changed again, to the values of the first conflict.
    env["advo"].edit(betnr, name="Schulze")
    env["espo"].edit(rid, lastName="Meier", name="Jürgen Meier")
    await env["engine"].sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert env["advo"].records[betnr]["name"] == "Meier"
    assert told(env, "Schulze") == 2 and await counted(env) == 2


async def test_notify_once_claims_counts_and_queues_in_one_step(env: dict[str, Any]) -> None:
    notifier, redis = env["rt"].notifier, env["redis"]
    claims = [keys.conflict_notified("r1", "d1"), keys.conflict_notified("r1", "d2")]
    assert await notifier.notify_once(
        "r1", "Konflikt", claims=claims, ttl_seconds=60, counters={"conflicts": 2}
    )
    assert 0 < await redis.ttl(claims[1]) <= 60
    # Any claim taken: nothing at all (not the other claim, no count, no post).
    await redis.delete(claims[0])
    assert not await notifier.notify_once(
        "r1", "Konflikt", claims=claims, ttl_seconds=60, counters={"conflicts": 2}
    )
    assert await redis.get(claims[0]) is None
    assert (
        await redis.hget(keys.STATS, "conflicts") == "2"
        and await redis.hget(keys.STATS, "notifications") == "1"
    )
    assert len(env["espo"].notifications) == 1 and not await redis.hgetall(keys.NOTIFY_OUTBOX)
