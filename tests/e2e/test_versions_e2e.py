"""A person's EspoCRM save landing between the sync's read and its write (issue 20, point 2): the
real Motia runtime, real Redis, the simulators with EspoCRM's optimistic concurrency control on
(`/__sandbox/versioning`) and Advoware answering slowly, so the save lands while the sync reads
Advoware. The sync's EspoCRM writes carry the version of the read its decision was based on:
EspoCRM answers 409, the sync reads again and decides again - the person's value ends on both
sides and the notice names the Advoware value it overwrote; nothing is lost without a word."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox import config as cfg
from sandbox.act import Actor
from tests.e2e.test_redis_faults import signed_post
from tests.e2e.test_sync_e2e import calls, create_person, seq
from tests.support.stack import Stack, espo_get, wait_linked, wait_until
from tests.support.sweep_cost import edit_advoware

pytestmark = pytest.mark.e2e
ADVOWARE_LATENCY_MS = 3000


@pytest.fixture
def versioned_and_slow(stack: Stack) -> Iterator[None]:
    """EspoCRM's optimistic concurrency on, Advoware slow; both back as they were afterwards
    (the stack is shared by the package)."""
    httpx.post(
        f"{stack.espo_url}/__sandbox/versioning", json={"enabled": True}, timeout=30
    ).raise_for_status()
    try:
        yield
    finally:
        httpx.post(f"{stack.advo_url}/__sandbox/latency", json={"latency_ms": 0}, timeout=30)
        httpx.post(f"{stack.espo_url}/__sandbox/versioning", json={"enabled": False}, timeout=30)


def notes_about(stack: Stack, rid: str) -> list[str]:
    notes = httpx.get(f"{stack.espo_url}/__sandbox/notes", timeout=30).json()["notes"]
    return [str(n.get("post") or "") for n in notes if n.get("parentId") == rid]


def the_sync_read(stack: Stack, rid: str, since: int) -> bool:
    """The service (the API user) has read the record since `since`: its sync is under way."""
    _, espo_calls = calls(stack.espo_url, since)
    return any(
        c["method"] == "GET"
        and c["path"].endswith(f"/CBeteiligte/{rid}")
        and c.get("user") == cfg.ESPO_API_USER_NAME
        for c in espo_calls
    )


def quiet(stack: Stack, seconds: float = 2.0) -> None:
    """Until the service has not called EspoCRM for `seconds` (the create's own follow-up runs are
    over), so the next read of the record is the sync this test starts."""

    def still() -> bool:
        before = seq(stack.espo_url)
        time.sleep(seconds)
        _, since = calls(stack.espo_url, before)
        return not any(c.get("user") == cfg.ESPO_API_USER_NAME for c in since)

    wait_until(still, timeout=60, interval=0.1, message="the service is quiet")


@pytest.mark.usefixtures("versioned_and_slow")
def test_a_save_between_the_syncs_read_and_write_is_kept_and_named(stack: Stack, actor: Actor) -> None:
    rid = create_person(actor, lastName="Versionsfenster", titel="Dr.")
    betnr = wait_linked(actor, rid)["betnr"]
    assert isinstance(espo_get(actor, rid).get("versionNumber"), int)
    # Staff change the title in Advoware; the service is told of the record (a webhook of it).
    edit_advoware(actor, [betnr], "Prof.")
    quiet(stack)
    httpx.post(
        f"{stack.advo_url}/__sandbox/latency", json={"latency_ms": ADVOWARE_LATENCY_MS}, timeout=30
    ).raise_for_status()
    mark = seq(stack.espo_url)
    assert signed_post(stack, [rid]).status_code == 200
    # The sync has read the EspoCRM record and now waits for Advoware: a person saves the title.
    wait_until(
        lambda: the_sync_read(stack, rid, mark), timeout=30, interval=0.05, message="the sync read the record"
    )
    saved_at = time.monotonic()
    actor.espo.put(f"CBeteiligte/{rid}", json={"titel": "Dr. med."}).raise_for_status()
    assert time.monotonic() - saved_at < ADVOWARE_LATENCY_MS / 1000  # inside the sync's Advoware read

    def settled() -> dict[str, Any] | None:
        record = espo_get(actor, rid)
        advo = actor.advo_call("GET", f"Beteiligte/{betnr}").json()
        return record if record["syncStatus"] == "clean" and advo["titel"] == record["titel"] else None

    record = wait_until(settled, timeout=90, interval=1.0, message="both sides agree again")
    # The person's value on both sides, and a notice that names the Advoware value overwritten.
    assert record["titel"] == "Dr. med."
    notices = notes_about(stack, rid)
    assert any("Prof." in n and "Dr. med." in n for n in notices), notices
    _, espo_calls = calls(stack.espo_url, mark)
    refused = [c for c in espo_calls if c["method"] in ("PUT", "PATCH") and c["status"] == 409]
    assert refused, [(c["seq"], c["method"], c["path"], c.get("user"), c["status"]) for c in espo_calls]
