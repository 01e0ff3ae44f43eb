"""The sweep runner behind the cron steps: the identity-index cron's follow-up sweep claims the
minute's tick like the 15-minute sweep, so a tick that is taken (another instance, the 15-minute
cron, a test holding the crons) is not swept a second time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from services.events import SYNC_CHECK_TOPIC, Emitted
from services.runtime import Runtime, RuntimeFactory
from services.store import keys
from services.sync.identity_index import IdentityIndex
from services.sync.sweep_runner import run_index_build, run_sweep
from tests.support.fakes import fake_env
from tests.unit.test_engine import PERSON_ESPO


def factory(rt: Runtime) -> RuntimeFactory:
    @asynccontextmanager
    async def open_rt() -> AsyncIterator[Runtime]:
        yield rt

    return open_rt


@pytest.fixture
def env() -> dict[str, Any]:
    env = fake_env()
    env["emitted"] = []
    env["espo"].add({**PERSON_ESPO, "lastName": "Wartet"})  # a create waiting for the index
    return env


async def emit_into(env: dict[str, Any], event: Emitted) -> None:
    assert event["topic"] == SYNC_CHECK_TOPIC
    env["emitted"].append(event)


def tick_key(env: dict[str, Any]) -> str:
    return keys.sweep_tick(env["clock"].now.strftime("%Y%m%d%H%M"))


async def test_a_completed_index_build_sweeps_at_once(env: dict[str, Any]) -> None:
    summary = await run_index_build(lambda e: emit_into(env, e), runtime=factory(env["rt"]))
    assert summary["identity_index"].startswith("ready (")
    assert summary["sweep"]["events"] == len(env["emitted"]) >= 1
    assert await IdentityIndex(env["redis"]).ready()
    assert await env["redis"].get(tick_key(env)) is not None  # the minute's tick is claimed


async def test_the_follow_up_sweep_skips_a_claimed_tick(env: dict[str, Any]) -> None:
    await env["redis"].set(tick_key(env), "held-by-test")
    summary = await run_index_build(lambda e: emit_into(env, e), runtime=factory(env["rt"]))
    assert summary["identity_index"].startswith("ready (")  # the index is built all the same
    assert summary["sweep"] == {"skipped": "another instance runs this tick"}
    assert env["emitted"] == []


async def test_a_ready_index_costs_no_sweep(env: dict[str, Any]) -> None:
    await run_index_build(lambda e: emit_into(env, e), runtime=factory(env["rt"]))
    env["emitted"].clear()
    env["clock"].tick(60)
    assert await run_index_build(lambda e: emit_into(env, e), runtime=factory(env["rt"])) == {
        "identity_index": "ready"
    }
    assert env["emitted"] == []


async def test_an_operators_sweep_ignores_the_tick(env: dict[str, Any]) -> None:
    await env["redis"].set(tick_key(env), "held-by-test")
    summary = await run_sweep(lambda e: emit_into(env, e), runtime=factory(env["rt"]))
    assert summary["events"] == len(env["emitted"]) >= 1
