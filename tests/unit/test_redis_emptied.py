"""Redis came back empty (no snapshot): one-sided edits sync as one-sided, with no conflict notice.
With the record's fingerprint (services/sync/fingerprint.py) field by field, even when both sides
edited different fields; on an instance without the field because advowareLastSync recognises the
service's own last write on both sides (services/sync/planning.py `synced_until`, `advo_changed`,
`espo_changed`; issue 20)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.espocrm.datetime import format_espo_datetime
from services.sync import fingerprint
from services.sync.decide import Basis
from services.sync.model import Result, Trigger
from services.sync.planning import advo_changed, espo_changed, synced_until
from tests.support.runtime import World
from tests.unit.test_concurrent_edits import linked

BERLIN = ZoneInfo("Europe/Berlin")


pytestmark = pytest.mark.world(ESPOCRM_NOTIFY_USER_ID="u1")


@pytest.fixture(params=["fingerprint", "no_fingerprint_field"])
def prints(request: pytest.FixtureRequest) -> bool:
    """With the record's fingerprint, or on an EspoCRM instance without the field (the
    timestamp rules then decide)."""
    return bool(request.param == "fingerprint")


async def sync_a_crm_edit_to_advoware(
    world: World, *, put_waits: float = 0.0, then: float = 120.0, prints: bool = True
) -> tuple[str, int]:
    """A linked pair whose last sync wrote to Advoware (the service's own PUT is the newest
    Advoware stamp); `put_waits`: seconds the PUT waited (for an Advoware slot, a retry);
    `then`: seconds until the next edit; `prints`: the record keeps its fingerprint."""
    espo, advo, clock = world.espo, world.advo, world.clock
    rid, betnr = await linked(world)
    espo.edit(rid, titel="Prof.")
    original = advo.update_beteiligter

    async def slow_put(number: int, payload: dict[str, Any]) -> dict[str, Any]:
        clock.tick(put_waits)
        return await original(number, payload)

    advo.update_beteiligter = slow_put  # type: ignore[assignment,method-assign]  # a fake patched for this test
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.result is Result.UPDATED and advo.records[betnr]["titel"] == "Prof."
    advo.update_beteiligter = original  # type: ignore[method-assign]  # a fake patched for this test
    await world.redis.flushall()  # Redis restarted empty: no snapshot, no pending state
    assert fingerprint.read(espo.records[rid], betnr) is not None
    if not prints:
        del espo.records[rid][fingerprint.FIELD]
    clock.tick(then)
    return rid, betnr


@pytest.mark.parametrize("then", [120.0, 2.0])  # also right after the sync (within the tolerance)
async def test_a_crm_only_edit_after_redis_was_emptied_is_no_conflict(
    world: World, then: float, prints: bool
) -> None:
    espo, advo = world.espo, world.advo
    rid, betnr = await sync_a_crm_edit_to_advoware(world, then=then, prints=prints)
    espo.edit(rid, firstName="Käthe")
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.plan is not None and not out.plan.conflicts
    assert advo.records[betnr]["vorname"] == "Käthe" and advo.records[betnr]["titel"] == "Prof."
    assert not espo.notifications


async def test_an_advoware_only_edit_after_a_slow_sync_and_an_empty_redis_arrives(
    world: World, prints: bool
) -> None:
    """The last sync waited 45 s for its PUT (longer than the EspoCRM-side tolerance): its own
    EspoCRM write must not look like a CRM edit, or Advoware's edit would be reverted."""
    espo, advo = world.espo, world.advo
    rid, betnr = await sync_a_crm_edit_to_advoware(world, put_waits=45, prints=prints)
    advo.edit(betnr, vorname="Käthe")
    out = await world.engine.sync_record(rid, Trigger.SWEEP)
    assert out.plan is not None and not out.plan.conflicts
    assert espo.records[rid]["firstName"] == "Käthe" and advo.records[betnr]["vorname"] == "Käthe"
    assert not espo.notifications


async def test_edits_of_different_fields_on_both_sides_after_redis_was_emptied_are_no_conflict(
    world: World,
) -> None:
    """A person changes the first name in EspoCRM, staff the birth date in Advoware, and Redis
    lost the snapshot before the sync: per record both sides changed, so without the fingerprint
    every differing field was a conflict notice (the long chaos run's false notices)."""
    espo, advo = world.espo, world.advo
    rid, betnr = await sync_a_crm_edit_to_advoware(world)
    espo.edit(rid, firstName="Käthe")
    advo.edit(betnr, geburtsdatum="1971-04-30T00:00:00")
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.plan is not None and out.plan.basis is Basis.FINGERPRINT and not out.plan.conflicts
    assert advo.records[betnr]["vorname"] == "Käthe" and espo.records[rid]["geburtsdatum"] == "1971-04-30"
    assert advo.records[betnr]["titel"] == "Prof." and espo.records[rid]["titel"] == "Prof."
    assert not espo.notifications
    # The sync wrote a fresh fingerprint: once more, nothing is left to do.
    await world.redis.flushall()
    again = await world.engine.sync_record(rid, Trigger.SWEEP)
    assert again.plan is not None and again.plan.is_noop and not espo.notifications


async def test_the_same_field_edited_on_both_sides_after_redis_was_emptied_is_a_conflict(
    world: World,
) -> None:
    espo, advo = world.espo, world.advo
    rid, betnr = await sync_a_crm_edit_to_advoware(world)
    espo.edit(rid, firstName="Käthe")
    advo.edit(betnr, vorname="Katharina", geburtsdatum="1971-04-30T00:00:00")
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.plan is not None and out.plan.basis is Basis.FINGERPRINT
    assert [c.field for c in out.plan.conflicts] == ["first_name"]  # EspoCRM wins, a person is told
    assert advo.records[betnr]["vorname"] == "Käthe" and espo.records[rid]["geburtsdatum"] == "1971-04-30"
    assert any("Katharina" in m for _, m in espo.notifications)


async def test_a_fingerprint_of_another_pair_is_not_used(world: World) -> None:
    """A person typed another betnr into the record: its fingerprint describes the old pair."""
    espo = world.espo
    rid, betnr = await sync_a_crm_edit_to_advoware(world)
    assert fingerprint.read(espo.records[rid], betnr + 1) is None
    other = espo.records[rid][fingerprint.FIELD].replace(f'"b":{betnr}', f'"b":{betnr + 1}')
    espo.records[rid][fingerprint.FIELD] = other
    espo.edit(rid, firstName="Käthe")
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    assert out.plan is not None and out.plan.basis is Basis.FIRST_SYNC  # the time rules decide
    assert fingerprint.read(espo.records[rid], betnr) is not None  # and the sync wrote its own
    assert fingerprint.read({fingerprint.FIELD: "not json"}, betnr) is None
    assert fingerprint.read({fingerprint.FIELD: '{"v": 9, "b": 1, "f": {}}'}, 1) is None


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
