"""The chaos scenario's own stack: two service instances (two real Motia runtimes) on one real
Redis behind a round-robin balancer (tests/chaos/cluster.py), both simulators, with short time
limits so that recovery (stale locks, failed-record back-off) happens within the test.

Settings used here (all real service settings, see .env.example):
  HTTP_TIMEOUT_SECONDS=2          injected "timeout" faults (3 s) really time out
  SYNC_LOCK_TTL_SECONDS=6         a killed worker's record lock expires after 6 s
  SYNC_STALE_SYNCING_SECONDS=8    the sweep picks up a record left `syncing` after 8 s
  SYNC_RETRY_BASE_SECONDS=1       failed records are retried after 1 s, 2 s, 4 s ...
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.chaos.cluster import Cluster, run_cluster

CHAOS_ENV = {
    "HTTP_TIMEOUT_SECONDS": "2",
    "SYNC_LOCK_TTL_SECONDS": "6",
    "SYNC_STALE_SYNCING_SECONDS": "8",
    "SYNC_RETRY_BASE_SECONDS": "1",
}


# Session-scoped: the convergence scenario and the recovery cases run one after another on one
# worker (tests/conftest.py LANES) and share the cluster; each case works on records of its own.
@pytest.fixture(scope="session")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    log_dir = tmp_path_factory.mktemp("chaos-stack")
    sandbox_args = [
        "--no-demo",
        "--webhook-shuffle",
        "--webhook-retry-delay",
        "1",
        "--seed",
        os.environ.get("CHAOS_SEED", "8"),
    ]
    with run_cluster(log_dir, sandbox_args=sandbox_args, extra_env=CHAOS_ENV) as cluster:
        yield cluster
