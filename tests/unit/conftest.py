"""Fixtures of the fast unit tests (no processes). See tests/conftest.py for the layout."""

from __future__ import annotations

from collections.abc import AsyncIterator

import fakeredis
import pytest

from tests.support.fakes import fake_redis
from tests.support.runtime import World, fake_world


@pytest.fixture
async def redis() -> AsyncIterator[fakeredis.FakeAsyncRedis]:
    """A fresh in-memory Redis per test (decode_responses, like the service's connection)."""
    r = fake_redis()
    yield r
    await r.aclose()


@pytest.fixture
def world(request: pytest.FixtureRequest) -> World:
    """The unit tests' one world (tests/support/runtime.py `World`): fakes, an in-memory Redis and
    the service's wiring with its metrics. Settings overrides come from the closest
    `pytest.mark.world(...)` (a module's `pytestmark` or a test's mark)."""
    marker = request.node.get_closest_marker("world")
    return fake_world(**(marker.kwargs if marker else {}))
