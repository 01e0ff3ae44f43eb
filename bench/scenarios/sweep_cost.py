"""Figure 5: what one sweep costs in API calls with 10 (and 1,000) records changed in Advoware,
measured through tests/support/sweep_cost.py, the measurement the tests use."""

from __future__ import annotations

import time
from typing import Any

from bench.harness import Bench, log
from sandbox.act import Actor
from services.store import keys
from tests.support import sweep_cost as sc


def sweep_cost(b: Bench, changed_counts: tuple[int, ...], primed: bool) -> dict[str, Any]:
    """Figure 5 through tests/support/sweep_cost.py (the measurement the tests use), on this
    benchmark's stack (with its simulated latency): steady state first (after a bulk run: sweeps
    until one finds nothing; on a fresh stack: that module's `prime`, the ops backfill, at 0 ms
    latency), then per entry of `changed_counts` its `measure` (edits in Advoware as ANNA, one
    sweep, wait until EspoCRM has every edit, count the service's calls since a marker)."""
    actor = Actor(b.stack.espo_url, b.stack.advo_url)
    out: dict[str, Any] = {"records": len(b.ids), "via": "tests.support.sweep_cost"}
    out["steady_state"] = _after_bulk_run(b) if primed else _primed(b, actor)
    by_betnr = sorted(b.betnr.values())
    offset = 0
    for i, k in enumerate(changed_counts):
        betnrs = by_betnr[offset : offset + k]
        offset += k
        r = sc.measure(b.stack, actor, len(b.ids), betnrs, f"Prof. Dr. B{i}")
        out[f"changed_{k}"] = _figure(r, k)
        log(f"sweep cost, {k} changed: {out[f'changed_{k}']}")
    return out


def _after_bulk_run(b: Bench) -> dict[str, Any]:
    """Steady state after a bulk run: sweeps until one finds nothing, both pollers' overlap
    windows moved past the run's own writes."""
    t0 = time.monotonic()
    sweeps = []
    for _ in range(4):
        summary, _secs = sc.sweep(b.stack)
        sweeps.append(summary)
        sc.wait_quiet(b.stack)
        if summary.get("records") == 0:
            break
    sc.skip_espo_overlap(b.stack)
    _skip_advo_overlap(b)
    return {"sweeps": sweeps, "seconds": round(time.monotonic() - t0, 1)}


def _skip_advo_overlap(b: Bench) -> None:
    """After a bulk run the Advoware poll's 2-minute overlap still holds the run's own 10,000 PUTs
    (re-read as list pages, recognised as own writes, nothing synced) until later changes move the
    watermark on. Like sweep_cost.skip_espo_overlap for EspoCRM: move it one overlap ahead."""
    sc.skip_overlap(b.stack, keys.WATERMARK_ADVOWARE)


def _primed(b: Bench, actor: Actor) -> dict[str, Any]:
    """Steady state on a fresh stack: tests/support/sweep_cost.py's `prime`, at 0 ms latency."""
    b.set_latency(0)
    try:
        return sc.prime(b.stack, actor, len(b.ids))
    finally:
        b.set_latency(b.latency_ms)


def _figure(r: dict[str, Any], k: int) -> dict[str, Any]:
    """One `measure` result as this benchmark reports it."""
    calls = r["calls"]
    return {
        "changed": k,
        "synced": True,
        "sweep": r["sweep_summary"],
        "collect_seconds": r["sweep_seconds"],
        "seconds_until_synced": r["seconds_until_in_espocrm"],
        "calls": calls["total"],
        "list_calls": r["sweep_list_calls"],
        "record_calls": r["record_calls"],
        "token_calls": calls["token"]["espocrm"] + calls["token"]["advoware"],
        "writes": calls["writes"],
        "by_route": calls["by_route"],
        "calls_per_changed_record": round(r["record_calls"] / k, 2) if k else None,
        "pages_if_listing_everything": r["advoware_pages_if_listing_everything"]
        + r["espocrm_pages_if_listing_everything"],
    }
