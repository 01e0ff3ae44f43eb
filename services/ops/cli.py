"""`python -m services.ops`: the operator's command line (docs/ops.md).

    status                            health checks (exit 1 if unhealthy), counts per syncStatus, failures
    history <id> | history --betnr N  what the sync did to one record, and why
    sync <id> | sync --betnr N        sync one record now; --dry-run prints the field-by-field plan
    backfill [--dry-run]              first-run matching and backfill (resumable; --restart)
    retry-failed [--dry-run]          requeue failed / permanently_failed records and sync them
    unlock <id> | --sweep | --backfill   release a lock (normally never needed)
    check-advoware                    read-only: where the Advoware server differs from the assumed
                                      contract (field casing, rowId, stamp zone, paging, licence);
                                      exit 1 when something would make writes fail
    setup-espocrm --url URL [--dry-run] [--write-env .env]   day one: entity, fields, webhooks

Settings come from the environment / `.env` (services/settings.py), exactly as for the
service. Output is human-readable (`--json` for machines); progress bars go to stderr on a
terminal. `main` takes a runtime factory (services/runtime.py `RuntimeFactory`; by default
the settings from the environment and the real clients), so tests hand it fakes. Exit status: 0 ok, 1 the operation failed or found problems, 2 bad configuration
or usage, 3 another backfill is running.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TextIO

from services.backfill.runner import BackfillOptions
from services.ops.cli_output import (
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    print_backfill,
    print_json,
    print_plan,
    print_retry,
    print_status,
    print_sync_result,
)

if TYPE_CHECKING:
    from services.backfill.plan import Progress
    from services.runtime import Runtime, RuntimeFactory


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
    _add_record_commands(sub)
    _add_bulk_commands(sub)
    _add_lock_commands(sub)
    from services.ops.cli_privacy import add_parsers as add_privacy_parsers
    from services.ops.setup_espocrm import add_parser as add_setup_parser

    add_privacy_parsers(sub)
    add_setup_parser(sub)
    return p


def _add_record_commands(sub: Any) -> None:
    sub.add_parser("status", help="counts per syncStatus, oldest pending work, recent failures")
    sub.add_parser(
        "check-advoware",
        help="read-only: what the Advoware server sends, against the assumed contract (exit 1: writes would fail)",
    )

    h = sub.add_parser("history", help="what the sync did to one record, and why (newest first)")
    h.add_argument("id", nargs="?", help="EspoCRM CBeteiligte id")
    h.add_argument("--betnr", type=int, help="the Advoware betNr instead of the EspoCRM id")

    s = sub.add_parser("sync", help="sync one record now (or show the plan with --dry-run)")
    s.add_argument("id", nargs="?", help="EspoCRM CBeteiligte id")
    s.add_argument("--betnr", type=int, help="the Advoware betNr instead of the EspoCRM id")
    s.add_argument("--dry-run", action="store_true", help="print the field-by-field plan, write nothing")


def _add_bulk_commands(sub: Any) -> None:
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
    b.add_argument(
        "--concurrency",
        type=int,
        default=BackfillOptions.concurrency,
        help=f"records worked on at once (default {BackfillOptions.concurrency})",
    )
    b.add_argument("--limit", type=int, default=50, help="lines per list in the text report (default 50)")

    rl = sub.add_parser("relink", help="link a record to another Advoware party on purpose, then sync it")
    rl.add_argument("id", help="EspoCRM CBeteiligte id")
    rl.add_argument("betnr", type=int, help="the Advoware betNr of the right party")

    r = sub.add_parser("retry-failed", help="requeue failed / permanently_failed records and sync them")
    r.add_argument("--dry-run", action="store_true", help="list what would be requeued")
    r.add_argument("--queue-only", action="store_true", help="only requeue; the next sweep syncs them")
    r.add_argument("--only-failed", action="store_true", help="leave permanently_failed records alone")
    r.add_argument("--concurrency", type=int, default=8)


def _add_lock_commands(sub: Any) -> None:
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


# --------------------------------------------------------------------------- helpers


def _progress_factory(enabled: bool) -> Callable[[int | None, str], Progress]:
    from tqdm import tqdm

    def make(total: int | None, desc: str) -> Progress:
        return tqdm(total=total, desc=desc, unit="rec", disable=not enabled, file=sys.stderr, leave=False)

    return make


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
        print_json({"health": health, **report}, out)
    else:
        print_health(health, out)
        print_status(report, out)
    return verdict


async def cmd_history(rt: Runtime, args: argparse.Namespace, out: TextIO) -> int:
    from services.errors import OperationError
    from services.ops.monitor import record_history
    from services.ops.report import print_history

    try:
        record_id, entries = await record_history(rt, args.id, args.betnr)
    except OperationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print_json({"id": record_id, "entries": entries}, out)
    else:
        print_history(record_id, entries, out)
    return EXIT_OK


async def cmd_sync(rt: Runtime, args: argparse.Namespace, out: TextIO) -> int:
    from services.ops.actions import sync_one

    result = await sync_one(rt.espo, rt.engine, record_id=args.id, betnr=args.betnr, dry_run=args.dry_run)
    if args.json:
        print_json(result, out)
    elif args.dry_run:
        print_plan(result, out)
    else:
        print_sync_result(result, out)
    if args.dry_run:
        return EXIT_FAILED if result.get("action") == "not_found" else EXIT_OK
    return EXIT_FAILED if result.get("result") in ("failed", "permanently_failed") else EXIT_OK


async def cmd_backfill(rt: Runtime, args: argparse.Namespace, out: TextIO, progress: bool) -> int:
    from services.errors import BackfillAbortedError, BackfillBusyError

    options = BackfillOptions(create_in_espocrm=args.create_in_espocrm, concurrency=args.concurrency)
    backfill = rt.backfill(options, _progress_factory(progress))
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
        print_json(result.to_dict(), out)
    else:
        print_backfill(result, out, args.limit)
    return EXIT_OK if result.finished else EXIT_FAILED


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
        print_json(report, out)
    else:
        print_retry(report, outcomes, args, out)
    still_failing = [o for o in outcomes if o["result"] in ("failed", "permanently_failed")]
    return EXIT_FAILED if still_failing else EXIT_OK


async def cmd_unlock(rt: Runtime, args: argparse.Namespace, out: TextIO) -> int:
    from services.ops.actions import unlock

    result = await unlock(rt.redis, args.id, sweep=args.sweep, backfill=args.backfill)
    if args.json:
        print_json(result, out)
    else:
        for name, was in result["released"].items():
            out.write(f"{name}: {'released' if was else 'was not held'}\n")
    return EXIT_OK


async def cmd_deletions(rt: Runtime, args: argparse.Namespace, out: TextIO) -> int:
    from services.ops.console import deletions

    result = await deletions(rt, release=args.release, confirm=args.confirm)
    if args.json:
        print_json(result, out)
        return EXIT_OK
    state = result["held_since"]
    out.write(
        f"deletions: {'HELD since ' + state['since'] + ': ' + state['reason'] if state else 'not held'}\n"
    )
    out.write(f"held records: {len(result['held'])}\n")
    for rid, res in sorted(result.get("synced", {}).items()):
        out.write(f"  {rid}: {res}\n")
    return EXIT_OK


async def cmd_relink(rt: Runtime, args: argparse.Namespace, out: TextIO) -> int:
    from services.ops.relink import relink

    result = await relink(rt.engine, args.id, args.betnr)
    if args.json:
        print_json(result, out)
    else:
        out.write(
            f"record {result['id']}: relinked {result.get('previousBetnr') or '-'} -> {args.betnr}; "
            f"sync {result['result']}" + (f" - {result['reason']}" if result.get("reason") else "") + "\n"
        )
    return EXIT_OK if result["result"] in ("updated", "unchanged") else EXIT_FAILED


COMMANDS: dict[str, Callable[..., Any]] = {
    "status": cmd_status,
    "history": cmd_history,
    "sync": cmd_sync,
    "relink": cmd_relink,
    "unlock": cmd_unlock,
    "deletions": cmd_deletions,
}
WITH_PROGRESS: dict[str, Callable[..., Any]] = {"backfill": cmd_backfill, "retry-failed": cmd_retry_failed}


async def cmd_check_advoware(args: argparse.Namespace, out: TextIO) -> int:
    """Needs Advoware (and Redis for the token) only: it runs without the runtime."""
    from services.errors import ConfigurationError
    from services.ops.advoware_check import check_configured, exit_code
    from services.settings import load_settings

    try:
        findings = await check_configured(load_settings())
    except ConfigurationError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print_json({"findings": [f.as_dict() for f in findings]}, out)
    else:
        for finding in findings:
            print(finding.line(), file=out)
    return exit_code(findings)


@asynccontextmanager
async def open_from_environment() -> AsyncIterator[Runtime]:
    """The default runtime factory: settings from the environment / `.env`, real clients."""
    from services.runtime import open_runtime
    from services.settings import load_settings

    async with open_runtime(load_settings()) as rt:
        yield rt


async def run(args: argparse.Namespace, out: TextIO, runtime_factory: RuntimeFactory) -> int:
    from services.errors import ApiError, ConfigurationError, OperationError

    progress = sys.stderr.isatty() if args.progress is None else args.progress
    try:
        async with runtime_factory() as rt:
            if args.command in WITH_PROGRESS:
                return int(await WITH_PROGRESS[args.command](rt, args, out, progress))
            from services.ops.cli_privacy import COMMANDS as PRIVACY_COMMANDS

            return int(await {**COMMANDS, **PRIVACY_COMMANDS}[args.command](rt, args, out))
    except ConfigurationError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except (OperationError, ApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED


def main(
    argv: Sequence[str] | None = None,
    out: TextIO | None = None,
    runtime_factory: RuntimeFactory | None = None,
) -> int:
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
    if args.command == "check-advoware":
        return asyncio.run(cmd_check_advoware(args, out or sys.stdout))
    if args.command == "setup-espocrm":  # day one: no Redis, no Advoware, no webhook secrets yet
        from services.ops.setup_espocrm import main as setup_main

        return setup_main(args, out or sys.stdout)
    return asyncio.run(run(args, out or sys.stdout, runtime_factory or open_from_environment))
