"""Start and stop real servers for integration/e2e tests: spare ports, stop by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


_HANDED_OUT: set[int] = set()


def _spare(low: int, high: int, also_free: int = 0) -> int:
    """A random free port in [low, high) (and `port + also_free` free too, if given) of this test
    process's own residue class: under pytest-xdist, worker gwN of M takes only ports p with
    p % M == N, so two workers starting stacks at the same moment never choose the same port (the
    kernel's bind-to-0 would hand both the one it just freed)."""
    import random

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    first = low + (worker - low) % workers
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(first, high, workers)
        # Not one handed out before: two ports chosen back to back are both still unbound.
        if port not in _HANDED_OUT and _is_free(port) and (not also_free or _is_free(port + also_free)):
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError(f"no free port in {low}-{high}")


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports: a port chosen inside it can be
    taken by any client's connection between the check and the server's bind."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


EPHEMERAL = _ephemeral_range()


def free_port() -> int:
    return _spare(20000, min(EPHEMERAL[0], 32768))


# `motia dev` (make run) also opens the Workbench's Vite HMR server on 21678 + PORT, so its port
# stays below 43858 and that second port must be free too. `motia start` (make serve) opens only
# PORT (core patch no-hmr-server); the same spare pair works for both.
MOTIA_HMR_OFFSET = 21678


def free_motia_port() -> int:
    return _spare(20000, min(EPHEMERAL[0], 32768), also_free=MOTIA_HMR_OFFSET)


def free_high_port() -> int:
    """A spare port above 43857: one `motia dev` could not use (its HMR port would pass 65535),
    above the ephemeral range where the machine has ports left (Linux's default ends at 60999)."""
    low = max(43858 + 1000, EPHEMERAL[1] + 1)
    return _spare(low if low < 65000 else 43858 + 1000, 65001)


def listening_ports(pid: int) -> set[int]:
    """TCP ports process `pid` listens on (its socket fds matched against /proc/net/tcp*)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open within {timeout}s")


def stop_process_group(proc: subprocess.Popen[bytes], grace: float = 3.0) -> None:
    """SIGTERM the process group, then SIGKILL after `grace` seconds."""
    if proc.poll() is not None:
        return
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        return
    os.killpg(pgid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        proc.wait(timeout=5)


@dataclass
class RedisServer:
    port: int
    pid: int
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        """Stop it (by PID); its data is gone (no persistence): a restart comes back empty."""
        if self.proc is not None:
            stop_process_group(self.proc)
        wait_for_port_closed(self.port)

    def start(self) -> None:
        """Start it again on the same port, empty."""
        self.proc = spawn_redis(self.port)
        self.pid = self.proc.pid
        wait_for_port(self.port, 15, self.proc)


def redis_server_binary() -> str:
    path = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(path).exists():
        raise RuntimeError("redis-server not installed: run `make install` (apt-get install redis-server)")
    return path


def spawn_redis(port: int, *args: str) -> subprocess.Popen[bytes]:
    """redis-server on 127.0.0.1:`port` without persistence (`args` added), its own process group.

    Its working directory is a fresh temporary one: a test that switches persistence on at run time
    (CONFIG SET appendonly yes) must not write Redis files into the checkout."""
    workdir = tempfile.mkdtemp(prefix=f"vmh-redis-{port}-")
    return subprocess.Popen(
        [
            redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            workdir,
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=workdir,
    )


def wait_for_port_closed(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
        except OSError:
            return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} still open after {timeout}s")


@contextmanager
def run_redis() -> Iterator[RedisServer]:
    port = free_port()
    server = RedisServer(port=port, pid=0)
    server.start()
    try:
        yield server
    finally:
        if server.proc is not None:
            stop_process_group(server.proc)
