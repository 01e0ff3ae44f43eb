"""The operator's console's ops functions (services/ops/console.py) on the fakes' world: the
records that need a person with reason, since and actions; recent conflicts; exclude / include;
the held deletions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from services.errors import OperationError
from services.ops.console import (
    actions_for,
    deletions,
    deletions_request,
    exclude_request,
    needs_person,
    recent_conflicts,
    set_excluded,
)
from services.sync.model import Trigger
from tests.support.runtime import World
from tests.unit.test_engine import PERSON_ESPO

pytestmark = pytest.mark.world(ESPOCRM_NOTIFY_USER_ID="u1")


@pytest.fixture(autouse=True)
def real_time(world: World) -> None:
    """History entries are kept by age: the world's clock starts at the real now."""
    world.clock.now = datetime.now(UTC)


async def linked(world: World, **changes: Any) -> tuple[str, int]:
    rid = world.espo.add({**PERSON_ESPO, **changes})
    out = await world.engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
    assert out.betnr is not None
    return rid, out.betnr


def park(world: World, rid: str, status: str, reason: str) -> None:
    world.espo.records[rid].update(syncStatus=status, syncErrorMessage=reason)


# --------------------------------------------------------------------------- the actions table


@pytest.mark.parametrize(
    ("kind", "actions"),
    [
        ("conflict", ("sync", "relink", "unlock", "exclude")),
        ("failed", ("sync", "unlock", "exclude")),
        ("permanently_failed", ("sync", "relink", "exclude")),
        ("deleted_in_advoware", ("relink", "sync", "exclude")),
        ("excluded", ("include",)),
        ("waiting", ("sync", "unlock")),
        ("held_deletion", ("release", "confirm")),
        ("clean", ()),
    ],
)
def test_actions_per_kind(kind: str, actions: tuple[str, ...]) -> None:
    assert actions_for(kind) == actions


# --------------------------------------------------------------------------- what needs a person


async def test_needs_person_lists_each_parked_record_with_reason_since_and_actions(
    world: World,
) -> None:
    failed, _ = await linked(world, lastName="Eins", name="A Eins")
    gone, _ = await linked(world, lastName="Zwei", name="A Zwei")
    held, _ = await linked(world, lastName="Drei", name="A Drei")
    clean, _ = await linked(world, lastName="Vier", name="A Vier")
    park(world, failed, "failed", "Advoware antwortete 500")
    park(world, gone, "deleted_in_advoware", "betNr 7 gibt es in Advoware nicht mehr")
    park(world, held, "conflict", "Dublette: gleiche Person wie 42")
    await world.rt.breakers.hold(["advoware"], "waiting-1")
    report = await needs_person(world.rt)
    by_id = {r["id"]: r for r in report["records"]}
    assert clean not in by_id
    assert by_id[failed]["kind"] == "failed" and by_id[failed]["reason"] == "Advoware antwortete 500"
    assert by_id[failed]["actions"] == ["sync", "unlock", "exclude"] and by_id[failed]["since"]
    assert by_id[gone]["kind"] == "deleted_in_advoware" and "relink" in by_id[gone]["actions"]
    assert by_id[held]["kind"] == "conflict" and "Dublette" in by_id[held]["reason"]
    assert by_id["waiting-1"]["kind"] == "waiting" and "advoware" in by_id["waiting-1"]["reason"]
    assert report["parked_total"] == 3 and report["deletions"]["held"] == 0


async def test_held_deletions_are_listed_and_released_by_a_person(world: World) -> None:
    rid, betnr = await linked(world)
    del world.advo.records[betnr]
    guard = world.rt.deletions
    await guard.check_scan(guard.minimum, guard.minimum)  # every linked party missing: tripped
    assert not await guard.allow(rid)
    report = await needs_person(world.rt)
    item = next(r for r in report["records"] if r["id"] == rid)
    assert item["kind"] == "held_deletion" and item["actions"] == ["release", "confirm"]
    assert item["since"] == report["deletions"]["held_since"]["since"]
    assert (await deletions_request(world.rt, {"action": "show"}))["held"] == [rid]
    done = await deletions(world.rt, confirm=True)
    assert done["synced"] == {rid: "deleted_in_advoware"}
    assert not (await deletions(world.rt))["held"]


async def test_recent_conflicts_carry_both_values_newest_first(world: World) -> None:
    rid, betnr = await linked(world)
    world.advo.edit(betnr, name="Schulze")
    world.espo.edit(rid, lastName="Meier", name="Jürgen Meier")
    await world.engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)
    conflicts = await recent_conflicts(world.rt)
    assert conflicts[0] == {
        "id": rid,
        "at": conflicts[0]["at"],
        "field": "last_name",
        "espocrm": "Meier",
        "advoware_overwritten": "Schulze",
        "newest": True,
    }
    assert (await needs_person(world.rt))["conflicts"] == conflicts


# --------------------------------------------------------------------------- exclude / include


async def test_exclude_then_include_goes_through_the_state_machine_and_the_history(
    world: World,
) -> None:
    rid, _ = await linked(world)
    done = await set_excluded(world.rt, rid, excluded=True)
    assert done == {"id": rid, "syncStatus": "excluded", "was": "clean"}
    assert world.espo.records[rid]["syncStatus"] == "excluded"
    item = next(r for r in (await needs_person(world.rt))["records"] if r["id"] == rid)
    assert item["actions"] == ["include"] and "person" in item["reason"]
    back = await exclude_request(world.rt, {"id": rid, "excluded": False})
    assert back["syncStatus"] == "pending_sync" and back["sync"]["result"] in ("updated", "unchanged")
    assert world.espo.records[rid]["syncStatus"] == "clean"
    entries = await world.history.entries(rid)  # newest first
    decisions = [(e["result"], e["extra"]) for e in entries if e["trigger"] == "person"]
    assert decisions == [
        ("included", {"decided_by": "person", "was": "excluded"}),
        ("excluded", {"decided_by": "person", "was": "clean"}),
    ]


async def test_exclude_is_refused_while_syncing_and_include_only_for_an_excluded_record(
    world: World,
) -> None:
    rid, _ = await linked(world)
    with pytest.raises(OperationError) as exc:
        await set_excluded(world.rt, rid, excluded=False)
    assert exc.value.status == 409 and "not excluded" in str(exc.value)
    world.espo.records[rid]["syncStatus"] = "syncing"
    with pytest.raises(OperationError) as exc:
        await set_excluded(world.rt, rid, excluded=True)
    assert exc.value.status == 409
    assert await world.engine.locks.acquire(rid)
    with pytest.raises(OperationError) as exc:
        await set_excluded(world.rt, rid, excluded=True)
    assert exc.value.status == 409 and "being synced" in str(exc.value)


@pytest.mark.parametrize(
    "body", [None, {}, {"id": "x"}, {"id": " ", "excluded": True}, {"id": "x", "excluded": 1}]
)
async def test_bad_exclude_requests_are_refused(world: World, body: Any) -> None:
    with pytest.raises(OperationError) as exc:
        await exclude_request(world.rt, body)
    assert exc.value.status == 400


@pytest.mark.parametrize("body", [None, {}, {"action": "drop"}])
async def test_bad_deletions_requests_are_refused(world: World, body: Any) -> None:
    with pytest.raises(OperationError) as exc:
        await deletions_request(world.rt, body)
    assert exc.value.status == 400
