"""Shared fixtures. Define a fixture once, in the conftest.py of the narrowest folder that needs it:

- here: `redis_server`, one real redis-server per test session (started on a spare port,
  stopped by PID);
- tests/unit/conftest.py: `redis`, a fresh fakeredis per test; `world`, the unit tests' one typed
  world (tests/support/runtime.py `World`: clock, fakeredis, fake EspoCRM and Advoware, the
  service's runtime with its metrics), its Settings overrides from `pytest.mark.world(...)`;
- tests/integration/conftest.py: `redis`, a connection to the session's real redis-server;
- tests/sandbox/conftest.py, tests/e2e/conftest.py, tests/chaos/conftest.py: the simulators and
  the started stacks of those folders.

A new end-to-end test (tests/e2e) takes `stack` (and `actor`, a person on it): the one running
stack of its test process (Redis, both simulators with the demo data, Motia with the default
settings), its data fresh for the module (simulators reset, every `vmh:*` key gone, as after a
first start: no watermarks, no identity index yet, no cron held) and the simulators' modes (faults, drift,
latency, webhook settings) back to the start before each test. Tests of one module share the
data, so give records unique names. Take `module_stack` instead when module-scoped fixtures of
yours build state for several tests (it resets once per module, not the modes per test);
`pytestmark = pytest.mark.sandbox(demo=False)` gives the module empty simulators (the mark's
arguments are the body of `/__sandbox/reset`). Only a test that needs other service settings
(an environment variable), its own Redis to stop, or another command (`make serve`, `motia dev`)
starts a stack of its own with `run_stack(...)` in a module fixture; look first whether an
existing one has those settings (`served` for `make serve`). A stack serves no Workbench unless
started with `workbench=True` (`served` is; tests/support/stack.py `service_env` says why). How
the reset works: tests/support/shared_stack.py.

Plain helpers (not fixtures) live in tests/support/: `fakes.py` (fake clients, `Clock`,
`fake_redis()`), `runtime.py` (`fake_runtime`, `World`, `fake_world()` for a world built in a test), `stack.py` and `processes.py`
(started processes), `sweep_cost.py` (call-log measurements shared with bench/).

How `make test` runs the tests outside the unit tier: on several workers (pytest-xdist,
`--dist loadgroup`), each module one unit of work handed to one worker (its module fixtures built
once), the modules of one lane in LANES below one after another on one worker. Most of their time
is waiting for the service, not CPU. Each worker starts the e2e stacks it needs itself
(`shared_stack`, `served`: session fixtures, one per worker); every stack is on spare ports with its
own Redis and temp directories, so workers share nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from tests.support.processes import RedisServer, run_redis

# Lanes: modules that run on one worker, one after another, in this order; the lanes are handed
# out first, heaviest first, then every other module as a unit of its own in collection order,
# the unit tier's last (a module that takes minutes belongs in a lane here, or at least near the
# top). A lane keeps together what shares a stack (`served`) and keeps the heavy runs (the chaos
# run, the outages, the browser tests) off one worker, where they would starve each other.
# The order is by the lanes' durations in a parallel run (a fresh clone on three workers: chaos
# 251 s, served 114 s, outage 172 s, EspoCRM's outage 122 s, secrets 76 s, ops 70 s, operations
# 58 s, redis faults 39 s; `VMH_TEST_TIMELINE` in the README shows them per worker); the two
# outages, mostly waiting for the minute's probe, start early so that their waits overlap the
# rest. The chaos run and EspoCRM's outage are one test each: alone in a lane, xdist would queue
# the next unit behind it at once (it hands a worker more work when 2 or fewer of its tests are left).
LANES: dict[str, tuple[str, ...]] = {
    "served": (
        "tests/e2e/test_sync_console_e2e.py",
        "tests/e2e/test_port_gate.py",
        "tests/e2e/test_workbench_view.py",
    ),
    "chaos": ("tests/chaos/test_convergence.py", "tests/chaos/test_recovery.py"),
    "outage": ("tests/e2e/test_outage_e2e.py",),
    "outage-espocrm": ("tests/e2e/test_outage_espocrm_e2e.py", "tests/e2e/test_typed_values_e2e.py"),
    "secrets": ("tests/e2e/test_secrets.py",),
    "ops": ("tests/e2e/test_ops_e2e.py",),
    "operations": ("tests/e2e/test_operations_e2e.py",),
    "redis-faults": ("tests/e2e/test_redis_faults.py",),
}


# `make test` runs them in the same session as the stacks, after every stack module; their slowest
# modules (the property tests, 10-20 s each) first among them, so that none starts last and runs alone.
UNIT_TIER = ("tests/unit/", "tests/sandbox/")
UNIT_SLOWEST = ("tests/unit/test_mapper_properties.py", "tests/unit/test_fuzz_intake.py")


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the xdist_group marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Lanes first, in LANES' order, the unit tier last; every test marked with its lane or, outside
    one, its module as the `xdist_group` (`--dist loadgroup` then hands out whole lanes and modules)."""
    place = {
        module: (rank, pos) for rank, lane in enumerate(LANES.values()) for pos, module in enumerate(lane)
    }
    lane_of = {module: name for name, lane in LANES.items() for module in lane}
    order = {id(item): n for n, item in enumerate(items)}
    place.update({module: (len(LANES) + 1, pos) for pos, module in enumerate(UNIT_SLOWEST)})
    # The unit tier: short CPU-only modules that fill the idle end.
    unit = (len(LANES) + 1, len(UNIT_SLOWEST))
    items.sort(
        key=lambda item: (
            *place.get(_module(item), unit if _module(item).startswith(UNIT_TIER) else (len(LANES), 0)),
            order[id(item)],
        )
    )
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(lane_of.get(_module(item), _module(item))))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on a spare port for this test session, stopped by PID."""
    with run_redis() as server:
        yield server


# VMH_TEST_TIMELINE=<file>: each test's worker, start and end (epoch seconds) and id appended to
# the file, to see how a parallel run's lanes fill the workers (which one ends last, and why).
_TIMELINE = os.environ.get("VMH_TEST_TIMELINE")
if _TIMELINE:

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
        start = time.time()
        yield
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(str(_TIMELINE), "a", encoding="utf-8") as out:
            out.write(f"{worker} {start:.1f} {time.time():.1f} {item.nodeid}\n")
