"""The Redis settings check without a server: managed Redis that denies CONFIG/INFO/ACL, and
the sweep's report of an evicting policy (the real-server cases: tests/integration)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from redis.exceptions import NoPermissionError, ResponseError

from services.store.server_check import check_server
from services.sync.sweep_runner import _report_server_config


class ManagedRedis:
    """INFO allowed, CONFIG and ACL denied, as on many hosted Redis services."""

    def __init__(self, policy: str | None) -> None:
        self.policy = policy

    async def info(self, _section: str) -> dict[str, Any]:
        if self.policy is None:
            raise ResponseError("unknown command 'INFO'")
        return {"maxmemory_policy": self.policy}

    async def config_get(self, name: str) -> dict[str, str]:
        raise ResponseError("unknown command 'CONFIG'")

    async def acl_list(self) -> list[str]:
        raise NoPermissionError("this user has no permissions to run the 'acl|list' command")


async def test_managed_redis_with_noeviction_is_fine() -> None:
    assert await check_server(ManagedRedis("noeviction")) == []  # type: ignore[arg-type]


async def test_managed_redis_default_policy_is_an_error() -> None:
    findings = await check_server(ManagedRedis("volatile-lru"))  # type: ignore[arg-type]
    assert [f.level for f in findings] == ["error"] and "volatile-lru" in findings[0].message


async def test_unreadable_policy_is_a_warning_naming_the_requirement() -> None:
    findings = await check_server(ManagedRedis(None))  # type: ignore[arg-type]
    assert [f.level for f in findings] == ["warning"] and "noeviction" in findings[0].message


async def test_every_sweep_logs_an_evicting_policy(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="services.sync.sweep_runner"):
        await _report_server_config(ManagedRedis("allkeys-lru"))
    assert any("allkeys-lru" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="services.sync.sweep_runner"):
        await _report_server_config(ManagedRedis("noeviction"))
    assert not caplog.records
