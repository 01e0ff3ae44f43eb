"""Benchmark plumbing: the real stack (tests/support/stack.py), the simulators' admin APIs and
acting as a person (the process meters are in bench/meters.py). Nothing here asserts anything."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from sandbox import config as cfg
from sandbox.signing import php_json, webhook_signature, webhook_x_signature
from tests.support.stack import Stack, run_stack
from tests.support.sweep_cost import hold_cron

ADMIN = {"Authorization": f"Bearer {cfg.SYNC_ADMIN_TOKEN}"}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------- the stack
@dataclass
class Bench:
    stack: Stack
    http: httpx.Client
    records: int
    latency_ms: int
    ids: list[str] = field(default_factory=list)  # EspoCRM ids of the synthetic pairs
    betnr: dict[str, int] = field(default_factory=dict)

    # --- simulators' admin endpoints ---------------------------------------------------
    def seq(self, side: str) -> int:
        return int(
            self.http.get(f"{self._base(side)}/__sandbox/calls", params={"since": 1 << 60}).json()["seq"]
        )

    def calls(self, side: str, since: int = 0) -> list[dict[str, Any]]:
        return list(
            self.http.get(f"{self._base(side)}/__sandbox/calls", params={"since": since}).json()["calls"]
        )

    def set_latency(self, ms: int) -> None:
        for side in ("espo", "advo"):
            self.http.post(f"{self._base(side)}/__sandbox/latency", json={"latency_ms": ms})

    def webhook_log(self, n: int = 2000) -> list[dict[str, Any]]:
        return list(
            self.http.get(f"{self.stack.espo_url}/__sandbox/webhooks", params={"log": n}).json()["log"]
        )

    def _base(self, side: str) -> str:
        return self.stack.espo_url if side == "espo" else self.stack.advo_url

    # --- the service -------------------------------------------------------------------
    def sweep(self) -> dict[str, Any]:
        resp = self.http.post(f"{self.stack.motia_url}/vmh/beteiligte/sync/sweep", headers=ADMIN, timeout=600)
        resp.raise_for_status()
        return dict(resp.json())

    def queue_depth(self) -> int:
        """Waiting + active + delayed jobs in Motia's BullMQ queues (DLQs excluded)."""
        try:
            data = self.http.get(f"{self.stack.motia_url}/__motia/bullmq/queues", timeout=10).json()
        except (httpx.HTTPError, ValueError):
            return 0
        return sum(
            sum(int(q.get("stats", {}).get(k, 0)) for k in ("waiting", "active", "delayed", "prioritized"))
            for q in data.get("queues", [])
            if not q.get("isDLQ")
        )

    # --- EspoCRM as the human user ------------------------------------------------------
    def espo_count(self, where: list[dict[str, Any]]) -> int:
        params: dict[str, Any] = {"maxSize": 1, "select": "id"}
        params.update(_where_params(where))
        resp = self.http.get(
            f"{self.stack.espo_url}/api/v1/CBeteiligte",
            params=params,
            headers={"X-Api-Key": cfg.ESPO_HUMAN_KEY},
        )
        resp.raise_for_status()
        return int(resp.json()["total"])

    def not_clean(self) -> int:
        return self.espo_count([{"type": "notEquals", "attribute": "syncStatus", "value": "clean"}])

    def load_ids(self) -> None:
        data = self.http.get(f"{self.stack.espo_url}/__sandbox/records", timeout=120).json()
        recs = [r for r in data["records"] if r.get("betnr")]
        recs.sort(key=lambda r: int(r["betnr"]))
        self.ids = [r["id"] for r in recs]
        self.betnr = {r["id"]: int(r["betnr"]) for r in recs}

    def wait(self, predicate: Any, timeout: float, interval: float = 0.5, what: str = "condition") -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        log(f"gave up waiting for {what} after {timeout:.0f}s")
        return False

    def settle(self, quiet_seconds: float = 2.0, timeout: float = 600) -> None:
        """Wait until Motia's queues are empty and neither simulator has logged a call for
        `quiet_seconds`."""
        deadline = time.monotonic() + timeout
        last = (self.seq("espo"), self.seq("advo"))
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = (self.seq("espo"), self.seq("advo"))
            if now != last or self.queue_depth():
                last, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_seconds:
                return

    def prime(self, timeout: float = 1800) -> dict[str, Any]:
        """Make every pair verified and both watermarks current, at 0 ms latency.

        Sweep 1 daily-checks every seeded pair (their advowareLastSync is days old); it is done
        when no record has an advowareLastSync from before it. Sweep 2 moves the EspoCRM
        watermark past those metadata writes (it finds nothing to do)."""
        self.set_latency(0)
        try:
            t0 = time.monotonic()
            started = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S")
            first = self.sweep()
            unverified = [{"type": "before", "attribute": "advowareLastSync", "value": started}]
            self.wait(
                lambda: self.espo_count(unverified) == 0 and self.not_clean() == 0, timeout, 1.0, "priming"
            )
            self.settle(quiet_seconds=2.0)
            second = self.sweep()
            self.settle(quiet_seconds=2.0)
            log(
                f"primed in {time.monotonic() - t0:.0f}s: sweep1={first['records']} sweep2={second['records']}"
            )
            return {"sweep1": first, "sweep2": second, "seconds": round(time.monotonic() - t0, 1)}
        finally:
            self.set_latency(self.latency_ms)


def _where_params(where: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, item in enumerate(where):
        for k, v in item.items():
            if isinstance(v, list):
                for j, x in enumerate(v):
                    out[f"where[{i}][{k}][{j}]"] = x
            else:
                out[f"where[{i}][{k}]"] = v
    return out


@contextmanager
def bench_stack(
    log_dir: Path,
    *,
    records: int,
    latency_ms: int,
    extra_env: dict[str, str] | None = None,
    webhooks: bool = True,
    serve: bool = False,
) -> Iterator[Bench]:
    """`serve`: the service started the way `make serve` starts it (scripts/serve.sh, no
    Workbench login: the Workbench is off) instead of `motia start`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    args = ["--records", str(records), "--no-demo", "--latency-ms", str(latency_ms)]
    if not webhooks:
        args.append("--no-webhooks")  # bulk set-up edits as a person must not queue 10,000 webhooks
    env = dict(extra_env or {})
    if serve:
        env.update({"WORKBENCH_USER": "", "WORKBENCH_PASSWORD": ""})
    command = ["bash", "scripts/serve.sh"] if serve else None
    t0 = time.monotonic()
    with run_stack(log_dir, sandbox_args=args, extra_env=env, command=command, workbench=True) as stack:
        log(f"stack up in {time.monotonic() - t0:.1f}s (motia {stack.motia_url}, logs {log_dir})")
        hold_cron(stack, hours=4, holder="held-by-bench")
        with httpx.Client(timeout=60) as http:
            b = Bench(stack=stack, http=http, records=records, latency_ms=latency_ms)
            b.load_ids()
            yield b


# --------------------------------------------------------------------------- acting
def signed_webhook(event: str, items: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
    """Body bytes and headers exactly as EspoCRM's webhook sender produces them."""
    webhook_id, secret = cfg.WEBHOOKS[event]
    body = php_json(items)
    headers = {
        "Content-Type": "application/json",
        "Signature": webhook_signature(webhook_id, secret, body),
        "X-Signature": webhook_x_signature(webhook_id, secret, body),
    }
    return body, headers


async def _bulk_espo_put(base: str, updates: list[tuple[str, dict[str, Any]]], concurrency: int) -> int:
    sem = asyncio.Semaphore(concurrency)
    failures = 0
    async with httpx.AsyncClient(
        base_url=base + "/api/v1/",
        headers={"X-Api-Key": cfg.ESPO_HUMAN_KEY},
        timeout=60,
        limits=httpx.Limits(max_connections=concurrency),
    ) as client:

        async def one(rid: str, body: dict[str, Any]) -> None:
            nonlocal failures
            async with sem:
                resp = await client.put(f"CBeteiligte/{rid}", json=body)
                if resp.status_code != 200:
                    failures += 1

        await asyncio.gather(*(one(r, b) for r, b in updates))
    return failures


def bulk_espo_edit(b: Bench, updates: list[tuple[str, dict[str, Any]]], concurrency: int = 16) -> int:
    """PUT as anna.admin (a person), concurrently; returns the number of failed PUTs."""
    return asyncio.run(_bulk_espo_put(b.stack.espo_url, updates, concurrency))
