"""Figure 8 (issue 21): a flood of unsigned webhook requests against `make serve` (loopback only,
bounded: it stops by itself). How many the service answers a second (all must be 401), what
they cost it in CPU, and how long a person's EspoCRM edit takes to reach Advoware with and
without the flood.

On this shared machine an edit's time is mostly time spent waiting for a CPU, and the other
users' load changes from one half minute to the next: the edits without the flood are made both
before and after it, and the other users' load is reported for each phase, so that a difference
of the machine is not read as an effect of the flood."""

from __future__ import annotations

import time
from typing import Any

from bench.harness import Bench, log
from bench.meters import CpuMeter
from bench.stats import median
from sandbox.act import Actor
from tests.support.flood import Flood, edit_seconds, linked_person


def unsigned_flood(b: Bench, seconds: int = 30, in_flight: int = 20, quiet_edits: int = 5) -> dict[str, Any]:
    """`quiet_edits` edits one after the other, then the flood with an edit every 5 s in it (the
    first 5 s in, the last 5 s before its end); the edit in the middle is reported on its own."""
    actor = Actor(b.stack.espo_url, b.stack.advo_url)
    rid, betnr = linked_person(actor, "Flutbank")
    with CpuMeter(b.stack) as cpu_before:
        before = [edit_seconds(actor, rid, betnr, f"Dr. ruhig {i}") for i in range((quiet_edits + 1) // 2)]
    during: list[tuple[float, float | None]] = []  # (seconds into the flood, edit latency)
    with CpuMeter(b.stack) as cpu:
        start = time.monotonic()
        flood = Flood(b.stack.motia_url, seconds, in_flight)
        for at in range(5, seconds - 4, 5):
            time.sleep(max(0.0, start + at - time.monotonic()))
            if time.monotonic() - start > seconds - 4:
                break  # a slow edit before left no time for this one while the flood still runs
            during.append(
                (round(time.monotonic() - start, 1), edit_seconds(actor, rid, betnr, f"Dr. Flut {at}"))
            )
        figures = flood.result()
    with CpuMeter(b.stack) as cpu_after:
        after = [edit_seconds(actor, rid, betnr, f"Dr. danach {i}") for i in range(quiet_edits // 2)]
    quiet = before + after
    middle = min(during, key=lambda d: abs(d[0] - seconds / 2))
    synced = [s for _, s in during if s is not None]
    log(f"flood: {figures['answered']} answered ({figures['per_second']}/s), statuses {figures['statuses']}")
    return {
        "seconds": seconds,
        "in_flight": in_flight,
        "flood": figures,
        "all_401": figures["errors"] == 0 and figures["statuses"] == {"401": figures["answered"]},
        "edit_quiet_s": {
            "p50": _round(median([s for s in quiet if s is not None])),
            "all": [_round(s) for s in quiet],
            "before": [_round(s) for s in before],
            "after": [_round(s) for s in after],
        },
        "edit_flood_s": {
            "p50": _round(median(synced)),
            "max": _round(max(synced) if synced else None),
            "all": [{"at": at, "s": _round(s)} for at, s in during],
        },
        "edit_middle_s": _round(middle[1]),
        "cpu_seconds": cpu.result(),
        # Cores the rest of the machine kept busy: before the flood, during it, after it.
        "others_cores": [_others_cores(m) for m in (cpu_before, cpu, cpu_after)],
    }


def _others_cores(meter: CpuMeter) -> float | None:
    used = meter.result()
    return round(used["others_on_machine"] / used["wall"], 2) if used["wall"] else None


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)
