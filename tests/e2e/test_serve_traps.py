"""Two operator traps of `make serve` (issue 14), each on the real runtime:

- `make serve` on a Redis that `make run` (motia dev) has used: the two modes once kept BullMQ
  queues under different prefixes and serve crashed at start ("Queue name cannot contain :").
  Now they share "motia:events": serve starts, and works on the same queues.
- A PORT above 43857: serve opens no second (HMR) port, so any port works.

The serve here has no Workbench login configured: then the Workbench is not served at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.e2e.conftest import signed_update_batch
from tests.support.processes import free_high_port, listening_ports, run_redis
from tests.support.stack import Stack, run_stack, wait_until

pytestmark = pytest.mark.e2e

QUEUE = "motia:events:vmh.beteiligte.update.BeteiligteSync"


def post_update_webhook(stack: Stack) -> httpx.Response:
    raw, headers = signed_update_batch("trap-")
    return httpx.post(
        stack.motia_url + "/vmh/webhook/beteiligte/update", content=raw, headers=headers, timeout=60
    )


def processed(r: Any) -> int:
    """Jobs of the update queue that a worker has finished (completed or failed)."""
    return int(r.zcard(f"{QUEUE}:completed")) + int(r.zcard(f"{QUEUE}:failed"))


@pytest.fixture(scope="module")
def used_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis that `make run`'s command (motia dev) has worked on, then stopped."""
    with run_redis() as server:
        log_dir: Path = tmp_path_factory.mktemp("make-run")
        with run_stack(
            log_dir, motia_command="dev", redis_url=server.url, sandbox_args=["--no-demo"], workbench=True
        ) as dev:
            r = redis.Redis.from_url(server.url)
            assert post_update_webhook(dev).status_code == 200
            wait_until(lambda: processed(r) >= 1, timeout=120, message="motia dev worked a job")
        yield server.url


@pytest.fixture(scope="module")
def served_high(used_redis: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    port = free_high_port()
    env = {"WORKBENCH_USER": "", "WORKBENCH_PASSWORD": ""}
    with run_stack(
        tmp_path_factory.mktemp("serve-high"),
        command=["bash", "scripts/serve.sh"],
        redis_url=used_redis,
        motia_port=port,
        extra_env=env,
        sandbox_args=["--no-demo"],
        workbench=True,
    ) as s:
        time.sleep(3)  # the queues plugin's start-up discovery is where the old crash happened
        yield s


def test_serve_starts_on_a_redis_make_run_used_and_above_port_43857(served_high: Stack) -> None:
    assert served_high.motia_port > 43857
    assert served_high.procs["motia"].poll() is None, served_high.log_text("motia")[-3000:]
    log = served_high.log_text("motia")
    assert "Queue name cannot contain" not in log and "Server ready" in log
    assert f"listening on port {served_high.motia_port}" in log  # no silent fallback to another port


def test_serve_works_on_the_queues_make_run_left(served_high: Stack) -> None:
    r = redis.Redis.from_url(served_high.redis_url)
    before = processed(r)
    assert before >= 1  # the job of the make run above, under the shared prefix
    assert post_update_webhook(served_high).status_code == 200
    wait_until(
        lambda: processed(r) > before, timeout=120, message="make serve worked a job on the same queue"
    )
    assert not list(r.scan_iter("motia:vmh.beteiligte.*"))  # nothing under the old `motia start` prefix


def test_serve_opens_one_port_only(served_high: Stack) -> None:
    assert listening_ports(served_high.procs["motia"].pid) == {served_high.motia_port}


def test_without_a_login_the_workbench_is_not_served(served_high: Stack) -> None:
    log = served_high.log_text("motia")
    assert "Workbench: off" in log and "[port-gate] Workbench not served on this port" in log
    for path in ("/", "/__motia/bullmq/queues", "/src/main.tsx", "/@vite/client"):
        resp = httpx.get(served_high.motia_url + path, timeout=60)
        assert resp.status_code == 404, (path, resp.status_code)
    assert (
        httpx.post(served_high.motia_url + "/emit", json={"topic": "x", "data": {}}, timeout=60).status_code
        == 404
    )
