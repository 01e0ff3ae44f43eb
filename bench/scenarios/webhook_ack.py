"""Figure 1: the webhook's ack time for back-to-back signed batches of 50, and how long the
service then takes to process the events."""

from __future__ import annotations

import time
from typing import Any

import httpx

from bench.harness import Bench, signed_webhook
from bench.meters import CpuMeter
from bench.stats import median, percentile
from sandbox import config as cfg


def webhook_ack(b: Bench, n_batches: int, batch_size: int = 50) -> dict[str, Any]:
    """Back-to-back signed update batches of 50 (EspoCRM sends one webhook's batches in order,
    each after the previous answer): client-side time to the 200."""
    t0 = time.monotonic()
    with CpuMeter(b.stack) as cpu:
        acks, statuses = _send_batches(b, n_batches, batch_size)
        sent_s = time.monotonic() - t0
    b.settle(quiet_seconds=3.0, timeout=900)
    drained_s = time.monotonic() - t0 - 3.0
    return {
        "batches": n_batches,
        "batch_size": batch_size,
        "statuses": statuses,
        "ack_ms": {
            "p50": round(median(acks) or 0, 1),
            "p99": round(percentile(acks, 99) or 0, 1),
            "max": round(max(acks), 1),
        },
        "series_ms": [round(x) for x in acks],
        "cpu_seconds_while_sending": cpu.result(),
        "send_seconds": round(sent_s, 1),
        "events_processed_seconds": round(drained_s, 1),
        "events_per_second": round(n_batches * batch_size / drained_s, 1) if drained_s > 0 else None,
    }


def _send_batches(b: Bench, n_batches: int, batch_size: int) -> tuple[list[float], dict[int, int]]:
    """POST the batches one after the other; each one's ack in ms, and the answers' statuses."""
    acks: list[float] = []
    statuses: dict[int, int] = {}
    ids = b.ids
    with httpx.Client(timeout=30) as http:
        url = f"{b.stack.motia_url}/vmh/webhook/beteiligte/update"
        for n in range(n_batches):
            chunk = [ids[(n * batch_size + j) % len(ids)] for j in range(batch_size)]
            items = [{"titel": "Dr.", "modifiedById": cfg.ESPO_HUMAN_USER_ID, "id": rid} for rid in chunk]
            # A distinct body per batch (a redelivery would be answered from the dedup record).
            items[0]["syncErrorMessage"] = f"bench {time.time()}"
            body, headers = signed_webhook("update", items)
            start = time.perf_counter()
            resp = http.post(url, content=body, headers=headers)
            acks.append((time.perf_counter() - start) * 1000)
            statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
    return acks, statuses
