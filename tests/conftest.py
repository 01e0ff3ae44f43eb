"""Shared fixtures. Define a fixture once, in the conftest.py of the narrowest folder that needs it:

- here: `redis_server`, one real redis-server per test session (started on a spare port,
  stopped by PID);
- tests/unit/conftest.py: `redis`, a fresh fakeredis per test;
- tests/integration/conftest.py: `redis`, a connection to the session's real redis-server;
- tests/sandbox/conftest.py, tests/e2e/conftest.py, tests/chaos/conftest.py: the simulators and
  the started stacks of those folders.

Plain helpers (not fixtures) live in tests/support/: `fakes.py` (fake clients, `Clock`,
`fake_redis()`, `fake_env()` — the engine's unit-test world), `stack.py` and `processes.py`
(started processes), `sweep_cost.py` (call-log measurements shared with bench/).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.processes import RedisServer, run_redis


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on a spare port for this test session, stopped by PID."""
    with run_redis() as server:
        yield server
