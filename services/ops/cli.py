"""`python -m services.ops`: the operator's command line (docs/ops.md).

    status                            health checks (exit 1 if unhealthy), counts per syncStatus, failures
    history <id> | history --betnr N  what the sync did to one record, and why
    sync <id> | sync --betnr N        sync one record now; --dry-run prints the field-by-field plan
    backfill [--dry-run]              first-run matching and backfill (resumable; --restart)
    retry-failed [--dry-run]          requeue failed / permanently_failed records and sync them
    unlock <id> | --sweep | --backfill   release a lock (normally never needed)

Settings come from the environment / `.env` (services/settings.py), exactly as for the
service. Output is human-readable (`--json` for machines); progress bars go to stderr on a
terminal. Exit status: 0 ok, 1 the operation failed or found problems, 2 bad configuration
or usage, 3 another backfill is running.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from services.backfill.plan import Progress
    from services.backfill.runner import BackfillResult
    from services.runtime import Runtime

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUSY = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m services.ops",
        description="Operations for the EspoCRM <-> Advoware Beteiligte sync.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Against the sandbox:  set -a; source sandbox/sandbox.env; set +a; "
        "python_modules/bin/python -m services.ops status",
    )
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details (ids only) to stderr")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars on stderr (default: when stderr is a terminal)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="command")

    sub.add_parser("status", help="counts per syncStatus, oldest pending work, recent failures")

    h = sub.add_parser("history", help="what the sync did to one record, and why (newest first)")
    h.add_argument("id", nargs="?", help="EspoCRM CBeteiligte id")
    h.add_argument("--betnr", type=int, help="the Advoware betNr instead of the EspoCRM id")

    s = sub.add_parser("sync", help="sync one record now (or show the plan with --dry-run)")
    s.add_argument("id", nargs="?", help="EspoCRM CBeteiligte id")
    s.add_argument("--betnr", type=int, help="the Advoware betNr instead of the EspoCRM id")
    s.add_argument("--dry-run", action="store_true", help="print the field-by-field plan, write nothing")

    b = sub.add_parser("backfill", help="first run: link existing pairs, create what is missing")
    b.add_argument(
        "--dry-run", action="store_true", help="show what would be linked/created/updated; write nothing"
    )
    b.add_argument(
        "--restart", action="store_true", help="start a new run instead of resuming an interrupted one"
    )
    b.add_argument(
        "--create-in-espocrm",
        action="store_true",
        help="also create Advoware-only records in EspoCRM (default: report them only)",
    )
    b.add_argument("--concurrency", type=int, default=8, help="records worked on at once (default 8)")
    b.add_argument("--limit", type=int, default=50, help="lines per list in the text report (default 50)")

    rl = sub.add_parser("relink", help="link a record to another Advoware party on purpose, then sync it")
    rl.add_argument("id", help="EspoCRM CBeteiligte id")
    rl.add_argument("betnr", type=int, help="the Advoware betNr of the right party")

    r = sub.add_parser("retry-failed", help="requeue failed / permanently_failed records and sync them")
    r.add_argument("--dry-run", action="store_true", help="list what would be requeued")
    r.add_argument("--queue-only", action="store_true", help="only requeue; the next sweep syncs them")
    r.add_argument("--only-failed", action="store_true", help="leave permanently_failed records alone")
    r.add_argument("--concurrency", type=int, default=8)

    d = sub.add_parser("deletions", help="the bulk-404 breaker: show held deletions, release or confirm them")
    way_out = d.add_mutually_exclusive_group()
    way_out.add_argument(
        "--release", action="store_true", help="configuration fixed: sync the held records again"
    )
    way_out.add_argument(
        "--confirm", action="store_true", help="the deletions are real: mark them deleted_in_advoware"
    )

    u = sub.add_parser("unlock", help="release a lock by force (stale locks recover by themselves)")
    u.add_argument("id", nargs="?", help="EspoCRM id whose record lock to release")
    u.add_argument("--sweep", action="store_true", help="release the sweep lock")
    u.add_argument("--backfill", action="store_true", help="release the backfill lock")
    return p


# --------------------------------------------------------------------------- helpers


def _progress_factory(enabled: bool) -> Callable[[int | None, str], Progress]:
    from tqdm import tqdm

    def make(total: int | None, desc: str) -> Progress:
        return tqdm(total=total, desc=desc, unit="rec", disable=not enabled, file=sys.stderr, leave=False)

    return make


def _print_json(data: Any, out: TextIO) -> None:
    out.write(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n")


def _table(rows: Sequence[Sequence[Any]], out: TextIO, indent: str = "  ") -> None:
    if not rows:
        return
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write(indent + "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n")


def _clip(items: Sequence[Any], limit: int) -> tuple[Sequence[Any], int]:
    return (items[:limit], len(items) - limit) if len(items) > limit else (items, 0)


# --------------------------------------------------------------------------- commands


async def cmd_status(rt: Runtime, args: argparse.Namespace, out: TextIO) -> int:
    """Exit 1 when unhealthy (the checks of GET /vmh/health), so cron/monitoring can use it."""
    from services.ops.monitor import check
    from services.ops.report import print_health
    from services.sync.status import status_report

    health = (await check(rt)).as_dict()
    verdict = EXIT_OK if health["healthy"] else EXIT_FAILED
    report = await status_report(rt.espo, rt.redis)
    if args.json:
        _print_json({"health": health, **report}, out)
        return verdict
    print_health(health, out)
    out.write("\nSync status (EspoCRM CBeteiligte)\n")
    _table([(k, v) for k, v in report["counts"].items()], out)
    out.write("\nOldest pending work:\n")
    if report["oldest_pending"]:
        _table([(r["id"], r["syncStatus"], f"since {r['since']}") for r in report["oldest_pending"]], out)
    else:
        out.write("  none\n")
    out.write("\nRecent failures:\n")
    if report["recent_failures"]:
        _table([(f["at"][:19], f["id"], f.get("reason", "")) for f in report["recent_failures"][:10]], out)
    else:
        out.write("  none\n")
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
    return verdict


async def cmd_history(rt: Runtime, args: argparse.Namespace, out: TextIO) -> int:
    from services.ops.monitor import record_history
    from services.ops.report import print_history

    try:
        record_id, entries = await record_history(rt, args.id, args.betnr)
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        _print_json({"id": record_id, "entries": entries}, out)
    else:
        print_history(record_id, entries, out)
    return EXIT_OK


async def cmd_relink(rt: Runtime, args: argparse.Namespace, out: TextIO) -> int:
    from services.ops.relink import relink

    result = await relink(rt.engine, args.id, args.betnr)
    if args.json:
        _print_json(result, out)
    else:
        out.write(
            f"record {result['id']}: relinked {result.get('previousBetnr') or '-'} -> {args.betnr}; "
            f"sync {result['result']}" + (f" - {result['reason']}" if result.get("reason") else "") + "\n"
        )
    return EXIT_OK if result["result"] in ("updated", "unchanged") else EXIT_FAILED


async def cmd_sync(rt: Runtime, args: argparse.Namespace, out: TextIO) -> int:
    from services.ops.actions import sync_one

    result = await sync_one(rt.espo, rt.engine, record_id=args.id, betnr=args.betnr, dry_run=args.dry_run)
    if args.json:
        _print_json(result, out)
    elif args.dry_run:
        _print_plan(result, out)
    else:
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
    if args.dry_run:
        return EXIT_FAILED if result.get("action") == "not_found" else EXIT_OK
    return EXIT_FAILED if result.get("result") in ("failed", "permanently_failed") else EXIT_OK


def _print_plan(plan: dict[str, Any], out: TextIO) -> None:
    what = {
        "create": "would CREATE it in Advoware",
        "update": "would write the fields below",
        "none": "both sides agree: nothing to write",
        "parked": "parked for a person: a sync now would requeue it",
        "deleted_in_advoware": "would mark it deleted_in_advoware (betnr not found)",
        "not_found": "not found in EspoCRM",
    }.get(plan["action"], plan["action"])
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
        _table(rows, out)


async def cmd_backfill(rt: Runtime, args: argparse.Namespace, out: TextIO, progress: bool) -> int:
    from services.backfill.runner import Backfill
    from services.errors import BackfillAbortedError, BackfillBusyError

    backfill = Backfill(
        espo=rt.espo,
        advo=rt.advo,
        redis=rt.redis,
        engine=rt.engine,
        tz=rt.settings.timezone,
        create_in_espocrm=args.create_in_espocrm,
        concurrency=args.concurrency,
        progress=_progress_factory(progress),
    )
    try:
        result = await backfill.run(dry_run=args.dry_run, restart=args.restart)
    except BackfillBusyError as exc:
        print(f"backfill not started: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except BackfillAbortedError as exc:
        print(
            f"backfill interrupted: {exc}. Finished items are saved; run it again to resume.", file=sys.stderr
        )
        return EXIT_FAILED
    if args.json:
        _print_json(result.to_dict(), out)
    else:
        _print_backfill(result, out, args.limit)
    return EXIT_OK if result.finished else EXIT_FAILED


def _print_backfill(result: BackfillResult, out: TextIO, limit: int) -> None:
    c = result.plan.counts()
    report = result.plan.report
    if result.dry_run:
        out.write("Backfill DRY RUN - nothing was written\n")
    else:
        out.write(
            f"Backfill run {result.run_id}: {'finished' if result.finished else 'finished with failures'}"
            + (f" (resumed; {result.already_done} items were already done)" if result.resumed else "")
            + "\n"
        )
    dry = result.dry_run
    _table(
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
            (
                "Advoware-only",
                f"{c['advo_only']} "
                + (
                    f"({'would create' if dry else 'created'} in EspoCRM)"
                    if c["to_create_in_espocrm"]
                    else "(report only; --create-in-espocrm)"
                ),
            ),
            (
                "ambiguous",
                f"{c['ambiguous']} group(s), {c['ambiguous_espocrm_records']} EspoCRM record(s) held as conflict",
            ),
            ("conflicts", f"{c['conflicts']} (betnr problems, not touched)"),
        ],
        out,
    )
    if result.dry_run and result.plan.updates:
        shown, more = _clip(result.plan.updates, limit)
        out.write(f"\nWould update ({len(result.plan.updates)} pairs):\n")
        rows: list[tuple[Any, ...]] = [
            ("EspoCRM id", "betnr", "field", "EspoCRM", "Advoware", "after", "rule")
        ]
        for p in shown:
            for f in p.fields:
                rows.append(
                    (p.espo_id, p.betnr, f["field"], f["espocrm"], f["advoware"], f["result"], f["rule"])
                )
        _table(rows, out)
        if more:
            out.write(f"  ... and {more} more (--json for all)\n")
    for title, items, fmt in (
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
    ):
        if items:
            shown, more = _clip(items, limit)
            out.write(f"\n{title}:\n")
            _table([fmt(x) for x in shown], out)
            if more:
                out.write(f"  ... and {more} more (--json for all)\n")
    if not result.dry_run:
        out.write(
            "\nOutcomes: "
            + (", ".join(f"{k} {v}" for k, v in sorted(result.outcomes.items())) or "none")
            + "\n"
        )
        if result.created_in_advoware:
            out.write(f"Created in Advoware: {len(result.created_in_advoware)}\n")
        if result.created_in_espocrm:
            out.write(f"Created in EspoCRM: {len(result.created_in_espocrm)}\n")
        if result.failures:
            out.write(f"\nFailures ({len(result.failures)}; a rerun retries them):\n")
            _table([(f["item"], f["action"], f["reason"]) for f in result.failures[:limit]], out)


async def cmd_retry_failed(rt: Runtime, args: argparse.Namespace, out: TextIO, progress: bool) -> int:
    from services.ops.actions import RETRYABLE, outcome_dict, requeue_failed
    from services.sync.model import Trigger
    from services.sync.states import SyncStatus

    statuses = (SyncStatus.FAILED,) if args.only_failed else RETRYABLE
    report = await requeue_failed(rt.espo, rt.engine, dry_run=args.dry_run, statuses=statuses)
    outcomes: list[dict[str, Any]] = []
    if not args.dry_run and not args.queue_only and report["requeued"]:
        bar = _progress_factory(progress)(len(report["requeued"]), "retry")
        sem = asyncio.Semaphore(max(1, args.concurrency))

        async def one(rid: str) -> dict[str, Any]:
            async with sem:
                res = outcome_dict(await rt.engine.sync_record(rid, Trigger.SWEEP))
            bar.update(1)
            return res

        try:
            outcomes = list(await asyncio.gather(*(one(i) for i in report["requeued"])))
        finally:
            bar.close()
    report["outcomes"] = outcomes
    if args.json:
        _print_json(report, out)
    else:
        verb = "would requeue" if args.dry_run else "requeued"
        out.write(f"{verb} {len(report['requeued'])} of {report['found']} record(s) {report['by_status']}\n")
        if report["busy"]:
            out.write(f"  being synced right now (left alone): {', '.join(report['busy'])}\n")
        if args.dry_run:
            _table([(i,) for i in report["requeued"]], out)
        elif args.queue_only:
            out.write("  the next sweep syncs them\n")
        else:
            _table([(o["id"], o["result"], o.get("reason") or "") for o in outcomes], out)
    still_failing = [o for o in outcomes if o["result"] in ("failed", "permanently_failed")]
    return EXIT_FAILED if still_failing else EXIT_OK


async def cmd_unlock(rt: Runtime, args: argparse.Namespace, out: TextIO) -> int:
    from services.ops.actions import unlock

    result = await unlock(rt.redis, args.id, sweep=args.sweep, backfill=args.backfill)
    if args.json:
        _print_json(result, out)
    else:
        for name, was in result["released"].items():
            out.write(f"{name}: {'released' if was else 'was not held'}\n")
    return EXIT_OK


async def cmd_deletions(rt: Runtime, args: argparse.Namespace, out: TextIO) -> int:
    from services.sync.engine import Trigger

    guard = rt.engine.deletions
    result: dict[str, Any] = {"held_since": await guard.state(), "held": await guard.held()}
    if args.release or args.confirm:
        ids = await guard.release(confirm=args.confirm)
        outcomes = await rt.engine.sync_many(ids, Trigger.RETRY_NOW) if ids else []
        result["synced"] = {o.record_id: o.result.value for o in outcomes}
    if args.json:
        _print_json(result, out)
        return EXIT_OK
    state = result["held_since"]
    out.write(
        f"deletions: {'HELD since ' + state['since'] + ': ' + state['reason'] if state else 'not held'}\n"
    )
    out.write(f"held records: {len(result['held'])}\n")
    for rid, res in sorted(result.get("synced", {}).items()):
        out.write(f"  {rid}: {res}\n")
    return EXIT_OK


async def run(args: argparse.Namespace, out: TextIO) -> int:
    from services.errors import ApiError, ConfigurationError
    from services.ops.actions import OpsError
    from services.runtime import open_runtime
    from services.settings import load_settings

    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    try:
        async with open_runtime(settings) as rt:
            if args.command == "status":
                return await cmd_status(rt, args, out)
            if args.command == "history":
                return await cmd_history(rt, args, out)
            if args.command == "sync":
                return await cmd_sync(rt, args, out)
            if args.command == "backfill":
                return await cmd_backfill(rt, args, out, progress)
            if args.command == "relink":
                return await cmd_relink(rt, args, out)
            if args.command == "retry-failed":
                return await cmd_retry_failed(rt, args, out, progress)
            if args.command == "unlock":
                return await cmd_unlock(rt, args, out)
            if args.command == "deletions":
                return await cmd_deletions(rt, args, out)
    except OpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ApiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    raise AssertionError(args.command)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("sync", "history") and (args.id is None) == (args.betnr is None):
        parser.error(f"{args.command} needs exactly one of <id> and --betnr")
    if args.command == "unlock" and not (args.id or args.sweep or args.backfill):
        parser.error("unlock needs <id>, --sweep or --backfill")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    return asyncio.run(run(args, out or sys.stdout))
