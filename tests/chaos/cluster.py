"""Two service instances (two Motia runtimes) on one Redis, behind a round-robin balancer, with
both simulators: the deployment "several instances on one Redis" as a test can run it.

- `Balancer`: a small HTTP reverse proxy on the port the sandbox's webhooks (and the tests'
  ops calls) use. It sends each request to the next instance in turn and, like a load
  balancer's passive health check, to the other one when an instance refuses the connection
  (killed, restarting). It counts requests per instance.
- `RestartableRedis`: a redis-server on a fixed spare port that can be restarted empty (no
  persistence, as the default Debian Redis and `make run`), keeping its URL.
- `Cluster` (a `Stack`): `motia_url` is the balancer; `instances` are the two Motia processes,
  which can be killed (SIGKILL of the process group) and restarted on their port.
"""

from __future__ import annotations

import http.client
import itertools
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.processes import (
    PROJECT_ROOT,
    free_motia_port,
    free_port,
    spawn_redis,
    stop_process_group,
    wait_for_port,
)
from tests.support.stack import _ANSI, MOTIA, Stack, sandbox_command, service_env

READY = re.compile(r"Server ready and listening on port (\d+)")
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class Balancer:
    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self.port = free_port()
        self.sent: Counter[int] = Counter()  # requests answered, per backend port
        self.failovers = 0
        self._next = itertools.cycle(range(len(backends)))
        self._lock = threading.Lock()
        balancer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _proxy(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                status, out_headers, data = balancer.forward(self.command, self.path, headers, body)
                self.send_response(status)
                for name, value in out_headers:
                    if name.lower() not in HOP_HEADERS:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _proxy

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        with self._lock:
            first = next(self._next)
        for i in range(len(self.backends)):
            port = self.backends[(first + i) % len(self.backends)]
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=130)
            try:
                conn.request(method, path, body=body, headers=headers)
            except OSError:  # refused: that instance is down; the other one takes it
                conn.close()
                with self._lock:
                    self.failovers += 1
                continue
            try:
                resp = conn.getresponse()
                data = resp.read()
                with self._lock:
                    self.sent[port] += 1
                return resp.status, resp.getheaders(), data
            except OSError:
                return 502, [], b"instance went away mid-request"
            finally:
                conn.close()
        return 503, [], b"no instance up"


@dataclass
class RestartableRedis:
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = spawn_redis(self.port, "--maxmemory-policy", "noeviction")
        wait_for_port(self.port, 15, self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc, grace=1.0)

    def restart_empty(self, down_seconds: float = 2.0) -> None:
        """Kill it (nothing persisted) and start it again on the same port."""
        assert self.proc is not None
        os.killpg(os.getpgid(self.proc.pid), signal.SIGKILL)
        self.proc.wait(timeout=10)
        time.sleep(down_seconds)
        self.start()
        self.restarts += 1


@dataclass
class Instance:
    name: str
    port: int
    proc: subprocess.Popen[bytes] | None = None
    kills: int = 0
    starts: int = 0


@dataclass
class Cluster(Stack):
    instances: list[Instance] = field(default_factory=list)
    balancer: Balancer | None = None
    redis_server: RestartableRedis | None = None
    log_dir: Path = field(default_factory=Path)

    def motia_procs(self) -> list[subprocess.Popen[bytes]]:
        return [i.proc for i in self.instances if i.proc is not None and i.proc.poll() is None]

    def log_text(self, name: str) -> str:
        if name != "motia":
            return super().log_text(name)
        return "\n".join(super(Cluster, self).log_text(i.name) for i in self.instances)

    def start_instance(self, inst: Instance, timeout: float = 120) -> None:
        env = {**self.env, "PORT": str(inst.port)}
        log_path = self.log_dir / f"{inst.name}.log"
        mark = log_path.stat().st_size if log_path.exists() else 0
        log_file = open(log_path, "ab")
        inst.proc = subprocess.Popen(
            [MOTIA, "start", "-H", "127.0.0.1", "-p", str(inst.port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.logs[inst.name] = log_path
        self.procs[inst.name] = inst.proc
        inst.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = _ANSI.sub("", log_path.read_bytes()[mark:].decode(errors="replace"))
            ready = READY.search(text)
            if ready:
                # A port taken meanwhile makes Motia fall back to the next one (with a warning):
                # the balancer follows it.
                self._moved(inst, int(ready.group(1)))
                wait_for_port(inst.port, timeout, inst.proc)
                return
            if inst.proc.poll() is not None:
                raise RuntimeError(f"{inst.name} exited:\n{text[-3000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"{inst.name} not ready")

    def _moved(self, inst: Instance, port: int) -> None:
        if port == inst.port:
            return
        assert self.balancer is not None
        self.balancer.backends[self.balancer.backends.index(inst.port)] = port
        inst.port = port

    def stop_instances(self) -> None:
        for inst in self.instances:
            if inst.proc is not None:
                stop_process_group(inst.proc)

    def kill_instance(self, inst: Instance) -> None:
        """SIGKILL the whole instance (Node runtime and its step processes), as a crash would."""
        assert inst.proc is not None
        os.killpg(os.getpgid(inst.proc.pid), signal.SIGKILL)
        inst.proc.wait(timeout=10)
        inst.kills += 1

    def figures(self) -> dict[str, Any]:
        assert self.balancer is not None
        return {
            "instances": len(self.instances),
            "requests_per_instance": {i.name: self.balancer.sent[i.port] for i in self.instances},
            "failovers": self.balancer.failovers,
            "instance_kills": sum(i.kills for i in self.instances),
            "instance_starts": sum(i.starts for i in self.instances),
            "redis_restarts": self.redis_server.restarts if self.redis_server else 0,
        }


@contextmanager
def run_cluster(
    log_dir: Path, *, sandbox_args: list[str] | None = None, extra_env: dict[str, str] | None = None
) -> Iterator[Cluster]:
    with ExitStack() as cleanup:
        redis = RestartableRedis()
        redis.start()
        cleanup.callback(redis.stop)
        espo_port, advo_port = free_port(), free_port()
        ports = [free_motia_port(), free_motia_port()]
        balancer = Balancer(ports)
        balancer.start()
        cleanup.callback(balancer.stop)
        env = service_env(redis.url, espo_port, advo_port)
        env.update(extra_env or {})
        cluster = Cluster(
            redis.url,
            espo_port,
            advo_port,
            balancer.port,
            env,
            instances=[Instance("motia", ports[0]), Instance("motia-b", ports[1])],
            balancer=balancer,
            redis_server=redis,
            log_dir=log_dir,
        )
        sandbox_log = open(log_dir / "sandbox.log", "wb")
        sandbox = subprocess.Popen(
            sandbox_command(
                espo_port,
                advo_port,
                "--webhook-base",
                f"http://127.0.0.1:{balancer.port}/vmh/webhook/beteiligte",
                *(sandbox_args or []),
            ),
            cwd=PROJECT_ROOT,
            env=env,
            stdout=sandbox_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        cluster.logs["sandbox"] = log_dir / "sandbox.log"
        cluster.procs["sandbox"] = sandbox
        cleanup.callback(stop_process_group, sandbox)
        wait_for_port(espo_port, 60, sandbox)
        wait_for_port(advo_port, 60, sandbox)
        cleanup.callback(cluster.stop_instances)
        for inst in cluster.instances:
            cluster.start_instance(inst)
        yield cluster
