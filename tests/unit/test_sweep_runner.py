"""The sweep runner behind the cron steps: the identity-index cron's follow-up sweep claims the
minute's tick like the 15-minute sweep, so a tick that is taken (another instance, the 15-minute
cron, a test holding the crons) is not swept a second time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from services.events import SYNC_CHECK_TOPIC, Emitted
from services.runtime import Runtime, RuntimeFactory
from services.store import keys
from services.sync.identity_index import IdentityIndex
from services.sync.sweep_runner import run_index_build, run_sweep
from tests.support.runtime import World
from tests.unit.test_engine import PERSON_ESPO


def factory(rt: Runtime) -> RuntimeFactory:
    @asynccontextmanager
    async def open_rt() -> AsyncIterator[Runtime]:
        yield rt

    return open_rt


@pytest.fixture(autouse=True)
def waiting_create(world: World) -> None:
    world.espo.add({**PERSON_ESPO, "lastName": "Wartet"})  # a create waiting for the index


@pytest.fixture
def emitted() -> list[Emitted]:
    return []


async def emit_into(emitted: list[Emitted], event: Emitted) -> None:
    assert event["topic"] == SYNC_CHECK_TOPIC
    emitted.append(event)


def tick_key(world: World) -> str:
    return keys.sweep_tick(world.clock.now.strftime("%Y%m%d%H%M"))


async def test_a_completed_index_build_sweeps_at_once(world: World, emitted: list[Emitted]) -> None:
    summary = await run_index_build(lambda e: emit_into(emitted, e), runtime=factory(world.rt))
    assert summary["identity_index"].startswith("ready (")
    assert summary["sweep"]["events"] == len(emitted) >= 1
    assert await IdentityIndex(world.redis).ready()
    assert await world.redis.get(tick_key(world)) is not None  # the minute's tick is claimed


async def test_the_follow_up_sweep_skips_a_claimed_tick(world: World, emitted: list[Emitted]) -> None:
    await world.redis.set(tick_key(world), "held-by-test")
    summary = await run_index_build(lambda e: emit_into(emitted, e), runtime=factory(world.rt))
    assert summary["identity_index"].startswith("ready (")  # the index is built all the same
    assert summary["sweep"] == {"skipped": "another instance runs this tick"}
    assert emitted == []


async def test_a_ready_index_costs_no_sweep(world: World, emitted: list[Emitted]) -> None:
    await run_index_build(lambda e: emit_into(emitted, e), runtime=factory(world.rt))
    emitted.clear()
    world.clock.tick(60)
    assert await run_index_build(lambda e: emit_into(emitted, e), runtime=factory(world.rt)) == {
        "identity_index": "ready"
    }
    assert emitted == []


async def test_an_operators_sweep_ignores_the_tick(world: World, emitted: list[Emitted]) -> None:
    await world.redis.set(tick_key(world), "held-by-test")
    summary = await run_sweep(lambda e: emit_into(emitted, e), runtime=factory(world.rt))
    assert summary["events"] == len(emitted) >= 1
