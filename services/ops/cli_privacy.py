"""`restore` and `forget`: the ops CLI's two commands about one record's values (a person's
decision after a conflict, and erasing the service's copies of a record's personal data)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from services.runtime import Runtime


def add_parsers(sub: Any) -> None:
    r = sub.add_parser(
        "restore", help="put the Advoware value a conflict overwrote back on both sides (a person's decision)"
    )
    r.add_argument("id", help="EspoCRM CBeteiligte id")
    r.add_argument("field", help="canonical field name as the history shows it, e.g. title, last_name")
    f = sub.add_parser("forget", help="erase the service's copies of one record's personal data (Redis)")
    f.add_argument("id", help="EspoCRM CBeteiligte id")


async def cmd_restore(rt: Runtime, args: argparse.Namespace, out: TextIO) -> int:
    from services.ops.cli_output import EXIT_FAILED, EXIT_OK, print_json
    from services.ops.restore import restore

    result = await restore(rt, args.id, args.field)
    if args.json:
        print_json(result, out)
    else:
        out.write(
            f"record {args.id}: {args.field} restored to the Advoware value the conflict of "
            f"{result['conflict_at']} overwrote; sync {result['sync']['result']}\n"
        )
    return EXIT_OK if result["sync"]["result"] in ("updated", "unchanged") else EXIT_FAILED


async def cmd_forget(rt: Runtime, args: argparse.Namespace, out: TextIO) -> int:
    from services.ops.cli_output import EXIT_OK, print_json
    from services.sync.forget import forget_locked

    done = await forget_locked(rt.engine.locks, args.id)
    if args.json:
        print_json(done.as_dict(), out)
    else:
        out.write(
            f"record {args.id}: {len(done.keys_deleted)} keys deleted, {done.entries_removed} entries removed\n"
        )
    return EXIT_OK


COMMANDS: dict[str, Callable[..., Any]] = {"restore": cmd_restore, "forget": cmd_forget}
