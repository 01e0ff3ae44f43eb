"""`python -m bench`: performance benchmark of the real service (Motia runtime + Redis) against the
sandbox simulators. Prints one table and writes JSON to bench/results/. It never fails on speed:
the exit code is non-zero only if the benchmark itself could not run (e.g. Motia did not start).

    python_modules/bin/python -m bench                 # full: 10,000 records, 50 ms, cap 4
    python_modules/bin/python -m bench --quick         # 1,000 records (a few minutes)
    python_modules/bin/python -m bench --only 3,6 --records 5000 --latency-ms 20

Figures (issue 9): 1 webhook ack for a signed batch of 50; 2 end-to-end latency webhook ->
Advoware PUT at 0 ms; 3 reconcile throughput of N changed records vs. the API-bound limit;
4 API calls per synced edit and echo writes; 5 sweep cost with 10 (and 1,000) changed;
6 peak memory during 3; 7 cost per hour of noticing Advoware deletions. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import bench_stack, log
from bench.report import render_table, rows_for

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1,000 records, fewer samples (a few minutes)")
    p.add_argument("--records", type=int, help="records for figures 3, 5, 6 (default 10000; quick 1000)")
    p.add_argument(
        "--latency-ms", type=int, default=50, help="simulated API latency for 3 and 5 (default 50)"
    )
    p.add_argument("--cap", type=int, default=4, help="ADVOWARE_MAX_CONCURRENCY for 3 and 5 (default 4)")
    p.add_argument("--only", default="1,2,3,4,5,6,7", help="comma-separated figures, e.g. 1,2 or 3,6")
    p.add_argument("--edits", type=int, help="person edits for figures 2 and 4 (default 40; quick 20)")
    p.add_argument("--batches", type=int, default=30, help="webhook batches of 50 for figure 1 (default 30)")
    p.add_argument("--log-dir", help="where the stacks' logs go (default: a new temp dir)")
    return p.parse_args(argv)


def machine() -> dict[str, Any]:
    def out(cmd: str) -> str:
        try:
            return subprocess.run(shlex.split(cmd), capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    cpu = ""
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    mem_kb = 0
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "mem_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "node": out("node --version"),
        "redis": out("redis-server --version").split(" v=")[-1].split()[0]
        if out("redis-server --version")
        else "",
        "kernel": platform.release(),
        "git": out("git rev-parse --short HEAD")
        + (" (dirty)" if out("git status --porcelain -- services steps") else ""),
    }


def _sweep_cost(scenarios: Any, b: Any, changed: tuple[int, ...], primed: bool) -> dict[str, Any]:
    """Figure 5 via tests/support/sweep_cost.py when present (the tests' own measurement)."""
    try:
        import tests.support.sweep_cost  # noqa: F401
    except ImportError:
        return dict(scenarios.sweep_cost(b, changed, primed=primed))
    return dict(scenarios.sweep_cost_shared(b, changed, primed=primed))


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    only = {int(x) for x in a.only.split(",") if x.strip()}
    records = a.records or (1000 if a.quick else 10000)
    edits = a.edits or (20 if a.quick else 40)
    changed = (10, 100) if records < 5000 else (10, 1000)
    log_dir = Path(a.log_dir or tempfile.mkdtemp(prefix="vmh-bench-"))
    command = "python -m bench " + " ".join(
        shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:])
    )
    started = time.monotonic()
    results: dict[str, Any] = {
        "command": command.strip(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "params": {
            "records": records,
            "latency_ms": a.latency_ms,
            "cap": a.cap,
            "edits": edits,
            "batches": a.batches,
            "changed": list(changed),
            "only": sorted(only),
        },
        "figures": {},
        "errors": {},
    }
    figs = results["figures"]

    def attempt(name: str, fn: Any) -> None:
        t = time.monotonic()
        try:
            figs[name] = fn()
            figs[name]["wall_seconds"] = round(time.monotonic() - t, 1)
        except Exception as exc:  # a broken scenario is reported, the others still run
            results["errors"][name] = f"{type(exc).__name__}: {exc}"
            log(f"{name} failed:\n{traceback.format_exc()}")

    from bench import scenarios

    if only & {1, 2, 4}:
        small = max(a.batches * 50, edits, 100)
        log(f"stack A: {small} pairs, 0 ms latency (figures 1, 2, 4)")
        try:
            with bench_stack(log_dir / "stack-a", records=small, latency_ms=0) as b:
                figs["stack_a_priming"] = b.prime()
                if only & {2, 4}:
                    attempt("edits", lambda: scenarios.edits(b, edits))
                if 1 in only:
                    attempt("webhook_ack", lambda: scenarios.webhook_ack(b, a.batches))
        except Exception as exc:
            results["errors"]["stack_a"] = f"{type(exc).__name__}: {exc}"
            log(f"stack A failed:\n{traceback.format_exc()}")

    if only & {3, 5, 6, 7}:
        env = {"ADVOWARE_MAX_CONCURRENCY": str(a.cap)}
        log(f"stack B: {records} pairs, {a.latency_ms} ms latency, Advoware cap {a.cap} (figures 3, 5, 6, 7)")
        try:
            with bench_stack(
                log_dir / "stack-b", records=records, latency_ms=a.latency_ms, extra_env=env, webhooks=False
            ) as b:
                reconciled = False
                if only & {3, 6}:
                    attempt("reconcile", lambda: scenarios.reconcile(b, a.cap))
                    reconciled = "reconcile" in figs and figs["reconcile"]["completed"] == records
                if 5 in only:
                    attempt("sweep_cost", lambda: _sweep_cost(scenarios, b, changed, reconciled))
                if 7 in only:
                    attempt("deletion_scan", lambda: scenarios.deletion_scan(b))
        except Exception as exc:
            results["errors"]["stack_b"] = f"{type(exc).__name__}: {exc}"
            log(f"stack B failed:\n{traceback.format_exc()}")

    results["wall_seconds"] = round(time.monotonic() - started, 1)
    results["log_dir"] = str(log_dir)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"bench-{stamp}{'-quick' if a.quick else ''}.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print()
    print(render_table(rows_for(results), results))
    print(f"\nJSON: {path}   logs: {log_dir}   wall time: {results['wall_seconds']:.0f} s")
    # Speed never fails the run; only a benchmark that could not run at all does.
    return 1 if results["errors"] and not figs else 0


if __name__ == "__main__":
    sys.exit(main())
