"""Fixtures of the fast unit tests (no processes). See tests/conftest.py for the layout."""

from __future__ import annotations

from collections.abc import AsyncIterator

import fakeredis
import pytest

from tests.support.fakes import fake_redis


@pytest.fixture
async def redis() -> AsyncIterator[fakeredis.FakeAsyncRedis]:
    """A fresh in-memory Redis per test (decode_responses, like the service's connection)."""
    r = fake_redis()
    yield r
    await r.aclose()
