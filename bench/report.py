"""One table: figure, value, target or limit, ratio."""

from __future__ import annotations

from typing import Any


def _f(x: Any, nd: int = 0, unit: str = "") -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        x = round(x, nd) if nd else round(x)
        if nd == 0:
            x = int(x)
    return f"{x:,}{unit}" if isinstance(x, int) else f"{x}{unit}"


def _ratio(x: Any, nd: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}"


Row = tuple[str, str, str, str]


def rows_for(results: dict[str, Any]) -> list[Row]:
    """The table's rows, figure by figure (a figure that was not measured has none)."""
    f = results["figures"]
    rows: list[Row] = []
    if f.get("webhook_ack"):
        rows += _ack_rows(f["webhook_ack"])
    if f.get("edits"):
        rows += _edit_rows(f["edits"])
    rc = f.get("reconcile")
    if rc:
        rows += _reconcile_rows(rc)
    if f.get("sweep_cost"):
        rows += _sweep_rows(f["sweep_cost"], results["params"]["changed"])
    if rc and rc.get("memory_mb"):
        rows += _memory_rows(rc["memory_mb"])
    if f.get("deletion_scan"):
        rows += _deletion_rows(f["deletion_scan"])
    if f.get("unsigned_flood"):
        rows += _flood_rows(f["unsigned_flood"])
    if f.get("recovery"):
        rows += _recovery_rows(f["recovery"])
    return rows


def _flood_rows(fl: dict[str, Any]) -> list[Row]:
    fig, quiet, flood, cpu = fl["flood"], fl["edit_quiet_s"], fl["edit_flood_s"], fl["cpu_seconds"]
    service = (cpu["motia_node"] + cpu["python_steps"]) / max(cpu["wall"], 0.1)
    # An upper bound: the node process's CPU over the flood (the edits' share included).
    node_ms = 1000 * cpu["motia_node"] / max(fig["answered"], 1)
    return [
        (
            f"8 Unsigned webhook flood, {fl['in_flight']} in flight, {fl['seconds']} s (make serve)",
            f"{_f(fig['per_second'], 1)} answered/s ({fig['answered']:,}, "
            f"{'all 401' if fl['all_401'] else 'NOT all 401: ' + str(fig['statuses'])}); "
            f"service CPU {service:.2f} cores, node <= {node_ms:.1f} ms per refusal",
            "every one 401",
            "ok" if fl["all_401"] else "FAILED",
        ),
        (
            "8 Edit -> Advoware with / without the flood (middle edit; p50 of all)",
            f"{_f(fl['edit_middle_s'], 2)} s (p50 {_f(flood['p50'], 2)} s, max {_f(flood['max'], 2)} s) / "
            f"p50 {_f(quiet['p50'], 2)} s{_others(fl.get('others_cores'))}",
            "< 2 s",
            _ratio((fl["edit_middle_s"] or 99) / 2) + " of target",
        ),
    ]


def _others(cores: list[float | None] | None) -> str:
    """The other users' load before / during / after the flood (older results have none)."""
    if not cores:
        return ""
    return "; others' load " + " / ".join(_f(c, 1) for c in cores) + " cores before / during / after"


def _recovery_rows(rv: dict[str, Any]) -> list[Row]:
    return [
        (
            f"9 Recovery: {rv['records']:,} records waiting for Advoware, {rv['latency_ms']} ms/call, "
            f"cap {rv['cap']}: from Advoware back to all clean",
            f"{_f(rv['seconds_to_clean'])} s ({_f(rv['seconds_to_release'])} s to the probe + "
            f"{_f(rv['seconds_release_to_clean'])} s), {rv['completed']:,} clean",
            f"limit {_f(rv['ideal_seconds'])} s = {rv['records']:,}x{rv['advo_calls_per_record']:.2f}"
            f"x{rv['latency_ms'] / 1000:g}s/{rv['cap']}",
            f"{_ratio(rv['ratio_to_limit'])} of limit ({_ratio(rv['ratio_to_limit_after_release'])} after the probe)",
        )
    ]


def _deletion_rows(ds: dict[str, Any]) -> list[Row]:
    c = ds["advo_calls_per_hour"]
    edited = ds.get("edited", 0)
    return [
        (
            f"7 Advoware deletions and stamp-less edits noticed per hour, {ds['parties']:,} parties "
            f"({ds['deleted']} deleted, {edited} edited)",
            f"{c['total']:,} calls/h ({c['list_pages']} list pages + {c['reads']} reads + "
            f"{c['token']} token), found {ds['found']}/{ds['deleted']} deleted, "
            f"{ds.get('changed', 0)}/{edited} edited, scan {ds['scan_seconds']} s",
            "within 1 h",
            "all found" if ds["all_found"] and ds.get("all_changed_found", True) else "MISSED",
        )
    ]


def _ack_rows(ack: dict[str, Any]) -> list[Row]:
    a = ack["ack_ms"]
    return [
        (
            f"1 Webhook ack, signed batch of {ack['batch_size']} ({ack['batches']} back-to-back), p50 / p99",
            f"{_f(a['p50'])} / {_f(a['p99'])} ms",
            "p99 < 300 ms",
            _ratio(a["p99"] / 300) + " of target",
        ),
        (
            f"  then {ack['batches'] * ack['batch_size']:,} update events processed",
            f"{_f(ack['events_processed_seconds'], 1)} s ({_f(ack['events_per_second'], 1)} ev/s)",
            "-",
            "-",
        ),
    ]


def _edit_rows(ed: dict[str, Any]) -> list[Row]:
    e, c, ec = ed["e2e_ms"], ed["calls_per_edit"], ed["echo"]
    return [
        (
            f"2 End-to-end webhook receipt -> Advoware PUT, 0 ms API latency (n={e['n']}), p50 / p95",
            f"{_f(e['p50'])} / {_f(e['p95'])} ms",
            "p95 < 1000 ms",
            _ratio((e["p95"] or 0) / 1000) + " of target",
        ),
        (
            "4 API calls per synced EspoCRM edit (EspoCRM r/w + Advoware r/w)",
            f"{c['total']:.2f} ({c['espo_reads']:.1f}+{c['espo_writes']:.1f} + {c['advo_reads']:.1f}+{c['advo_writes']:.1f})",
            f"minimum {c['minimum']}",
            _ratio(c["total"] / c["minimum"]) + " x minimum",
        ),
        (
            "4 Echo writes (sweep after the edits; own webhooks)",
            f"{ec['espo_writes'] + ec['advo_writes']} writes, {ec['own_webhooks']} webhooks",
            "0",
            "-",
        ),
    ]


def _reconcile_rows(rc: dict[str, Any]) -> list[Row]:
    return [
        (
            f"3 Reconcile {rc['records']:,} changed, {rc['latency_ms']} ms/call, cap {rc['cap']}",
            f"{rc['records_per_second']:.1f} rec/s ({_f(rc['seconds'])} s)",
            f"limit {_f(rc['api_bound_limit_rps'], 1)} rec/s = {rc['cap']}/({rc['advo_calls_per_record']:.2f}x{rc['latency_ms'] / 1000:g}s); >= 0.6",
            _ratio(rc["ratio_to_limit"]) + " of limit",
        )
    ]


def _sweep_rows(sc: dict[str, Any], changed: list[int]) -> list[Row]:
    rows: list[Row] = []
    for k in changed:
        r = sc.get(f"changed_{k}")
        if not r:
            continue
        rows.append(
            (
                f"5 Sweep, {sc['records']:,} records, {k:,} changed in Advoware",
                f"{r['calls']:,} calls ({r['list_calls']} list pages), {r['seconds_until_synced']:.1f} s (sweep step {r['collect_seconds']:.1f})",
                "-",
                f"{r['calls_per_changed_record']:.1f} record calls/changed",
            )
        )
    return rows


def _memory_rows(m: dict[str, Any]) -> list[Row]:
    return [
        (
            "6 Peak RSS during 3: service (Motia node + Python children)",
            f"{_f(m.get('service_total'))} MB (node {_f(m.get('motia_node'))}, python {_f(m.get('python_children'))} in <= {m.get('peak_python_processes')} procs)",
            "-",
            "-",
        ),
        (
            "6 Peak RSS during 3: Redis / simulators",
            f"{_f(m.get('redis'))} MB / {_f(m.get('sandbox'))} MB",
            "-",
            "-",
        ),
    ]


def render_table(rows: list[Row], results: dict[str, Any]) -> str:
    head = ("Figure", "Value", "Target / limit", "Ratio")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(4)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out = [line, "| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |", line]
    for r in rows:
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
    out.append(line)
    m = results["machine"]
    out.append(
        f"{results['command']}  |  {m['cpus']} CPUs ({m['cpu']}), {m['mem_gb']} GB, Python {m['python']}, "
        f"Node {m['node']}, Redis {m['redis']}, commit {m['git']}"
    )
    if results["errors"]:
        out.append("errors: " + "; ".join(f"{k}: {v}" for k, v in results["errors"].items()))
    return "\n".join(out)
