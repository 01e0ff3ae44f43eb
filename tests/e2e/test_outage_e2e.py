"""Outages end to end (issue 21): the real Motia runtime, a real Redis, the simulators answering
503 for a while. A record waits for the system, not its back-off; the every-minute probe
releases it at once; what provably was not carried out is repeated within the sync.

The 15-minute sweep's ticks are held for the whole module: every recovery here comes from the
every-minute cron's probe, never from a sweep. Records are read through the simulators' admin
routes (`/__sandbox/records`), which the injected faults leave alone.

The outage's length does not enter the new path (a waiting record carries no attempt and no
back-off: after 75 s or 30 minutes it is in the same state), so the 200-record recovery runs
through the 75 s outage of `test_advoware_outage_*` instead of a 30-minute one. EspoCRM's 75 s
outage is tests/e2e/test_outage_espocrm_e2e.py, a module of its own: `make test` runs both at once.
"""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
import pytest

from sandbox.act import Actor
from services.store import keys
from tests.support.stack import Stack, espo_create, wait_until

pytestmark = pytest.mark.e2e

ADMIN = {"Authorization": "Bearer sandbox-admin-token"}
# Longer than a minute: the breaker opens within seconds of the first failure, so the every-minute
# probe meets the outage at least once (check_probes) before it ends.
OUTAGE_SECONDS = 75
BULK = 199  # with the one watched record: 200 created during the outage
PROBE_QUERY = "skip=0&take=1"


@pytest.fixture(scope="module")
def stack(module_stack: Stack) -> Stack:
    """The shared stack (fresh data), its sweep ticks held for the module."""
    hold_sweep_ticks(module_stack)
    warm_up(module_stack, Actor(module_stack.espo_url, module_stack.advo_url))
    return module_stack


@pytest.fixture(scope="module")
def actor(stack: Stack) -> Actor:
    return Actor(stack.espo_url, stack.advo_url)


def hold_sweep_ticks(stack: Stack, hours: int = 2) -> None:
    """Claim the 15-minute sweep's (and the health watch's) ticks: only the minute cron's probe
    may release records, and every one-row listing in the call logs is a probe."""
    import redis

    r = redis.Redis.from_url(stack.redis_url)
    try:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        pipe = r.pipeline()
        for minute in range(hours * 60):
            tick = (now + timedelta(minutes=minute)).strftime("%Y%m%d%H%M")
            pipe.set(keys.sweep_tick(tick), "held-by-test", ex=hours * 3600)
            pipe.set(keys.watch_tick(tick), "held-by-test", ex=hours * 3600)
        pipe.execute()
    finally:
        r.close()


# --------------------------------------------------------------------------- simulators
def inject(base: str, *faults: dict[str, Any]) -> None:
    httpx.post(f"{base}/__sandbox/faults", json={"faults": list(faults)}, timeout=30).raise_for_status()


def clear(base: str) -> None:
    httpx.delete(f"{base}/__sandbox/faults", timeout=30).raise_for_status()


def calls(base: str, since: int = 0) -> tuple[int, list[dict[str, Any]]]:
    data = httpx.get(f"{base}/__sandbox/calls", params={"since": since}, timeout=30).json()
    return int(data["seq"]), list(data["calls"])


def records(base: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{base}/__sandbox/records", timeout=30).json()["records"])


def espo_record(stack: Stack, rid: str) -> dict[str, Any]:
    return next(r for r in records(stack.espo_url) if r["id"] == rid)


def advo_named(stack: Stack, name: str) -> list[dict[str, Any]]:
    return [r for r in records(stack.advo_url) if r.get("name") == name]


def create_person(actor: Actor, last_name: str) -> str:
    return espo_create(
        actor,
        {
            "beteiligterTyp": "Person",
            "salutationName": "Ms.",
            "firstName": "Greta",
            "lastName": last_name,
            "emailAddressData": [{"emailAddress": f"{last_name.lower()}@example.de", "primary": True}],
        },
    )


def synced(rec: dict[str, Any]) -> bool:
    return bool(rec.get("betnr")) and rec.get("syncStatus") == "clean"


def wait_synced(stack: Stack, rid: str, timeout: float) -> dict[str, Any]:
    return dict(
        wait_until(
            lambda: (r := espo_record(stack, rid)) and synced(r) and r,
            timeout=timeout,
            interval=1.0,
            message=f"record {rid} synced",
        )
    )


def breakers(stack: Stack) -> dict[str, Any]:
    resp = httpx.get(f"{stack.motia_url}/vmh/beteiligte/sync/status", headers=ADMIN, timeout=30)
    resp.raise_for_status()
    return dict(resp.json()["breakers"])


def waiting_in_redis(stack: Stack, system: str) -> int:
    """Records held for `system` while its breaker is open (0 while it is closed)."""
    import redis

    r = redis.Redis.from_url(stack.redis_url)
    try:
        return int(cast(int, r.zcard(keys.breaker_held(system)))) if r.exists(keys.breaker(system)) else 0
    finally:
        r.close()


def breaker_in_redis(stack: Stack, system: str) -> dict[str, Any]:
    import json

    import redis

    r = redis.Redis.from_url(stack.redis_url)
    try:
        return dict(json.loads(cast(bytes, r.get(keys.breaker(system)))))
    finally:
        r.close()


def opened_at(state: dict[str, Any]) -> datetime:
    """When the breaker opened (its `since`), naive UTC like the simulators' call stamps."""
    return datetime.fromisoformat(state["since"]).astimezone(UTC).replace(tzinfo=None)


def check_probes(seen: list[dict[str, Any]], opened: datetime, probe: Any) -> None:
    """While the system was down: once the breaker was open nothing but probes reached it;
    probes (the confirming one included) at most 2 a minute, and at least one a minute."""
    down = [c for c in seen if c["fault"]]
    after_open = [c for c in down if stamp(c) > opened]
    assert all(probe(c) for c in after_open), described(after_open)
    probes = [stamp(c) for c in down if probe(c)]
    assert probes and most_in_a_minute(probes) <= 2, described(down)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(probes)]
    assert all(g <= 75 for g in gaps), (gaps, described(down))  # the minute cron, some jitter


def described(seen: list[dict[str, Any]]) -> list[str]:
    return [f"{c['timestamp']} {c['method']} {c['path']}?{c['query']}" for c in seen]


def is_probe(call: dict[str, Any], path: str) -> bool:
    return call["method"] == "GET" and call["path"] == path and call["query"] == PROBE_QUERY


def most_in_a_minute(stamps: list[datetime]) -> int:
    return max((sum(1 for t in stamps if s <= t < s + timedelta(seconds=60)) for s in stamps), default=0)


def stamp(call: dict[str, Any]) -> datetime:
    return datetime.strptime(call["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")


def warm_up(stack: Stack, actor: Actor) -> None:
    """The identity index built and a token cached: a first create goes through."""
    rid = create_person(actor, f"Vorlauf{uuid.uuid4().hex[:6]}")
    wait_synced(stack, rid, timeout=120)


# --------------------------------------------------------------------------- tests
def test_post_refused_five_times_nicht_angemeldet_is_repeated_within_the_sync(
    stack: Stack, actor: Actor
) -> None:
    mark, _ = calls(stack.advo_url)
    offline = {
        "kind": "503_nicht_angemeldet",
        "next_n": 5,
        "match": {"method": "POST", "path": "/Beteiligte$"},
    }
    inject(stack.advo_url, offline)
    name = f"Fuenfmal{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    rid = create_person(actor, name)
    try:
        rec = wait_synced(stack, rid, timeout=60)
    finally:
        clear(stack.advo_url)
    assert time.monotonic() - started < 60
    assert int(rec.get("syncRetryCount") or 0) == 0
    assert len(advo_named(stack, name)) == 1  # exactly one party
    _, seen = calls(stack.advo_url, mark)
    posts = [c["status"] for c in seen if c["method"] == "POST" and c["path"].endswith("/Beteiligte")]
    assert posts == [503] * 5 + [201], posts


@pytest.fixture(scope="module")
def refused(stack: Stack, actor: Actor) -> str:
    """A record whose data Advoware refuses (400), before the outage."""
    inject(stack.advo_url, {"kind": "400", "next_n": 1, "match": {"method": "POST", "path": "/Beteiligte$"}})
    rid = create_person(actor, f"Abgelehnt{uuid.uuid4().hex[:6]}")
    try:
        wait_until(
            lambda: espo_record(stack, rid).get("syncStatus") in ("failed", "permanently_failed"),
            timeout=60,
            interval=1.0,
            message="the refused record's failure",
        )
    finally:
        clear(stack.advo_url)
    return rid


def test_refused_data_is_the_records_fault(stack: Stack, refused: str) -> None:
    rec = espo_record(stack, refused)
    # A 400 is the record's data: parked for a person at once, one attempt, no breaker.
    assert rec["syncStatus"] == "permanently_failed" and rec["syncRetryCount"] == 1
    assert "Wartet" not in (rec.get("syncErrorMessage") or "")
    assert breakers(stack)["advoware"]["open"] is False


# 75 s outage + up to 2 min for the record + up to 5 min for all 200 (the suite's 300 s default
# would cut the 5 minutes the issue allows short on a busy machine).
@pytest.mark.timeout(600)
def test_advoware_outage_one_record_waits_and_is_synced_when_it_is_back(
    stack: Stack, actor: Actor, refused: str
) -> None:
    refused_before = espo_record(stack, refused)
    mark, _ = calls(stack.advo_url)
    inject(stack.advo_url, {"kind": "503_nicht_angemeldet", "next_n": None})
    down_at = time.monotonic()
    try:
        name = f"Ausfall{uuid.uuid4().hex[:6]}"
        rid = create_person(actor, name)
        rec = wait_until(
            lambda: (r := espo_record(stack, rid)).get("syncErrorMessage") and r,
            timeout=60,
            interval=1.0,
            message="the record says it waits",
        )
        assert rec["syncStatus"] == "pending_sync" and rec["syncErrorMessage"].startswith(
            "Wartet auf Advoware"
        )
        assert int(rec.get("syncRetryCount") or 0) == 0
        state = breakers(stack)["advoware"]
        assert state["open"] and state["waiting"] >= 1
        # 199 more records created by people during the outage: they wait without a call.
        bulk = [create_person(actor, f"Menge{i:03d}{uuid.uuid4().hex[:4]}") for i in range(BULK)]
        time.sleep(max(0.0, down_at + OUTAGE_SECONDS - time.monotonic()))
    finally:
        clear(stack.advo_url)
    up_at = time.monotonic()

    rec = wait_synced(stack, rid, timeout=120)
    assert time.monotonic() - up_at <= 120
    assert int(rec.get("syncRetryCount") or 0) == 0 and not rec.get("syncErrorMessage")
    assert len(advo_named(stack, name)) == 1

    wait_until(
        lambda: set(bulk) <= {r["id"] for r in records(stack.espo_url) if synced(r)},
        timeout=max(1.0, up_at + 300 - time.monotonic()),
        interval=2.0,
        message="all 200 records synced within 5 minutes of recovery",
    )
    _, seen = calls(stack.advo_url, mark)
    check_probes(seen, opened_at(state), lambda c: is_probe(c, "/api/v1/advonet/Beteiligte"))
    # The refused record was not released: it still waits for a person.
    refused_after = espo_record(stack, refused)
    assert refused_after["syncStatus"] == "permanently_failed"
    assert refused_after["modifiedAt"] == refused_before["modifiedAt"]
