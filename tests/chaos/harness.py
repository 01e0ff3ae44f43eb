"""Probes of the running system for the chaos scenario: is anything still in flight, run a
sweep, kill a sync worker mid-sync, read the simulators' call logs and the service's counters."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis

from sandbox import config as cfg
from services.store import keys
from tests.support.stack import Stack

ADMIN = {"Authorization": f"Bearer {cfg.SYNC_ADMIN_TOKEN}"}
SYNC_STEP = b"beteiligte_sync_step.py"
ANY_STEP = b"_step.py"
# BullMQ job lists/sets that mean "work not finished yet".
OPEN_JOB_KEYS = (
    ("wait", "list"),
    ("active", "list"),
    ("paused", "list"),
    ("delayed", "zset"),
    ("prioritized", "zset"),
)


@dataclass
class Probe:
    stack: Stack
    redis: Any = field(init=False)  # redis.Redis (sync; its stubs type results as Awaitable | T)
    sweeps: list[dict[str, Any]] = field(default_factory=list)
    sweep_errors: Counter[int] = field(default_factory=Counter)
    kills: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.redis = redis.Redis.from_url(self.stack.redis_url, decode_responses=True)

    def reconnect(self) -> None:
        """After a Redis restart: a fresh connection (the old one's socket is dead)."""
        self.redis.close()
        self.redis = redis.Redis.from_url(self.stack.redis_url, decode_responses=True)

    def service_answers(self) -> bool:
        try:
            resp = httpx.get(f"{self.stack.motia_url}/vmh/beteiligte/sync/status", headers=ADMIN, timeout=30)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    # ------------------------------------------------------------------ in flight?
    def open_jobs(self) -> int:
        total = 0
        for meta in self.redis.scan_iter("motia:*:meta", count=500):
            base = meta[: -len(":meta")]
            for suffix, kind in OPEN_JOB_KEYS:
                name = f"{base}:{suffix}"
                total += int(self.redis.llen(name) if kind == "list" else self.redis.zcard(name))
        return total

    def open_job_details(self) -> list[str]:
        """Where the open jobs are and what they carry (for the message of a wait that timed out)."""
        out = []
        for meta in self.redis.scan_iter("motia:*:meta", count=500):
            base = meta[: -len(":meta")]
            for suffix, kind in OPEN_JOB_KEYS:
                name = f"{base}:{suffix}"
                ids = self.redis.lrange(name, 0, 5) if kind == "list" else self.redis.zrange(name, 0, 5)
                for job_id in ids:
                    job = self.redis.hgetall(f"{base}:{job_id}")
                    out.append(
                        f"{name} job {job_id}: attempts={job.get('attemptsMade')} "
                        f"data={str(job.get('data'))[:200]} failed={str(job.get('failedReason'))[:200]}"
                    )
        return out

    def webhooks_pending(self) -> int:
        data = httpx.get(f"{self.stack.espo_url}/__sandbox/webhooks?log=0", timeout=30).json()
        return int(sum(data["pending"].values()) + data["retrying"])

    def sync_workers(self) -> list[tuple[int, str]]:
        return [(pid, data) for pid, data, _ in self._sync_children()]

    def step_processes(self) -> int:
        """Every Motia step process (also a webhook step between receiving and emitting)."""
        return len(self._sync_children(ANY_STEP))

    def quiet(self) -> bool:
        return self.open_jobs() == 0 and self.webhooks_pending() == 0 and self.step_processes() == 0

    def wait_quiet(self, timeout: float = 90.0, stable: float = 2.0) -> float:
        """Wait until no webhook, queued job or sync worker is left for `stable` seconds."""
        start = time.monotonic()
        since: float | None = None
        while time.monotonic() - start < timeout:
            if self.quiet():
                since = since or time.monotonic()
                if time.monotonic() - since >= stable:
                    return time.monotonic() - start
            else:
                since = None
            time.sleep(0.2)
        raise AssertionError(
            f"not quiet after {timeout}s: jobs={self.open_jobs()} webhooks={self.webhooks_pending()} "
            f"step processes={self.step_processes()}; open: {self.open_job_details()}"
        )

    # ------------------------------------------------------------------ ops
    def sweep(self, attempts: int = 10) -> dict[str, Any]:
        """Run the sweep now. Under faults it may fail (its reads hit the faults): try again."""
        for _ in range(attempts):
            resp = httpx.post(f"{self.stack.motia_url}/vmh/beteiligte/sync/sweep", headers=ADMIN, timeout=120)
            if resp.status_code == 200:
                summary = dict(resp.json())
                self.sweeps.append(summary)
                return summary
            assert resp.status_code != 401, resp.text
            self.sweep_errors[resp.status_code] += 1
            time.sleep(0.5)
        raise AssertionError(f"sweep failed {attempts} times: {dict(self.sweep_errors)}")

    def status_counts(self) -> dict[str, int]:
        resp = httpx.get(f"{self.stack.motia_url}/vmh/beteiligte/sync/status", headers=ADMIN, timeout=60)
        assert resp.status_code == 200, resp.text
        return dict(resp.json()["counts"])

    # ------------------------------------------------------------------ killing workers
    def motia_procs(self) -> list[Any]:
        """The running Motia runtimes (one, or both instances of a cluster)."""
        from tests.chaos.cluster import Cluster

        if isinstance(self.stack, Cluster):
            return self.stack.motia_procs()
        return [self.stack.procs["motia"]]

    def _sync_children(self, step: bytes = SYNC_STEP) -> list[tuple[int, str, float]]:
        """(pid, event data, age in s) of the BeteiligteSync step processes Motia is running."""
        pgids = set()
        for proc in self.motia_procs():
            try:
                pgids.add(os.getpgid(proc.pid))
            except ProcessLookupError:
                continue  # an instance that was just killed
        ticks = os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                if os.getpgid(pid) not in pgids:
                    continue
                with open(f"/proc/{pid}/cmdline", "rb") as fh:
                    argv = [a for a in fh.read().split(b"\0") if a]
                with open(f"/proc/{pid}/stat") as fh:
                    started = int(fh.read().rsplit(")", 1)[1].split()[19]) / ticks
            except (OSError, ValueError, IndexError):
                continue
            if not any(a.endswith(b"python-runner.py") for a in argv) or not any(
                a.endswith(step) for a in argv
            ):
                continue
            data = argv[-1].decode("utf-8", "replace")
            found.append((pid, data, uptime - started))
        return found

    def kill_sync_worker(
        self,
        record_ids: set[str],
        min_age: float,
        timeout: float,
        ready: Callable[[], bool] | None = None,
    ) -> dict[str, Any] | None:
        """SIGKILL a sync worker of one of `record_ids` once it has run `min_age` seconds (imports
        done, in the middle of its slowed-down I/O) and `ready()` holds (e.g. its record lock is
        taken: on a loaded machine a process start alone can take longer than `min_age`); None if
        none showed up within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready is not None and not ready():
                time.sleep(0.02)
                continue
            for pid, data, age in self._sync_children():
                try:
                    payload = json.loads(data).get("data") or {}
                except ValueError:
                    continue
                ids = set(payload.get("ids") or []) | ({payload["id"]} if payload.get("id") else set())
                if age >= min_age and ids & record_ids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        continue
                    kill = {"pid": pid, "age_s": round(age, 2), "ids": sorted(ids & record_ids)}
                    self.kills.append(kill)
                    return kill
            time.sleep(0.05)
        return None

    # ------------------------------------------------------------------ figures
    def calls(self, base_url: str) -> list[dict[str, Any]]:
        return list(httpx.get(f"{base_url}/__sandbox/calls", params={"since": 0}, timeout=60).json()["calls"])

    def stats(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.redis.hgetall(keys.STATS).items()}

    def flush_keeping_stats(self) -> dict[str, int]:
        """FLUSHALL, returning the counters it wiped, read in the same transaction: a count the
        service makes between a separate read and the flush would be lost, and the conflict
        count is compared exactly with the scenario's plan."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hgetall(keys.STATS)
        pipe.flushall()
        stats, _ = pipe.execute()
        return {k: int(v) for k, v in stats.items()}

    def notifications(self) -> list[dict[str, Any]]:
        """The service's notification log (vmh:notifications) and the notes EspoCRM received."""
        out = [json.loads(raw) for raw in self.redis.lrange(keys.NOTIFICATIONS, 0, -1)]
        notes = httpx.get(f"{self.stack.espo_url}/__sandbox/notes", timeout=30).json()
        for note in notes.get("notes", []):
            out.append({"id": note.get("parentId"), "message": note.get("post") or "", "channel": "note"})
        for item in notes.get("notifications", []):
            out.append({"id": item.get("relatedId"), "message": json.dumps(item, ensure_ascii=False)})
        return out
