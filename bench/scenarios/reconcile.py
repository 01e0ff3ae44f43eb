"""Figures 3 and 6: reconcile throughput of N records changed in EspoCRM against the API-bound
limit, and the service's peak memory meanwhile."""

from __future__ import annotations

import time
from typing import Any

from bench.harness import Bench, bulk_espo_edit, log
from bench.meters import CpuMeter, RssSampler
from bench.scenarios.calls import count_calls


def reconcile(b: Bench, cap: int) -> dict[str, Any]:
    """All N pairs changed in EspoCRM (as a person, on a stack without webhooks, so only the
    sweep finds them), then one sweep; time until every record is clean again."""
    n = len(b.ids)
    _change_all_in_espocrm(b)
    espo_mark, advo_mark = b.seq("espo"), b.seq("advo")
    with RssSampler(b.stack) as rss, CpuMeter(b.stack) as cpu:
        t0 = time.monotonic()
        summary = b.sweep()
        t_sweep = time.monotonic() - t0
        log(f"sweep answered in {t_sweep:.1f}s: {summary}")
        progress = _wait_all_clean(b, t0)
        elapsed = time.monotonic() - t0
    left = b.not_clean()
    b.settle(quiet_seconds=2.0)
    ce, ca = count_calls(b.calls("espo", espo_mark)), count_calls(b.calls("advo", advo_mark))
    done = n - left
    rps = done / elapsed if elapsed else 0.0
    advo_per_record = (ca["total"] - ca["token"]) / max(1, done)
    latency_s = b.latency_ms / 1000
    limit = cap / (advo_per_record * latency_s) if advo_per_record and latency_s else None
    return {
        "records": n,
        "completed": done,
        "seconds": round(elapsed, 1),
        "sweep_seconds": round(t_sweep, 1),
        "records_per_second": round(rps, 2),
        "advo_calls_per_record": round(advo_per_record, 3),
        "espo_calls_per_record": round(ce["total"] / max(1, done), 3),
        "advo_calls": ca,
        "espo_calls": ce,
        "cap": cap,
        "latency_ms": b.latency_ms,
        "api_bound_limit_rps": round(limit, 2) if limit else None,
        "ratio_to_limit": round(rps / limit, 3) if limit else None,
        "sweep": summary,
        "memory_mb": rss.result_mb(),
        "cpu_seconds": cpu.result(done),
        "progress": progress[:: max(1, len(progress) // 40)],
    }


def _change_all_in_espocrm(b: Bench) -> None:
    """Every record edited as a person would, at 0 ms latency; then the stack's latency again."""
    b.set_latency(0)
    t_setup = time.monotonic()
    failed = bulk_espo_edit(b, [(rid, {"titel": "Dr.", "syncStatus": "dirty"}) for rid in b.ids])
    log(
        f"setup: {len(b.ids)} records changed in EspoCRM in {time.monotonic() - t_setup:.0f}s ({failed} failed)"
    )
    b.set_latency(b.latency_ms)
    b.settle(quiet_seconds=1.0)


def _wait_all_clean(b: Bench, t0: float) -> list[tuple[float, int]]:
    """Poll until no record is left unclean (or the deadline); (seconds since t0, left) per poll."""
    n = len(b.ids)
    progress: list[tuple[float, int]] = []
    last_log = 0.0
    deadline = t0 + max(600.0, n * 0.5)
    while time.monotonic() < deadline:
        left = b.not_clean()
        progress.append((round(time.monotonic() - t0, 1), left))
        if left == 0:
            break
        if time.monotonic() - last_log > 30:
            done = n - left
            el = time.monotonic() - t0
            log(f"reconcile: {done}/{n} clean after {el:.0f}s ({done / el:.1f}/s)")
            last_log = time.monotonic()
        time.sleep(1.0)
    return progress
