"""`python -m bench`: performance benchmark of the real service (Motia runtime + Redis) against the
sandbox simulators. Prints one table and writes JSON to bench/results/. It never fails on speed:
the exit code is non-zero only if the benchmark itself could not run (e.g. Motia did not start).

    python_modules/bin/python -m bench                 # full: 10,000 records, 50 ms, cap 4
    python_modules/bin/python -m bench --quick         # 1,000 records (a few minutes)
    python_modules/bin/python -m bench --only 3,6 --records 5000 --latency-ms 20

Figures (issue 9): 1 webhook ack for a signed batch of 50; 2 end-to-end latency webhook ->
Advoware PUT at 0 ms; 3 reconcile throughput of N changed records vs. the API-bound limit;
4 API calls per synced edit and echo writes; 5 sweep cost with 10 (and 1,000) changed;
6 peak memory during 3; 7 cost per hour of noticing Advoware deletions; 8 (issue 21) unsigned
webhook requests answered per second at 20 in flight against `make serve`, and a person's edit
with and without that flood; 9 (issue 21) recovery after an Advoware outage: every record
waiting, seconds until all clean. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.machine import machine
from bench.report import render_table, rows_for
from bench.runner import Plan, run_figures

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1,000 records, fewer samples (a few minutes)")
    p.add_argument("--records", type=int, help="records for figures 3, 5, 6 (default 10000; quick 1000)")
    p.add_argument(
        "--latency-ms", type=int, default=50, help="simulated API latency for 3 and 5 (default 50)"
    )
    p.add_argument("--cap", type=int, default=4, help="ADVOWARE_MAX_CONCURRENCY for 3 and 5 (default 4)")
    p.add_argument("--only", default="1,2,3,4,5,6,7,8,9", help="comma-separated figures, e.g. 1,2 or 3,6")
    p.add_argument("--edits", type=int, help="person edits for figures 2 and 4 (default 40; quick 20)")
    p.add_argument("--batches", type=int, default=30, help="webhook batches of 50 for figure 1 (default 30)")
    p.add_argument(
        "--flood-seconds",
        type=int,
        default=30,
        help="length of figure 8's unsigned flood (default 30, max 120)",
    )
    p.add_argument("--log-dir", help="where the stacks' logs go (default: a new temp dir)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    plan = Plan.from_args(a)
    command = "python -m bench " + " ".join(
        shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:])
    )
    started = time.monotonic()
    results: dict[str, Any] = {
        "command": command.strip(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "params": plan.params(),
        "figures": {},
        "errors": {},
    }
    run_figures(plan, results)
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    results["log_dir"] = str(plan.log_dir)
    path = _write_results(results, quick=a.quick)
    print()
    print(render_table(rows_for(results), results))
    print(f"\nJSON: {path}   logs: {plan.log_dir}   wall time: {results['wall_seconds']:.0f} s")
    # Speed never fails the run; only a benchmark that could not run at all does.
    return 1 if results["errors"] and not results["figures"] else 0


def _write_results(results: dict[str, Any], *, quick: bool) -> Path:
    """This run's JSON under bench/results/ (and as latest.json); returns its path."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"bench-{stamp}{'-quick' if quick else ''}.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2, ensure_ascii=False))
    return path


if __name__ == "__main__":
    sys.exit(main())
