"""Text output of the ops CLI (services/ops/cli.py): tables for a person at a terminal.
`--json` prints the commands' dicts as they are (`print_json`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from services.espocrm.fields import SYNC_STATUS

if TYPE_CHECKING:
    from services.backfill.runner import BackfillResult


# The exit codes of `python -m services.ops` (docs/ops.md).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 0, 1, 2, 3


def print_json(data: Any, out: TextIO) -> None:
    out.write(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n")


def table(rows: Sequence[Sequence[Any]], out: TextIO, indent: str = "  ") -> None:
    if not rows:
        return
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write(indent + "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")


def clip(items: Sequence[Any], limit: int) -> tuple[Sequence[Any], int]:
    return (items[:limit], len(items) - limit) if len(items) > limit else (items, 0)


def _rows_or_none(title: str, rows: Sequence[Sequence[Any]], out: TextIO) -> None:
    out.write(f"\n{title}:\n")
    if rows:
        table(rows, out)
    else:
        out.write("  none\n")


# --------------------------------------------------------------------------- status


def print_status(report: dict[str, Any], out: TextIO) -> None:
    """The sync part of `status` (its health part: services/ops/report.py `print_health`)."""
    out.write("\nSync status (EspoCRM CBeteiligte)\n")
    table([(k, v) for k, v in report["counts"].items()], out)
    _rows_or_none(
        "Oldest pending work",
        [(r["id"], r[SYNC_STATUS], f"since {r['since']}") for r in report["oldest_pending"]],
        out,
    )
    _rows_or_none(
        "Recent failures",
        [(f["at"][:19], f["id"], f.get("reason", "")) for f in report["recent_failures"][:10]],
        out,
    )
    _rows_or_none(
        "Held for a person (conflict: a link needs a decision; docs/ops.md)",
        [(f["at"][:19], f["id"], f.get("reason", "")[:160]) for f in report.get("recent_held", [])[:10]],
        out,
    )
    _rows_or_none(
        "Linked to an existing Advoware party instead of created",
        [(f["at"][:19], f["id"], f.get("reason", "")) for f in report.get("recent_linked", [])[:10]],
        out,
    )
    _print_background(report, out)


def _print_background(report: dict[str, Any], out: TextIO) -> None:
    last = report.get("last_sweep")
    out.write(
        "\nLast sweep: "
        + (
            f"{last['at'][:19]} - {last['records']} records {json.dumps(last.get('by_source', {}))}"
            if last
            else "never"
        )
        + "\n"
    )
    marks = report.get("watermarks") or {}
    out.write(f"Watermarks: advoware={marks.get('advoware')} espocrm={marks.get('espocrm')}\n")
    out.write(f"Advoware changes emitted, sync not finished: {report.get('advoware_unfinished', 0)}\n")
    bf = report.get("backfill")
    if bf:
        out.write(
            f"Backfill: run {bf.get('run_id')} {bf.get('status')}"
            + (" (running now)" if bf.get("running") else "")
            + f", {bf.get('done', 0)} items done, updated {str(bf.get('updated_at', ''))[:19]}\n"
        )
    else:
        out.write("Backfill: never run\n")
    index = report.get("identity_index") or {}
    out.write(
        f"Identity index: {index.get('summary')}"
        + ("; creates in Advoware wait until it is ready\n" if index.get("creates_wait") else "\n")
    )


# --------------------------------------------------------------------------- sync


def print_sync_result(result: dict[str, Any], out: TextIO) -> None:
    writes = result.get("writes") or {}
    out.write(
        f"record {result['id']}: {result['result']}"
        + (f" (betnr {result['betnr']})" if result.get("betnr") else "")
        + (f" - {result['reason']}" if result.get("reason") else "")
        + f"; writes: EspoCRM {writes.get('espo', 0)}, Advoware {writes.get('advo', 0)}\n"
    )
    for name, label in (
        ("to_advoware", "to Advoware"),
        ("to_espocrm", "to EspoCRM"),
        ("conflicts", "conflicts"),
    ):
        if result.get(name):
            out.write(f"  {label}: {', '.join(result[name])}\n")


PLAN_ACTIONS = {
    "create": "would CREATE it in Advoware (no such party there)",
    "link": "would LINK it to the existing Advoware party (no create), then sync the pair",
    "hold": "would HOLD it as conflict for a person (see note)",
    "update": "would write the fields below",
    "none": "both sides agree: nothing to write",
    "parked": "parked for a person: a sync now would requeue it",
    "deleted_in_advoware": "would mark it deleted_in_advoware (betnr not found)",
    "not_found": "not found in EspoCRM",
}


def print_plan(plan: dict[str, Any], out: TextIO) -> None:
    what = PLAN_ACTIONS.get(plan["action"], plan["action"])
    head = f"record {plan['id']}"
    if plan.get("betnr"):
        head += f" <-> Advoware {plan['betnr']}"
    out.write(f"{head} (dry run, nothing written)\n  status: {plan.get('status')}; {what}\n")
    if plan.get("reason"):
        out.write(f"  note: {plan['reason']}\n")
    if "basis" in plan:
        out.write(
            f"  decided by: {plan['basis']} (snapshot {'present' if plan.get('snapshot') else 'missing'})\n"
        )
    rows = [("field", "EspoCRM", "Advoware", "after the sync", "action")]
    for f in plan.get("fields") or []:
        action = {"to_advoware": "-> Advoware", "to_espocrm": "-> EspoCRM", "both": "-> both"}[f["direction"]]
        if f.get("conflict"):
            action += " (conflict: EspoCRM wins)"
        elif f.get("rule"):
            action += f" ({f['rule']})"
        advo = f["advoware"] if f["advoware"] is not None else ""
        rows.append((f["field"], f["espocrm"] or "", advo, f.get("result") or f["espocrm"] or "", action))
    if len(rows) > 1:
        table(rows, out)


# --------------------------------------------------------------------------- backfill


def print_backfill(result: BackfillResult, out: TextIO, limit: int) -> None:
    if result.dry_run:
        out.write("Backfill DRY RUN - nothing was written\n")
    else:
        out.write(
            f"Backfill run {result.run_id}: {'finished' if result.finished else 'finished with failures'}"
            + (f" (resumed; {result.already_done} items were already done)" if result.resumed else "")
            + "\n"
        )
    _print_backfill_counts(result, out)
    if result.dry_run and result.plan.updates:
        _print_backfill_updates(result, out, limit)
    _print_backfill_lists(result, out, limit)
    if not result.dry_run:
        _print_backfill_outcomes(result, out, limit)


def _print_backfill_counts(result: BackfillResult, out: TextIO) -> None:
    c, dry = result.plan.counts(), result.dry_run
    advo_only = (
        f"({'would create' if dry else 'created'} in EspoCRM)"
        if c["to_create_in_espocrm"]
        else "(report only; --create-in-espocrm)"
    )
    table(
        [
            ("read", f"EspoCRM {c['espocrm_records']}, Advoware {c['advoware_records']}"),
            (
                "linked by betnr",
                f"{c['linked_by_betnr']} ({c['pairs_in_sync']} in sync, {c['to_sync']} to sync)",
            ),
            (
                "linked by identity",
                f"{c['linked_by_identity']} ({'would write' if dry else 'wrote'} betnr to EspoCRM)",
            ),
            ("create in Advoware", f"{c['to_create_in_advoware']} (EspoCRM-only)"),
            ("Advoware-only", f"{c['advo_only']} {advo_only}"),
            (
                "ambiguous",
                f"{c['ambiguous']} group(s), {c['ambiguous_espocrm_records']} EspoCRM record(s) held as conflict",
            ),
            ("conflicts", f"{c['conflicts']} (betnr problems, not touched)"),
        ],
        out,
    )


def _print_backfill_updates(result: BackfillResult, out: TextIO, limit: int) -> None:
    shown, more = clip(result.plan.updates, limit)
    out.write(f"\nWould update ({len(result.plan.updates)} pairs):\n")
    rows: list[tuple[Any, ...]] = [("EspoCRM id", "betnr", "field", "EspoCRM", "Advoware", "after", "rule")]
    for p in shown:
        for f in p.fields:
            rows.append((p.espo_id, p.betnr, f["field"], f["espocrm"], f["advoware"], f["result"], f["rule"]))
    table(rows, out)
    if more:
        out.write(f"  ... and {more} more (--json for all)\n")


def _print_backfill_lists(result: BackfillResult, out: TextIO, limit: int) -> None:
    report = result.plan.report
    lists: tuple[tuple[str, Sequence[Any], Callable[[Any], tuple[Any, ...]]], ...] = (
        ("Linked by identity", report.linked_by_identity, lambda x: (x.espo_id, x.betnr, x.rule)),
        ("To create in Advoware (EspoCRM ids)", report.espo_only, lambda x: (x,)),
        ("Advoware-only (betNr)", report.advo_only, lambda x: (x,)),
        (
            "Ambiguous (a person decides)",
            report.ambiguous,
            lambda x: (
                "EspoCRM " + (", ".join(x.espo_ids) or "-"),
                "Advoware " + (", ".join(map(str, x.betnrs)) or "-"),
                "; ".join(x.reasons),
            ),
        ),
        ("Conflicts", report.conflicts, lambda x: (x.betnr, ", ".join(x.espo_ids), x.reason)),
    )
    for title, items, fmt in lists:
        if items:
            shown, more = clip(items, limit)
            out.write(f"\n{title}:\n")
            table([fmt(x) for x in shown], out)
            if more:
                out.write(f"  ... and {more} more (--json for all)\n")


def _print_backfill_outcomes(result: BackfillResult, out: TextIO, limit: int) -> None:
    out.write(
        "\nOutcomes: " + (", ".join(f"{k} {v}" for k, v in sorted(result.outcomes.items())) or "none") + "\n"
    )
    if result.created_in_advoware:
        out.write(f"Created in Advoware: {len(result.created_in_advoware)}\n")
    if result.created_in_espocrm:
        out.write(f"Created in EspoCRM: {len(result.created_in_espocrm)}\n")
    if result.failures:
        out.write(f"\nFailures ({len(result.failures)}; a rerun retries them):\n")
        table([(f["item"], f["action"], f["reason"]) for f in result.failures[:limit]], out)


# --------------------------------------------------------------------------- retry-failed


def print_retry(report: dict[str, Any], outcomes: Sequence[dict[str, Any]], args: Any, out: TextIO) -> None:
    verb = "would requeue" if args.dry_run else "requeued"
    out.write(f"{verb} {len(report['requeued'])} of {report['found']} record(s) {report['by_status']}\n")
    if report["busy"]:
        out.write(f"  being synced right now (left alone): {', '.join(report['busy'])}\n")
    if report["moved"]:
        out.write(f"  no longer failed (changed since listed, left alone): {', '.join(report['moved'])}\n")
    if args.dry_run:
        table([(i,) for i in report["requeued"]], out)
    elif args.queue_only:
        out.write("  the next sweep syncs them\n")
    else:
        table([(o["id"], o["result"], o.get("reason") or "") for o in outcomes], out)
