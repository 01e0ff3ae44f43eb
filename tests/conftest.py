"""Shared fixtures. Define a fixture once, in the conftest.py of the narrowest folder that needs it:

- here: `redis_server`, one real redis-server per test session (started on a spare port,
  stopped by PID);
- tests/unit/conftest.py: `redis`, a fresh fakeredis per test; `world`, the unit tests' one typed
  world (tests/support/runtime.py `World`: clock, fakeredis, fake EspoCRM and Advoware, the
  service's runtime with its metrics), its Settings overrides from `pytest.mark.world(...)`;
- tests/integration/conftest.py: `redis`, a connection to the session's real redis-server;
- tests/sandbox/conftest.py, tests/e2e/conftest.py, tests/chaos/conftest.py: the simulators and
  the started stacks of those folders.

A new end-to-end test (tests/e2e) takes `stack` (and `actor`, a person on it): the package's one
running stack (Redis, both simulators with the demo data, Motia with the default settings), its
data fresh for the module (simulators reset, every `vmh:*` key gone, as after a first start: no
watermarks, no identity index yet, no cron held) and the simulators' modes (faults, drift,
latency, webhook settings) back to the start before each test. Tests of one module share the
data, so give records unique names. Take `module_stack` instead when module-scoped fixtures of
yours build state for several tests (it resets once per module, not the modes per test);
`pytestmark = pytest.mark.sandbox(demo=False)` gives the module empty simulators (the mark's
arguments are the body of `/__sandbox/reset`). Only a test that needs other service settings
(an environment variable), its own Redis to stop, or another command (`make serve`, `motia dev`)
starts a stack of its own with `run_stack(...)` in a module fixture; look first whether an
existing one has those settings (`served` for `make serve`). How the reset works:
tests/support/shared_stack.py.

Plain helpers (not fixtures) live in tests/support/: `fakes.py` (fake clients, `Clock`,
`fake_redis()`), `runtime.py` (`fake_runtime`, `World`, `fake_world()` for a world built in a test), `stack.py` and `processes.py`
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
