from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.processes import RedisServer, run_redis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on a spare port for this test session, stopped by PID."""
    with run_redis() as server:
        yield server
