"""The whole system for end-to-end tests: a real Redis, the sandbox simulators and the
real Motia runtime, each on a spare port, started and stopped by PID (process group)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sandbox.act import Actor
from tests.support.processes import (
    PROJECT_ROOT,
    RedisServer,
    free_motia_port,
    free_port,
    run_redis,
    stop_process_group,
    wait_for_port,
)

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
PY = str(PROJECT_ROOT / "python_modules" / "bin" / "python")
MOTIA = str(PROJECT_ROOT / "node_modules" / ".bin" / "motia")


def sandbox_command(espo_port: int, advo_port: int, *args: str, python: str = PY) -> list[str]:
    """`python -m sandbox` on these ports, with `args` added."""
    return [python, "-m", "sandbox", "--espo-port", str(espo_port), "--advo-port", str(advo_port), *args]


def read_dotenv(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        env[name.strip()] = value.strip().strip('"').strip("'")
    return env


@dataclass
class Stack:
    redis_url: str
    espo_port: int
    advo_port: int
    motia_port: int
    env: dict[str, str]
    logs: dict[str, Path] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    redis: RedisServer | None = None  # stop()/start() it to test Redis faults

    @property
    def motia_url(self) -> str:
        return f"http://127.0.0.1:{self.motia_port}"

    @property
    def espo_url(self) -> str:
        return f"http://127.0.0.1:{self.espo_port}"

    @property
    def advo_url(self) -> str:
        return f"http://127.0.0.1:{self.advo_port}"

    def log_text(self, name: str) -> str:
        """The process's output without ANSI colour codes (picocolors colours it when CI=true)."""
        if name not in self.logs:
            return ""
        return _ANSI.sub("", self.logs[name].read_text(errors="replace"))


def _start(
    name: str, cmd: list[str], env: dict[str, str], log_dir: Path, stack: Stack, cwd: Path = PROJECT_ROOT
) -> subprocess.Popen[bytes]:
    log_path = log_dir / f"{name}.log"
    log_file = open(log_path, "wb")
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
    )
    stack.logs[name] = log_path
    stack.procs[name] = proc
    return proc


def service_env(redis_url: str, espo_port: int, advo_port: int, *, workbench: bool = False) -> dict[str, str]:
    """The environment of a service runtime on the sandbox: ours, sandbox/sandbox.env, the
    simulators' URLs on these ports, and this Redis; the Workbench only with `workbench`."""
    env = dict(os.environ)
    env.update(read_dotenv(PROJECT_ROOT / "sandbox" / "sandbox.env"))
    env["ESPOCRM_API_BASE_URL"] = f"http://127.0.0.1:{espo_port}/api/v1"
    env["ADVOWARE_API_BASE_URL"] = f"http://127.0.0.1:{advo_port}/"
    env["ADVOWARE_SECURITY_URL"] = f"http://127.0.0.1:{advo_port}/"
    env.update(
        {
            "REDIS_URL": redis_url,
            "MOTIA_ANALYTICS_DISABLED": "true",
            "PYTHONUNBUFFERED": "1",
            # Plain log files: CI=true makes Motia's picocolors emit colour codes.
            "NO_COLOR": "1",
            # A test stack is a sandbox on 127.0.0.1: Workbench routes open on loopback
            # (as in `make run`); tests of the port gate override this.
            "WORKBENCH_OPEN_LOCAL": "true",
        }
    )
    if not workbench:
        # The sync's tests never open the Workbench, and its first start in a checkout bundles
        # the UI's dependencies (Vite: 10-20 s of CPU per runtime, every worker's stack at once
        # when the suite starts). `scripts/serve.sh` decides for itself by its login: stacks
        # started with it, and tests of what a person sees, pass `workbench=True`.
        env["MOTIA_DOCKER_DISABLE_WORKBENCH"] = "true"
    return env


@contextmanager
def run_stack(
    log_dir: Path,
    *,
    sandbox_args: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
    motia_command: str = "start",
    command: list[str] | None = None,
    redis_url: str | None = None,
    motia_port: int | None = None,
    workbench: bool = False,
) -> Iterator[Stack]:
    """`command` replaces `motia <motia_command> -H 127.0.0.1 -p PORT` (e.g. scripts/serve.sh,
    which reads PORT from the environment). `redis_url`: use that Redis (e.g. one a previous
    stack used) instead of starting a fresh one; `motia_port`: that port instead of a spare one;
    `workbench`: serve the Workbench (off by default, see `service_env`)."""
    with ExitStack() as cleanup:
        # A Redis of our own unless one is given (then stack.redis is None: not ours to stop).
        redis = None if redis_url else cleanup.enter_context(run_redis())
        url = redis.url if redis is not None else str(redis_url)
        espo_port, advo_port = free_port(), free_port()
        motia_port = motia_port or free_motia_port()
        env = service_env(url, espo_port, advo_port, workbench=workbench)
        env["PORT"] = str(motia_port)
        env.update(extra_env or {})
        stack = Stack(url, espo_port, advo_port, motia_port, env, redis=redis)
        sandbox = _start(
            "sandbox",
            sandbox_command(
                espo_port,
                advo_port,
                "--webhook-base",
                f"http://127.0.0.1:{motia_port}/vmh/webhook/beteiligte",
                *(sandbox_args or []),
            ),
            env,
            log_dir,
            stack,
        )
        cleanup.callback(stop_process_group, sandbox)
        motia_cmd = command or [MOTIA, motia_command, "-H", "127.0.0.1", "-p", str(motia_port)]
        motia = _start("motia", motia_cmd, env, log_dir, stack)
        cleanup.callback(stop_process_group, motia)
        wait_for_port(espo_port, 60, sandbox)
        wait_for_port(advo_port, 60, sandbox)
        wait_for_port(motia_port, 120, motia)
        _wait_ready(stack)
        yield stack


def _wait_ready(stack: Stack, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "Server ready" in stack.log_text("motia"):
            return
        if stack.procs["motia"].poll() is not None:
            raise RuntimeError("motia exited:\n" + stack.log_text("motia")[-3000:])
        time.sleep(0.1)
    raise TimeoutError("motia not ready:\n" + stack.log_text("motia")[-3000:])


def wait_until(
    predicate: Any, timeout: float = 30.0, interval: float = 0.2, message: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}; last={last!r}")


# --------------------------------------------------------------------------- EspoCRM as a person
def espo_get(actor: Actor, rid: str) -> dict[str, Any]:
    """The full CBeteiligte record, read through the simulator's API as anna.admin."""
    resp = actor.espo.get(f"CBeteiligte/{rid}")
    resp.raise_for_status()
    return dict(resp.json())


def espo_create(actor: Actor, body: dict[str, Any]) -> str:
    """Create a CBeteiligte as anna.admin (no duplicate check); its id."""
    resp = actor.espo.post("CBeteiligte", json=body, headers={"X-Skip-Duplicate-Check": "true"})
    assert resp.status_code == 200, resp.text
    return str(resp.json()["id"])


def wait_linked(actor: Actor, rid: str, timeout: float = 60) -> dict[str, Any]:
    """Wait until the service has linked the record (betnr set) and it is clean; the record."""
    return dict(
        wait_until(
            lambda: (r := espo_get(actor, rid)).get("betnr") and r.get("syncStatus") == "clean" and r,
            timeout=timeout,
            message=f"record {rid} linked and clean",
        )
    )


def client(base_url: str, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers=headers, timeout=30)


if __name__ == "__main__":  # manual: python -m tests.support.stack  (starts the stack, Ctrl-C stops)
    import tempfile

    with run_stack(Path(tempfile.mkdtemp())) as s:
        print("motia", s.motia_url, "espo", s.espo_url, "advo", s.advo_url, file=sys.stderr)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
