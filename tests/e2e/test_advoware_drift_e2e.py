"""End to end: the service against an Advoware that differs from the assumed contract.

Real Motia runtime, real Redis, the sandbox simulators over HTTP; the drift is switched on
the Advoware simulator (`/__sandbox/drift`, sandbox/advoware_drift.py) and always cleared
again, because the stack is shared by the e2e package.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.act import Actor
from tests.e2e.test_sync_e2e import ADMIN, create_person, espo_get, sweep
from tests.support.stack import Stack, wait_until
from tests.support.sweep_cost import wait_quiet

pytestmark = pytest.mark.e2e


@pytest.fixture
def drift(stack: Stack) -> Iterator[Any]:
    def set_drift(**modes: Any) -> None:
        resp = httpx.post(f"{stack.advo_url}/__sandbox/drift", json=modes, timeout=10)
        assert resp.status_code == 200, resp.text

    yield set_drift
    httpx.delete(f"{stack.advo_url}/__sandbox/drift", timeout=10).raise_for_status()


def linked(stack: Stack, actor: Actor, rid: str) -> int:
    """The record's betnr once it is linked and clean. A create may wait for the identity index
    (built by the service within a minute of start); the next sweep takes the waiting record up."""

    def done() -> bool:
        record = espo_get(actor, rid)
        if record.get("betnr") and record.get("syncStatus") == "clean":
            return True
        sweep(stack)
        return False

    wait_until(done, timeout=120, interval=3.0, message=f"record {rid} linked and clean")
    # A sweep above may have queued one more sync of the record: let it run now, not in the
    # middle of the test's next step (it would notice a deletion before the test's own sync).
    wait_quiet(stack)
    return int(espo_get(actor, rid)["betnr"])


def listing_calls(stack: Stack, since: int) -> list[dict[str, Any]]:
    data = httpx.get(f"{stack.advo_url}/__sandbox/calls", params={"since": since}, timeout=10).json()
    return [c for c in data["calls"] if c["method"] == "GET" and c["path"].endswith("/Beteiligte")]


def advo_seq(stack: Stack) -> int:
    return int(
        httpx.get(f"{stack.advo_url}/__sandbox/calls", params={"since": 10**9}, timeout=10).json()["seq"]
    )


def edit_in_advoware(actor: Actor, betnr: int, **fields: Any) -> None:
    current = actor.advo_call("GET", f"Beteiligte/{betnr}").json()
    for read_only in ("betNr", "geaendertAm", "angelegtAm"):
        current.pop(read_only, None)
    actor.advo_call("PUT", f"Beteiligte/{betnr}", json={**current, **fields})


def sync_now(stack: Stack, rid: str) -> dict[str, Any]:
    url = f"{stack.motia_url}/vmh/beteiligte/sync/record"
    resp = httpx.post(url, headers=ADMIN, json={"id": rid}, timeout=60)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_a_server_capping_pages_still_delivers_every_advoware_edit(
    stack: Stack, actor: Actor, drift: Any
) -> None:
    rids = [create_person(actor, lastName=f"Seitenkappe{i}") for i in range(3)]
    betnrs = [linked(stack, actor, rid) for rid in rids]
    sweep(stack)  # settle: the creates' own changes are read once
    drift(page_cap=1)  # every listing page holds one record, whatever `take` asks
    for betnr in betnrs:
        edit_in_advoware(actor, betnr, titel="Dr. Kappe")
    mark = advo_seq(stack)
    result = sweep(stack)
    assert result["by_source"]["advoware_changed"] >= 3, result
    for rid in rids:
        wait_until(
            lambda rid=rid: espo_get(actor, rid)["titel"] == "Dr. Kappe", message=f"{rid} edit in EspoCRM"
        )
    assert len(listing_calls(stack, mark)) >= 4  # one page per changed record, then the empty page


def test_a_server_ignoring_skip_stops_the_poll_instead_of_looping(
    stack: Stack, actor: Actor, drift: Any
) -> None:
    rids = [create_person(actor, lastName=f"Ohneskip{i}") for i in range(2)]
    betnrs = [linked(stack, actor, rid) for rid in rids]
    sweep(stack)
    drift(ignore_skip=True, page_cap=1)  # page 2 repeats page 1
    for betnr in betnrs:
        edit_in_advoware(actor, betnr, zusatz="wiederholt")
    mark = advo_seq(stack)
    resp = httpx.post(f"{stack.motia_url}/vmh/beteiligte/sync/sweep", headers=ADMIN, timeout=60)
    # The sweep fails loudly (no endless listing, no silent "done" after one page): it read the
    # repeated page once, stopped, and answered with an error.
    assert resp.status_code >= 500, resp.text
    assert len(listing_calls(stack, mark)) <= 4


def test_a_misrouted_url_answering_404_everywhere_marks_nothing_deleted(
    stack: Stack, actor: Actor, drift: Any
) -> None:
    rid = create_person(actor, lastName="Fehlgeleitet")
    betnr = linked(stack, actor, rid)
    drift(records_404=True, listing_404=True)
    outcome = sync_now(stack, rid)
    assert outcome["result"] == "failed", outcome  # transient: retried, never deleted_in_advoware
    assert "404 not confirmed" in (outcome["reason"] or ""), outcome
    record = espo_get(actor, rid)
    assert record["syncStatus"] == "failed" and record["betnr"] == betnr
    assert "404 not confirmed" in record["syncErrorMessage"]
    # The connector URL is right again: the next sync finds the record as it was.
    drift(records_404=False, listing_404=False)
    assert sync_now(stack, rid)["result"] != "deleted_in_advoware"
    wait_until(lambda: espo_get(actor, rid)["syncStatus"] == "clean", timeout=60, message="clean again")


def test_a_deleted_advoware_record_is_still_noticed(stack: Stack, actor: Actor) -> None:
    """The confirmation does not hide a real deletion: the record is gone, the listing answers."""
    rid = create_person(actor, lastName="Wirklichweg")
    betnr = linked(stack, actor, rid)
    actor.advo_call("DELETE", f"Beteiligte/{betnr}")
    outcome = sync_now(stack, rid)
    assert outcome["result"] == "deleted_in_advoware", outcome
