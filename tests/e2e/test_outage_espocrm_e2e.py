"""EspoCRM's outage end to end (issue 21), as tests/e2e/test_outage_e2e.py runs Advoware's: the
real Motia runtime, a real Redis, EspoCRM answering the service nothing but 503 for 75 s. The
record waits for the system, not its back-off; the every-minute cron's probe releases it.

A module of its own so that `make test` runs the two 75 s outages at the same time, on two workers.
It runs on the shared stack (default settings, as the Advoware module's own stack); the 15-minute
sweep's and the health watch's ticks are held for the whole module, so every recovery comes from
the minute cron's probe, never from a sweep.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from sandbox.act import Actor
from tests.e2e.test_outage_e2e import (
    OUTAGE_SECONDS,
    advo_named,
    breaker_in_redis,
    calls,
    check_probes,
    clear,
    create_person,
    hold_sweep_ticks,
    inject,
    opened_at,
    wait_synced,
    waiting_in_redis,
    warm_up,
)
from tests.support.stack import Stack, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(module_stack: Stack) -> Stack:
    hold_sweep_ticks(module_stack)
    warm_up(module_stack, Actor(module_stack.espo_url, module_stack.advo_url))
    return module_stack


@pytest.fixture(scope="module")
def actor(stack: Stack) -> Actor:
    return Actor(stack.espo_url, stack.advo_url)


def test_espocrm_outage_one_record_waits_and_is_synced_when_it_is_back(stack: Stack, actor: Actor) -> None:
    mark, _ = calls(stack.espo_url)
    # EspoCRM answers the service nothing but 503; the person's create (POST) still goes in.
    down = [{"kind": "503", "next_n": None, "match": {"method": m}} for m in ("GET", "PUT", "PATCH")]
    inject(stack.espo_url, *down)
    down_at = time.monotonic()
    try:
        name = f"Espoausfall{uuid.uuid4().hex[:6]}"
        rid = create_person(actor, name)
        # Read from Redis: the status endpoint would count records in EspoCRM (calls to it).
        wait_until(
            lambda: waiting_in_redis(stack, "espocrm") >= 1,
            timeout=60,
            interval=1.0,
            message="the record waits for EspoCRM",
        )
        opened = opened_at(breaker_in_redis(stack, "espocrm"))
        time.sleep(max(0.0, down_at + OUTAGE_SECONDS - time.monotonic()))
    finally:
        clear(stack.espo_url)
    up_at = time.monotonic()
    rec = wait_synced(stack, rid, timeout=120)
    assert time.monotonic() - up_at <= 120
    assert int(rec.get("syncRetryCount") or 0) == 0
    assert len(advo_named(stack, name)) == 1

    _, seen = calls(stack.espo_url, mark)
    check_probes(seen, opened, lambda c: is_probe_espo(c, "/api/v1/CBeteiligte"))


def is_probe_espo(call: dict[str, Any], path: str) -> bool:
    """EspoCRM's probe: a one-row page of the listing (`maxSize` 1, no condition)."""
    import json
    from urllib.parse import parse_qs

    if call["method"] != "GET" or call["path"] != path:
        return False
    raw = parse_qs(call["query"]).get("searchParams", ["{}"])[0]
    search = json.loads(raw)
    return search.get("maxSize") == 1 and "where" not in search
