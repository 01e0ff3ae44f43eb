"""The Redis settings production needs, checked against a real redis-server: at start-up
(`python -m services.settings`, run first by `make serve`) and in every sweep."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from services.settings import Settings
from services.store.connection import connect
from services.store.server_check import check_server, check_url
from tests.support.processes import PROJECT_ROOT, RedisServer, free_port, run_redis
from tests.unit.test_settings import REQUIRED


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A server of its own: these tests change its configuration."""
    with run_redis() as server:
        yield server


@pytest.fixture
async def redis(own_redis: RedisServer) -> AsyncIterator[Any]:
    r = connect(own_redis.url)
    yield r
    await r.aclose()


async def test_test_server_has_the_right_policy_but_no_persistence_or_password(redis: Any) -> None:
    findings = await check_server(redis)
    assert [f.level for f in findings] == ["warning", "warning"]
    assert "appendonly yes" in findings[0].message and "requirepass" in findings[1].message


async def test_an_evicting_policy_is_an_error_naming_the_fix(redis: Any) -> None:
    await redis.config_set("maxmemory-policy", "volatile-lru")  # managed Redis' usual default
    errors = [f for f in await check_server(redis) if f.level == "error"]
    assert len(errors) == 1
    assert "volatile-lru" in errors[0].message and "maxmemory-policy noeviction" in errors[0].message


async def test_persistence_and_password_are_recognised(redis: Any, own_redis: RedisServer) -> None:
    await redis.config_set("appendonly", "yes")
    await redis.config_set("requirepass", "a-long-test-password")
    authed = connect(f"redis://:a-long-test-password@127.0.0.1:{own_redis.port}/0")
    try:
        assert await check_server(authed) == []
    finally:
        await authed.aclose()
    # The test Redis writes its files in its own temporary directory, never into the checkout.
    assert not (PROJECT_ROOT / "appendonlydir").exists()


async def test_unreachable_server_is_an_error_without_credentials() -> None:
    findings = await check_url(f"redis://:secret-pw@127.0.0.1:{free_port()}/0")
    assert [f.level for f in findings] == ["error"]
    assert "unreachable" in findings[0].message and "secret-pw" not in findings[0].message


def _start_up_check(tmp_path: Path, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    env.update(REQUIRED, REDIS_URL=redis_url, PYTHONPATH=str(PROJECT_ROOT))
    return subprocess.run(
        [sys.executable, "-m", "services.settings"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_start_up_check_refuses_an_evicting_redis(
    tmp_path: Path, redis: Any, own_redis: RedisServer
) -> None:
    ok = _start_up_check(tmp_path, own_redis.url)
    assert ok.returncode == 0 and "configuration ok" in ok.stdout
    assert "redis warning" in ok.stderr  # no persistence: said, not refused
    await redis.config_set("maxmemory-policy", "allkeys-lru")
    refused = _start_up_check(tmp_path, own_redis.url)
    assert refused.returncode == 3
    assert "allkeys-lru" in refused.stderr and "CONFIG SET maxmemory-policy noeviction" in refused.stderr
