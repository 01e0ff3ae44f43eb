"""Fixtures of the integration tests (a real redis-server). See tests/conftest.py for the layout."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from services.store.connection import connect
from tests.support.processes import RedisServer


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A connection to the session's real redis-server, as the service opens it."""
    r = connect(redis_server.url)
    yield r
    await r.aclose()
