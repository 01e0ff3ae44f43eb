"""Redis came back empty (no snapshot): one-sided edits sync as one-sided, with no conflict notice,
because advowareLastSync recognises the service's own last write on both sides
(services/sync/planning.py `synced_until`, `advo_changed`, `espo_changed`; issue 20)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.espocrm.datetime import format_espo_datetime
from services.sync.model import Result, Trigger
from services.sync.planning import advo_changed, espo_changed, synced_until
from tests.support.fakes import fake_env
from tests.unit.test_concurrent_edits import linked

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def env() -> dict[str, Any]:
    return fake_env(ESPOCRM_NOTIFY_USER_ID="u1")


async def sync_a_crm_edit_to_advoware(
    env: dict[str, Any], *, put_waits: float = 0.0, then: float = 120.0
) -> tuple[str, int]:
    """A linked pair whose last sync wrote to Advoware (the service's own PUT is the newest
    Advoware stamp); `put_waits`: seconds the PUT waited (for an Advoware slot, a retry);
    `then`: seconds until the next edit."""
    espo, advo, clock = env["espo"], env["advo"], env["clock"]
    rid, betnr = await linked(env)
    espo.edit(rid, titel="Prof.")
    original = advo.update_beteiligter

    async def slow_put(number: int, payload: dict[str, Any]) -> dict[str, Any]:
        clock.tick(put_waits)
        return await original(number, payload)

    advo.update_beteiligter = slow_put
    out = await env["engine"].sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.UPDATED and advo.records[betnr]["titel"] == "Prof."
    advo.update_beteiligter = original
    await env["redis"].flushall()  # Redis restarted empty: no snapshot, no pending state
    clock.tick(then)
    return rid, betnr


@pytest.mark.parametrize("then", [120.0, 2.0])  # also right after the sync (within the tolerance)
async def test_a_crm_only_edit_after_redis_was_emptied_is_no_conflict(
    env: dict[str, Any], then: float
) -> None:
    espo, advo = env["espo"], env["advo"]
    rid, betnr = await sync_a_crm_edit_to_advoware(env, then=then)
    espo.edit(rid, firstName="Käthe")
    out = await env["engine"].sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.plan is not None and not out.plan.conflicts
    assert advo.records[betnr]["vorname"] == "Käthe" and advo.records[betnr]["titel"] == "Prof."
    assert not espo.notifications


async def test_an_advoware_only_edit_after_a_slow_sync_and_an_empty_redis_arrives(
    env: dict[str, Any],
) -> None:
    """The last sync waited 45 s for its PUT (longer than the EspoCRM-side tolerance): its own
    EspoCRM write must not look like a CRM edit, or Advoware's edit would be reverted."""
    espo, advo = env["espo"], env["advo"]
    rid, betnr = await sync_a_crm_edit_to_advoware(env, put_waits=45)
    advo.edit(betnr, vorname="Käthe")
    out = await env["engine"].sync_record(rid, Trigger.SWEEP)
    assert out.plan is not None and not out.plan.conflicts
    assert espo.records[rid]["firstName"] == "Käthe" and advo.records[betnr]["vorname"] == "Käthe"
    assert not espo.notifications


def local(dt: datetime, fraction: str = "") -> str:
    return dt.astimezone(BERLIN).replace(tzinfo=None).isoformat(timespec="seconds") + fraction


def test_synced_until_is_never_before_advowares_stamp_of_our_own_write() -> None:
    now = datetime(2026, 7, 1, 10, 0, 0, tzinfo=UTC)
    assert synced_until(now, None, BERLIN) == now
    assert synced_until(now, {"geaendertAm": local(now - timedelta(hours=3))}, BERLIN) == now
    ahead = now + timedelta(seconds=90)  # Advoware's clock runs 90 s ahead of ours
    last = synced_until(now, {"geaendertAm": local(ahead)}, BERLIN)
    assert last == ahead
    espo = {"advowareLastSync": format_espo_datetime(last)}
    assert advo_changed(espo, {"geaendertAm": local(ahead)}, BERLIN) is False  # our own write
    assert advo_changed(espo, {"geaendertAm": local(ahead, ".608")}, BERLIN) is False  # same second
    assert advo_changed(espo, {"geaendertAm": local(ahead + timedelta(seconds=1))}, BERLIN) is True
    assert advo_changed({}, {"geaendertAm": local(ahead)}, BERLIN) is None


def test_espo_changed_asks_who_saved_last_then_the_time() -> None:
    last = "2026-07-01 10:00:00"
    soon, late = "2026-07-01 10:00:05", "2026-07-01 10:05:00"

    def changed(modified: str, by: str | None, status: str = "clean", own: str | None = "api") -> bool | None:
        record = {"advowareLastSync": last, "modifiedAt": modified, "modifiedById": by, "syncStatus": status}
        return espo_changed(record, own)

    assert changed(soon, "person") is True  # someone else saved after our last write
    assert changed(late, "api") is False  # our own sync's write, however long it took
    assert changed(soon, "api", "failed") is False and changed(late, "api", "failed") is True  # time rule
    assert changed(soon, "person", own=None) is False and changed(late, None) is True  # time rule
    assert espo_changed({"modifiedAt": soon}, "api") is None
