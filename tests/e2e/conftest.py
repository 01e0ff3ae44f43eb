from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox.act import Actor
from sandbox.signing import webhook_signature
from tests.support.processes import PROJECT_ROOT
from tests.support.shared_stack import StackDefaults, reset_modes, reset_stack
from tests.support.stack import Stack, read_dotenv, run_stack


def signed_update_batch(id_prefix: str) -> tuple[bytes, dict[str, str]]:
    """A one-item update-webhook batch for a new, unknown id, with the headers EspoCRM sends:
    signed with the update webhook's secret from sandbox/sandbox.env (what the stacks read)."""
    sandbox = read_dotenv(PROJECT_ROOT / "sandbox" / "sandbox.env")
    secrets = dict(pair.split(":", 1) for pair in sandbox["ESPOCRM_WEBHOOK_SECRETS"].split(","))
    webhook_id = next(i for i, s in secrets.items() if "update" in s)
    raw = json.dumps([{"id": id_prefix + uuid.uuid4().hex[:12]}]).encode()
    return raw, {
        "Content-Type": "application/json",
        "Signature": webhook_signature(webhook_id, secrets[webhook_id], raw),
    }


@dataclass
class Shared:
    """The e2e tests' one running stack (per test process) and the simulator settings it started with."""

    stack: Stack
    defaults: StackDefaults


# Session-scoped, not package-scoped: under `make test` a worker (pytest-xdist) runs e2e modules
# between chaos and integration ones, and a package fixture would be stopped and started again
# each time its worker comes back to the package.
@pytest.fixture(scope="session")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """Real Redis + sandbox simulators (demo data) + real Motia runtime with the default settings,
    started once per test process (each xdist worker) at first use. Tests take `stack` or `module_stack`."""
    # Its own TMPDIR: Motia hands large request bodies to the Python step through a temp file
    # (scripts/patch-motia-core.mjs, large-args); a test can check none is left behind.
    tmp = tmp_path_factory.mktemp("stack-tmpdir")
    for _attempt in range(3):
        log_dir: Path = tmp_path_factory.mktemp("stack")
        with run_stack(log_dir, extra_env={"TMPDIR": str(tmp)}) as s:
            # Another stack on this machine took the spare port between its choice and Motia's
            # start: Motia then listens elsewhere ("Port N was in use") and every call is refused.
            if "was in use" in s.log_text("motia"):
                continue
            yield Shared(s, StackDefaults.read(s))
            return
    pytest.fail("Motia found its port taken three times")


@pytest.fixture(scope="module")
def module_stack(shared_stack: Shared, request: pytest.FixtureRequest) -> Stack:
    """The shared stack with fresh data for this module: as just started on an empty Redis
    (tests/support/shared_stack.py). A `sandbox(...)` mark chooses the simulators' records."""
    marker = request.node.get_closest_marker("sandbox")
    reset_stack(shared_stack.stack, shared_stack.defaults, **(marker.kwargs if marker else {}))
    return shared_stack.stack


@pytest.fixture
def stack(module_stack: Stack, shared_stack: Shared) -> Stack:
    """The module's fresh stack, with the simulators' run-time modes (faults, drift, latency,
    webhook settings) back to the start and no cron tick held, for this test."""
    reset_modes(module_stack, shared_stack.defaults)
    return module_stack


@pytest.fixture
def actor(stack: Stack) -> Actor:
    """A person in both systems (EspoCRM anna.admin, Advoware ANNA) on `stack`."""
    return Actor(stack.espo_url, stack.advo_url)


WORKBENCH_LOGIN = ("kanzlei-it", "e2e-workbench-login-0815")


@dataclass
class Served:
    """`make serve`'s command (scripts/serve.sh) on the sandbox, with a Workbench login."""

    stack: Stack
    login: tuple[str, str]
    route_table: list[dict[str, Any]]


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One started `make serve` stack shared by the port-gate and Workbench-view tests."""
    log_dir: Path = tmp_path_factory.mktemp("served")
    table = log_dir / "routes.json"
    env = {
        "WORKBENCH_USER": WORKBENCH_LOGIN[0],
        "WORKBENCH_PASSWORD": WORKBENCH_LOGIN[1],
        "MOTIA_ROUTE_TABLE_FILE": str(table),
    }
    with run_stack(
        log_dir,
        extra_env=env,
        command=["bash", "scripts/serve.sh"],
        sandbox_args=["--no-demo"],
        workbench=True,
    ) as s:
        yield Served(s, WORKBENCH_LOGIN, json.loads(table.read_text()))
