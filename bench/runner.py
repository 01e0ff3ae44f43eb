"""Which figures run on which stack, and collecting what they measured: a scenario (or a stack)
that breaks is reported in the results' `errors` and the others still run.

Stack A (enough pairs for the webhook batches, 0 ms latency, webhooks on): figures 1, 2, 4.
Stack B (`--records` pairs, `--latency-ms`, Advoware cap `--cap`, no webhooks): 3, 5, 6, 7, 9
(9 last: it leaves every record edited once more).
Stack C (`make serve`'s start script, a few pairs, 0 ms latency, webhooks on): 8."""

from __future__ import annotations

import argparse
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import bench_stack, log
from bench.scenarios.deletion_scan import deletion_scan
from bench.scenarios.edits import edits
from bench.scenarios.reconcile import reconcile
from bench.scenarios.recovery import recovery
from bench.scenarios.sweep_cost import sweep_cost
from bench.scenarios.unsigned_flood import unsigned_flood
from bench.scenarios.webhook_ack import webhook_ack

Results = dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """The figures to measure and the settings of their stacks (the command line's defaults
    filled in)."""

    only: frozenset[int]
    records: int
    latency_ms: int
    cap: int
    edits: int
    batches: int
    flood_seconds: int
    changed: tuple[int, ...]
    log_dir: Path

    @classmethod
    def from_args(cls, a: argparse.Namespace) -> Plan:
        records = a.records or (1000 if a.quick else 10000)
        return cls(
            only=frozenset(int(x) for x in a.only.split(",") if x.strip()),
            records=records,
            latency_ms=a.latency_ms,
            cap=a.cap,
            edits=a.edits or (20 if a.quick else 40),
            batches=a.batches,
            flood_seconds=a.flood_seconds,
            changed=(10, 100) if records < 5000 else (10, 1000),
            log_dir=Path(a.log_dir or tempfile.mkdtemp(prefix="vmh-bench-")),
        )

    def params(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "latency_ms": self.latency_ms,
            "cap": self.cap,
            "edits": self.edits,
            "batches": self.batches,
            "flood_seconds": self.flood_seconds,
            "changed": list(self.changed),
            "only": sorted(self.only),
        }


def run_figures(plan: Plan, results: Results) -> None:
    """Measure the planned figures into `results["figures"]` (failures into its `errors`)."""
    if plan.only & {1, 2, 4}:
        _on_stack_a(plan, results)
    if plan.only & {3, 5, 6, 7, 9}:
        _on_stack_b(plan, results)
    if 8 in plan.only:
        _on_stack_c(plan, results)


def _on_stack_a(plan: Plan, results: Results) -> None:
    figs = results["figures"]
    small = max(plan.batches * 50, plan.edits, 100)
    log(f"stack A: {small} pairs, 0 ms latency (figures 1, 2, 4)")
    with (
        _reported(results, "stack_a", "stack A"),
        bench_stack(plan.log_dir / "stack-a", records=small, latency_ms=0) as b,
    ):
        figs["stack_a_priming"] = b.prime()
        if plan.only & {2, 4}:
            _attempt(results, "edits", lambda: edits(b, plan.edits))
        if 1 in plan.only:
            _attempt(results, "webhook_ack", lambda: webhook_ack(b, plan.batches))


def _on_stack_b(plan: Plan, results: Results) -> None:
    figs = results["figures"]
    env = {"ADVOWARE_MAX_CONCURRENCY": str(plan.cap)}
    log(
        f"stack B: {plan.records} pairs, {plan.latency_ms} ms latency, Advoware cap {plan.cap} "
        "(figures 3, 5, 6, 7, 9)"
    )
    with (
        _reported(results, "stack_b", "stack B"),
        bench_stack(
            plan.log_dir / "stack-b",
            records=plan.records,
            latency_ms=plan.latency_ms,
            extra_env=env,
            webhooks=False,
        ) as b,
    ):
        reconciled = False
        if plan.only & {3, 6}:
            _attempt(results, "reconcile", lambda: reconcile(b, plan.cap))
            reconciled = "reconcile" in figs and figs["reconcile"]["completed"] == plan.records
        if 5 in plan.only:
            _attempt(results, "sweep_cost", lambda: sweep_cost(b, plan.changed, reconciled))
        if 7 in plan.only:
            _attempt(results, "deletion_scan", lambda: deletion_scan(b))
        if 9 in plan.only:
            _attempt(results, "recovery", lambda: recovery(b, plan.cap))


def _on_stack_c(plan: Plan, results: Results) -> None:
    log("stack C: make serve, 0 ms latency (figure 8)")
    with (
        _reported(results, "stack_c", "stack C"),
        bench_stack(plan.log_dir / "stack-c", records=20, latency_ms=0, serve=True) as b,
    ):
        _attempt(results, "unsigned_flood", lambda: unsigned_flood(b, plan.flood_seconds))


def _attempt(results: Results, name: str, scenario: Callable[[], dict[str, Any]]) -> None:
    """Run one scenario into `results["figures"][name]`, with its wall time."""
    t = time.monotonic()
    with _reported(results, name, name):
        figure = results["figures"][name] = scenario()
        figure["wall_seconds"] = round(time.monotonic() - t, 1)


@contextmanager
def _reported(results: Results, key: str, label: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # a broken scenario or stack is reported, the others still run
        results["errors"][key] = f"{type(exc).__name__}: {exc}"
        log(f"{label} failed:\n{traceback.format_exc()}")
