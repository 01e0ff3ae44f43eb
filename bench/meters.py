"""What a scenario costs the machine, read from /proc: CPU seconds per component (`CpuMeter`)
and the peak RSS of the service's process tree (`RssSampler`). Nothing here asserts anything."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from tests.support.stack import Stack


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(name))
    return tree


def _descendants(root: int, tree: dict[int, list[int]]) -> list[int]:
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(tree.get(pid, []))
    return out


def _rss_kb(pid: int) -> tuple[int, str]:
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return 0, ""
    name, rss = "", 0
    for line in text.splitlines():
        if line.startswith("Name:"):
            name = line.split()[1]
        elif line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss, name


def redis_pid(port: int) -> int | None:
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        joined = b" ".join(cmd)
        if b"redis-server" in joined and str(port).encode() in joined:
            return int(name)
    return None


def stack_redis_pid(stack: Stack) -> int | None:
    return redis_pid(int(stack.redis_url.rsplit(":", 1)[1].split("/")[0]))


_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> tuple[float, float]:
    """(own, reaped children) CPU seconds of a process from /proc/<pid>/stat."""
    if not pid:
        return 0.0, 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    return (int(fields[11]) + int(fields[12])) / _TCK, (int(fields[13]) + int(fields[14])) / _TCK


def _machine_busy() -> float:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / _TCK


class CpuMeter:
    """CPU seconds spent during a scenario by: the Motia node process, its Python step processes
    (reaped children), the simulators, Redis, this benchmark process, and everything else on
    the machine (other users' work, which this shared machine may have)."""

    def __init__(self, stack: Stack) -> None:
        self.node = stack.procs["motia"].pid
        self.sandbox = stack.procs["sandbox"].pid
        self.redis = stack_redis_pid(stack)
        self.start: dict[str, float] = {}
        self.wall = 0.0

    def _read(self) -> dict[str, float]:
        node_self, node_children = cpu_seconds(self.node)
        me = cpu_seconds(os.getpid())
        return {
            "motia_node": node_self,
            "python_steps": node_children,
            "simulators": sum(cpu_seconds(self.sandbox)),
            "redis": cpu_seconds(self.redis)[0],
            "bench": sum(me),
            "machine": _machine_busy(),
            "t": time.monotonic(),
        }

    def __enter__(self) -> CpuMeter:
        self.start = self._read()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._read()
        self.delta = {k: end[k] - self.start[k] for k in end}

    def result(self, records: int | None = None) -> dict[str, Any]:
        d = dict(self.delta)
        wall = d.pop("t")
        machine = d.pop("machine")
        ours = sum(d.values())
        out: dict[str, Any] = {k: round(v, 1) for k, v in d.items()}
        out["others_on_machine"] = round(max(0.0, machine - ours), 1)
        out["wall"] = round(wall, 1)
        out["machine_busy_cores"] = round(machine / wall, 2) if wall else None
        if records:
            out["service_ms_per_record"] = round(1000 * (d["motia_node"] + d["python_steps"]) / records, 1)
        return out


class RssSampler:
    """Every `interval` s: RSS of the Motia process tree (node + its Python children), Redis and
    the sandbox, from /proc/<pid>/status VmRSS. Peaks are per category sums at one instant."""

    def __init__(self, stack: Stack, interval: float = 0.5) -> None:
        self.motia_pid = stack.procs["motia"].pid
        self.sandbox_pid = stack.procs["sandbox"].pid
        self.redis_pid = stack_redis_pid(stack)
        self.interval = interval
        self.peak: dict[str, int] = {}
        self.peak_python_procs = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        tree = _children()
        node = python = npy = 0
        for pid in _descendants(self.motia_pid, tree):
            rss, name = _rss_kb(pid)
            if name.startswith("python"):
                python += rss
                npy += 1
            else:
                node += rss  # node, and the sh/npm wrapper if any
        sandbox = sum(_rss_kb(p)[0] for p in _descendants(self.sandbox_pid, tree))
        redis = _rss_kb(self.redis_pid)[0] if self.redis_pid else 0
        current = {
            "service_total": node + python,
            "motia_node": node,
            "python_children": python,
            "redis": redis,
            "sandbox": sandbox,
        }
        for k, v in current.items():
            self.peak[k] = max(self.peak.get(k, 0), v)
        self.peak_python_procs = max(self.peak_python_procs, npy)
        self.samples += 1

    def result_mb(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: round(v / 1024, 1) for k, v in self.peak.items()}
        out["peak_python_processes"] = self.peak_python_procs
        out["samples"] = self.samples
        return out
