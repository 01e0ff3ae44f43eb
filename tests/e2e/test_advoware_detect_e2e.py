"""End to end: an Advoware server that differs from the assumed contract the way the evidence says
real ones do (shared/docs/advoware-api.md, "Evidence that points away from Part 2"): PascalCase
field names and change stamps in UTC, and an edit whose `geaendertAm` does not move.

Real Motia runtime, real Redis, the sandbox simulators over HTTP, on a stack of this module's own:
the simulator starts in the modes `pascal_case,utc_stamps` (sandbox/advoware_drift.py), the
service runs with `ADVOWARE_TIMEZONE=UTC` and the hourly full listing lowered to its minimum,
`SYNC_DELETION_SCAN_SECONDS=60`. The cron sweeps are held; the tests run the sweeps themselves,
every few seconds, as a compressed timetable.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.act import Actor
from services.store import keys
from tests.e2e.test_sync_e2e import create_person, sweep
from tests.support.stack import Stack, espo_get, run_stack, wait_until
from tests.support.sweep_cost import hold_cron, ops, wait_quiet

pytestmark = pytest.mark.e2e

SCAN_SECONDS = 60  # SYNC_DELETION_SCAN_SECONDS in this stack (the setting's minimum)
SYNTHETIC = 4  # linked pairs seeded by the simulator, their stamps days old


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    for _attempt in range(3):
        log_dir: Path = tmp_path_factory.mktemp("detect")
        with run_stack(
            log_dir,
            sandbox_args=["--records", str(SYNTHETIC), "--no-demo", "--advo-drift", "pascal_case,utc_stamps"],
            extra_env={"ADVOWARE_TIMEZONE": "UTC", "SYNC_DELETION_SCAN_SECONDS": str(SCAN_SECONDS)},
        ) as s:
            # Another stack on this machine took the spare port between its choice and Motia's
            # start: Motia then listens elsewhere ("Port N was in use") and every call is refused.
            if "was in use" in s.log_text("motia"):
                continue
            hold_cron(s)
            yield s
            return
    pytest.fail("Motia found its port taken three times")


@pytest.fixture(scope="module")
def actor(stack: Stack) -> Actor:
    return Actor(stack.espo_url, stack.advo_url)


@pytest.fixture
def drift(stack: Stack) -> Iterator[Any]:
    def set_drift(**modes: Any) -> None:
        resp = httpx.post(f"{stack.advo_url}/__sandbox/drift", json=modes, timeout=10)
        assert resp.status_code == 200, resp.text

    yield set_drift
    # Back to the start modes (PascalCase, UTC stamps), not to the contract.
    httpx.delete(f"{stack.advo_url}/__sandbox/drift", timeout=10).raise_for_status()


def advo_get(actor: Actor, betnr: int) -> dict[str, Any]:
    return dict(actor.advo_call("GET", f"Beteiligte/{betnr}").json())


def edit_in_advoware(actor: Actor, betnr: int, **fields: Any) -> None:
    """A person saves the party in Advoware: the server's own (PascalCase) object, changed."""
    current = advo_get(actor, betnr)
    for read_only in ("BetNr", "GeaendertAm", "AngelegtAm"):
        current.pop(read_only, None)
    actor.advo_call("PUT", f"Beteiligte/{betnr}", json={**current, **fields})


def linked(stack: Stack, actor: Actor, rid: str) -> int:
    """The record's betnr once linked and clean (a create may wait for the identity index; the
    next sweep takes it up)."""

    def done() -> bool:
        record = espo_get(actor, rid)
        if record.get("betnr") and record.get("syncStatus") == "clean":
            return True
        sweep(stack)
        return False

    wait_until(done, timeout=180, interval=3.0, message=f"record {rid} linked and clean")
    return int(espo_get(actor, rid)["betnr"])


def synthetic_pair(actor: Actor, index: int) -> tuple[str, int]:
    """A seeded linked pair (EspoCRM id, betnr)."""
    resp = actor.espo.get(
        "CBeteiligte", params={"where[0][type]": "isNotNull", "where[0][attribute]": "betnr"}
    )
    rows = sorted(resp.json()["list"], key=lambda r: int(r["betnr"]))
    return str(rows[index]["id"]), int(rows[index]["betnr"])


def has_snapshot(stack: Stack, rid: str) -> bool:
    import redis

    r = redis.Redis.from_url(stack.redis_url)
    try:
        return bool(r.exists(keys.snapshot(rid)))
    finally:
        r.close()


def sweeps_until(stack: Stack, done: Any, timeout: float, every: float = 5.0) -> list[dict[str, Any]]:
    """Sweep every `every` seconds until `done()`; the sweeps' summaries."""
    summaries: list[dict[str, Any]] = []

    def step() -> bool:
        if done():
            return True
        summaries.append(sweep(stack))
        return bool(done())

    wait_until(step, timeout=timeout, interval=every, message="the edit in EspoCRM")
    return summaries


def test_pascal_case_and_utc_stamps_sync_both_ways(stack: Stack, actor: Actor) -> None:
    # EspoCRM -> Advoware: the create and an edit reach the PascalCase server.
    rid = create_person(actor, lastName="Pascal", firstName="Utz")
    betnr = linked(stack, actor, rid)
    party = advo_get(actor, betnr)
    assert party["Name"] == "Pascal" and party["Vorname"] == "Utz" and "name" not in party
    actor.espo.put(f"CBeteiligte/{rid}", json={"firstName": "Ute"}).raise_for_status()
    wait_until(lambda: advo_get(actor, betnr)["Vorname"] == "Ute", timeout=60, message="edit in Advoware")
    # Advoware -> EspoCRM through the stamp poll: its UTC stamp read as UTC (ADVOWARE_TIMEZONE).
    sweep(stack)  # settle: the service's own writes read once
    # ... and wait until the syncs that sweep (or the edit's echo) started are done: one still
    # queued would read the Advoware edit below and carry it over before any poll could find it.
    wait_quiet(stack)
    log_mark = len(stack.log_text("motia"))
    edit_in_advoware(actor, betnr, Titel="Dr. UTC")
    time.sleep(1.1)  # geaendertAm has 1 s resolution
    summaries = sweeps_until(stack, lambda: espo_get(actor, rid).get("titel") == "Dr. UTC", timeout=60)
    # Found by the stamp poll: in one of these sweeps, or (a busy machine) in the stack's own cron
    # sweep that ran before the first of them - the service logs each sweep's sources.
    by_cron = re.search(r'"advoware_changed": [1-9]', stack.log_text("motia")[log_mark:])
    assert any(s["by_source"].get("advoware_changed", 0) >= 1 for s in summaries) or by_cron, summaries


def test_an_edit_whose_stamp_does_not_move_arrives_within_one_scan_interval(
    stack: Stack, actor: Actor, drift: Any
) -> None:
    rid, betnr = synthetic_pair(actor, 0)
    stamp = advo_get(actor, betnr)["GeaendertAm"]
    # The seeded pair synced once (the daily check), so it has a snapshot to compare with.
    sweeps_until(stack, lambda: has_snapshot(stack, rid), 60)
    drift(frozen_stamp=True)
    edit_in_advoware(actor, betnr, Titel="Dr. Stempel")
    assert advo_get(actor, betnr)["GeaendertAm"] == stamp  # the stamp lies: days old
    started = time.monotonic()
    summaries = sweeps_until(
        stack, lambda: espo_get(actor, rid).get("titel") == "Dr. Stempel", timeout=SCAN_SECONDS + 60
    )
    # Within one scan interval (plus the sweep's cadence and the sync), found by the full listing.
    assert time.monotonic() - started <= SCAN_SECONDS + 30
    assert any(s["by_source"].get("advoware_scan_changed", 0) >= 1 for s in summaries), summaries
    assert not any(s["by_source"].get("advoware_changed", 0) for s in summaries), summaries


def test_check_advoware_names_the_casing_and_the_zone(stack: Stack, actor: Actor) -> None:
    _rid, betnr = synthetic_pair(actor, 1)
    edit_in_advoware(actor, betnr, Titel="Dr. Prüf")  # a fresh stamp: the zone can be told
    assumed = ops(replace(stack, env={**stack.env, "ADVOWARE_TIMEZONE": "Europe/Berlin"}), "check-advoware")
    assert assumed.returncode == 0, assumed.stdout + assumed.stderr  # nothing makes writes fail
    lines = assumed.stdout.splitlines()
    casing = [line for line in lines if line.startswith("WARNING fields:")]
    zone = [line for line in lines if line.startswith("WARNING geaendertAm zone:")]
    assert casing and "PascalCase" in casing[0] and "BetNr" in casing[0], assumed.stdout
    assert zone and "set ADVOWARE_TIMEZONE=UTC" in zone[0], assumed.stdout
    configured = ops(stack, "check-advoware")  # this stack's own setting: UTC
    assert configured.returncode == 0 and "INFO    geaendertAm zone: stamps fit" in configured.stdout
