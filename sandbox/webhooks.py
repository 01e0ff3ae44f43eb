"""EspoCRM outgoing webhooks: queue, batching (<= 50 items), signatures and the real retry rules."""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx

from sandbox.signing import php_json, webhook_signature, webhook_x_signature

RETRY_STATUSES = frozenset({0, 401, 403, 404, 405, 408, 500, 503})


@dataclass
class Webhook:
    id: str
    event: str
    url: str
    user_id: str
    user_name: str
    secret_key: str
    skip_own: bool = True
    is_active: bool = True
    created_at: str = ""

    def public(self, with_secret: bool = True) -> dict[str, Any]:
        entity, _, rest = self.event.partition(".")
        kind, _, fld = rest.partition(".")
        data: dict[str, Any] = {
            "id": self.id,
            "event": self.event,
            "type": kind,
            "entityType": entity,
            "field": fld or None,
            "url": self.url,
            "isActive": self.is_active,
            "userId": self.user_id,
            "userName": self.user_name,
            "skipOwn": self.skip_own,
            "createdAt": self.created_at,
            "modifiedAt": self.created_at,
        }
        if with_secret:
            data["secretKey"] = self.secret_key
        return data


@dataclass
class Batch:
    webhook_id: str
    items: list[dict[str, Any]]
    attempts: int = 0
    next_at: float = 0.0
    seq: int = 0
    redelivery: bool = False


@dataclass
class DispatcherSettings:
    interval: float = 0.2
    retry_delay: float = 1.0
    timeout: float = 10.0
    max_attempts: int = 4
    batch_size: int = 50
    shuffle: bool = False
    shuffle_items: bool = False
    paused: bool = False
    seed: int = 0


@dataclass
class Dispatcher:
    settings: DispatcherSettings = field(default_factory=DispatcherSettings)
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    queues: dict[str, deque[dict[str, Any]]] = field(default_factory=dict)
    retries: list[Batch] = field(default_factory=list)
    redeliver_queue: list[Batch] = field(default_factory=list)
    delivered: deque[Batch] = field(default_factory=lambda: deque(maxlen=2000))
    log: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=10_000))
    stats: dict[str, int] = field(
        default_factory=lambda: {
            "sent": 0,
            "succeeded": 0,
            "failed": 0,
            "retried": 0,
            "unsubscribed": 0,
            "queued": 0,
        }
    )

    transport: httpx.AsyncBaseTransport | None = None  # tests: deliver into an ASGI app

    def __post_init__(self) -> None:
        self._seq = 0
        self._lock = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._rng = random.Random(self.settings.seed)

    # --- subscriptions -------------------------------------------------------------------------
    def add(self, webhook: Webhook) -> Webhook:
        self.webhooks[webhook.id] = webhook
        self.queues.setdefault(webhook.id, deque())
        return webhook

    def remove(self, webhook_id: str) -> bool:
        found = self.webhooks.pop(webhook_id, None) is not None
        self.queues.pop(webhook_id, None)
        self.retries = [b for b in self.retries if b.webhook_id != webhook_id]
        self.redeliver_queue = [b for b in self.redeliver_queue if b.webhook_id != webhook_id]
        return found

    @staticmethod
    def new_secret() -> str:
        return secrets.token_hex(16)

    # --- events ----------------------------------------------------------------------------------
    def enqueue(self, event: str, item: dict[str, Any], actor_id: str | None) -> int:
        """Queue an item for every active webhook of `event`; skipOwn drops the webhook user's own saves."""
        count = 0
        for wh in self.webhooks.values():
            if not wh.is_active or wh.event != event:
                continue
            if wh.skip_own and actor_id is not None and wh.user_id == actor_id:
                continue
            self.queues[wh.id].append(dict(item))
            count += 1
        self.stats["queued"] += count
        return count

    def pending(self) -> dict[str, int]:
        return {wid: len(q) for wid, q in self.queues.items()}

    # --- delivery ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.settings.interval)
            if self.settings.paused:
                continue
            try:
                await self.tick()
            except Exception as exc:  # the queue job must survive anything
                self.log.append({"error": repr(exc), "at": time.time()})

    def _take_batches(self, force_retries: bool) -> list[Batch]:
        now = time.monotonic()
        due = [b for b in self.retries if force_retries or b.next_at <= now]
        self.retries = [b for b in self.retries if b not in due]
        batches = list(self.redeliver_queue) + due
        self.redeliver_queue = []
        size = max(1, min(50, self.settings.batch_size))
        for wid, queue in self.queues.items():
            while queue:
                items = [queue.popleft() for _ in range(min(size, len(queue)))]
                if self.settings.shuffle_items:
                    self._rng.shuffle(items)
                self._seq += 1
                batches.append(Batch(webhook_id=wid, items=items, seq=self._seq))
        if self.settings.shuffle:
            self._rng.shuffle(batches)
        return batches

    async def tick(self, force_retries: bool = False) -> list[dict[str, Any]]:
        """One queue-job run: send every queued batch (new, due retries, redeliveries)."""
        async with self._lock:
            batches = self._take_batches(force_retries)
            if not batches:
                return []
            by_webhook: dict[str, list[Batch]] = {}
            for b in batches:
                by_webhook.setdefault(b.webhook_id, []).append(b)
            results: list[dict[str, Any]] = []

            async def serve(group: list[Batch]) -> None:
                for b in group:  # one webhook's batches in order; webhooks in parallel
                    results.append(await self._deliver(b))

            await asyncio.gather(*(serve(g) for g in by_webhook.values()))
            return results

    async def _deliver(self, batch: Batch) -> dict[str, Any]:
        wh = self.webhooks.get(batch.webhook_id)
        if wh is None:
            return {"webhook": batch.webhook_id, "status": None, "outcome": "dropped (webhook deleted)"}
        body = php_json(batch.items)
        headers = {
            "Content-Type": "application/json",
            "Signature": webhook_signature(wh.id, wh.secret_key, body),
            "X-Signature": webhook_x_signature(wh.id, wh.secret_key, body),
        }
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.settings.timeout, connect=5.0),
                follow_redirects=False,
                transport=self.transport,
            )
        batch.attempts += 1
        started = time.monotonic()
        try:
            resp = await asyncio.wait_for(
                self._client.post(wh.url, content=body, headers=headers), self.settings.timeout
            )
            status = resp.status_code
        except (TimeoutError, httpx.TimeoutException):
            status = 408
        except httpx.HTTPError:
            status = 0
        self.stats["sent"] += 1
        if 200 <= status < 400:
            outcome = "success"
            self.stats["succeeded"] += 1
            self.delivered.append(batch)
        elif status == 410:
            outcome = "unsubscribed"
            self.stats["unsubscribed"] += 1
            self.remove(wh.id)
        elif status in RETRY_STATUSES and batch.attempts < self.settings.max_attempts:
            outcome = "retry"
            self.stats["retried"] += 1
            batch.next_at = time.monotonic() + self.settings.retry_delay
            self.retries.append(batch)
        else:
            outcome = "failed"
            self.stats["failed"] += 1
        entry = {
            "webhookId": wh.id,
            "event": wh.event,
            "url": wh.url,
            "items": len(batch.items),
            "ids": [i.get("id") for i in batch.items],
            "status": status,
            "attempt": batch.attempts,
            "outcome": outcome,
            "batchSeq": batch.seq,
            "redelivery": batch.redelivery,
            "ms": round((time.monotonic() - started) * 1000, 1),
            "at": time.time(),
        }
        self.log.append(entry)
        return entry

    def redeliver(self, last: int) -> int:
        """Re-send the last N successfully delivered batches (at-least-once, visibly)."""
        picked = list(self.delivered)[-last:] if last > 0 else []
        for b in picked:
            self.redeliver_queue.append(
                Batch(webhook_id=b.webhook_id, items=b.items, seq=b.seq, redelivery=True)
            )
        return len(picked)
