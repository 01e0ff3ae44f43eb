"""Figures 2 and 4: a person's EspoCRM edits synced to Advoware (latency, calls per edit) and the
echo check afterwards."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bench.harness import Bench
from bench.scenarios.calls import count_calls
from bench.stats import median, ms, parse_ts, percentile
from sandbox import config as cfg
from sandbox.act import Actor

Counts = dict[str, int]


@dataclass
class EditSamples:
    """What the edits measured, one entry per synced edit (missing: no Advoware PUT in time)."""

    latencies: list[float] = field(default_factory=list)  # webhook receipt -> Advoware PUT, s
    from_edit: list[float] = field(default_factory=list)  # the person's PUT -> Advoware PUT, s
    acks_single: list[float] = field(default_factory=list)  # the sender's ack time, ms
    calls: list[Counts] = field(default_factory=list)  # both sides added up
    espo_calls: list[Counts] = field(default_factory=list)
    advo_calls: list[Counts] = field(default_factory=list)
    missing: int = 0


def edits(b: Bench, n_edits: int) -> dict[str, Any]:
    """A person edits one field in EspoCRM; the sandbox's webhook sender delivers it; the service
    writes Advoware. Latency = webhook delivery start -> Advoware PUT arrival (both simulator
    clocks, same host). Calls per edit are counted between the edit and quiet."""
    actor = Actor(b.stack.espo_url, b.stack.advo_url)
    samples = EditSamples()
    for i in range(n_edits):
        _measure_edit(b, actor, i, samples)
    echo = _echo_check(b)
    return _results(n_edits, samples, echo)


def _measure_edit(b: Bench, actor: Actor, i: int, samples: EditSamples) -> None:
    rid = b.ids[i]
    betnr = b.betnr[rid]
    espo_mark, advo_mark = b.seq("espo"), b.seq("advo")
    t_edit = time.time()
    resp = actor.espo.put(f"CBeteiligte/{rid}", json={"titel": "Dr." if i % 2 == 0 else "Prof. Dr."})
    resp.raise_for_status()
    put = _wait_advo_put(b, betnr, advo_mark)
    if put is None:
        samples.missing += 1
        return
    b.settle(quiet_seconds=1.0, timeout=30)
    delivery = _delivery_of(b, rid)
    t_put = parse_ts(put["timestamp"])
    if delivery is not None:
        t_recv = float(delivery["at"]) - float(delivery["ms"]) / 1000
        samples.latencies.append(t_put - t_recv)
        samples.acks_single.append(float(delivery["ms"]))
    samples.from_edit.append(t_put - t_edit)
    ce, ca = count_calls(b.calls("espo", espo_mark)), count_calls(b.calls("advo", advo_mark))
    samples.espo_calls.append(ce)
    samples.advo_calls.append(ca)
    samples.calls.append({k: ce[k] + ca[k] for k in ce})


def _wait_advo_put(b: Bench, betnr: int, advo_mark: int) -> dict[str, Any] | None:
    """The service's Advoware PUT of `betnr` since `advo_mark`, or None after 30 s."""
    put: dict[str, Any] = {}

    def seen() -> bool:
        for c in b.calls("advo", advo_mark):
            if c["method"] == "PUT" and c["path"].endswith(f"/{betnr}") and c.get("user") == cfg.ADVO_USER:
                put.update(c)
                return True
        return False

    return put if b.wait(seen, 30, 0.05, f"Advoware PUT of {betnr}") else None


def _delivery_of(b: Bench, rid: str) -> dict[str, Any] | None:
    """The webhook sender's latest update delivery that carried `rid`."""
    return next(
        (
            d
            for d in reversed(b.webhook_log(50))
            if rid in (d.get("ids") or []) and d.get("event") == "CBeteiligte.update"
        ),
        None,
    )


def _echo_check(b: Bench) -> dict[str, Any]:
    """Echoes: with everything quiet, one sweep (both pollers) must find nothing to write."""
    b.settle(quiet_seconds=2.0)
    espo_mark, advo_mark = b.seq("espo"), b.seq("advo")
    t_mark = time.time()
    time.sleep(1.0)  # > 2 webhook queue runs: a webhook caused by our own writes would fire now
    summary = b.sweep()
    b.settle(quiet_seconds=3.0)
    echo_e = count_calls(b.calls("espo", espo_mark))
    echo_a = count_calls(b.calls("advo", advo_mark))
    hooks = [d for d in b.webhook_log(200) if float(d["at"]) > t_mark]
    return {
        "sweep": summary,
        "espo_writes": echo_e["writes"],
        "advo_writes": echo_a["writes"],
        "espo_reads": echo_e["reads"],
        "advo_reads": echo_a["reads"],
        "own_webhooks": len(hooks),
    }


def _results(n_edits: int, s: EditSamples, echo: dict[str, Any]) -> dict[str, Any]:
    n = max(1, len(s.calls))

    def avg(rows: list[Counts], k: str) -> float:
        return sum(r[k] for r in rows) / n

    return {
        "edits": n_edits,
        "missing": s.missing,
        "e2e_ms": {
            "p50": ms(median(s.latencies)),
            "p95": ms(percentile(s.latencies, 95)),
            "max": ms(max(s.latencies) if s.latencies else None),
            "n": len(s.latencies),
        },
        "edit_to_put_ms": {"p50": ms(median(s.from_edit)), "p95": ms(percentile(s.from_edit, 95))},
        "single_item_ack_ms": {"p50": median(s.acks_single), "p95": percentile(s.acks_single, 95)},
        "calls_per_edit": {
            "total": avg(s.calls, "total") - avg(s.calls, "token"),
            "espo_reads": avg(s.espo_calls, "reads"),
            "espo_writes": avg(s.espo_calls, "writes"),
            "advo_reads": avg(s.advo_calls, "reads"),
            "advo_writes": avg(s.advo_calls, "writes"),
            "token": avg(s.calls, "token"),
            "minimum": 4,
        },
        "echo": echo,
    }
