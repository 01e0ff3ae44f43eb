"""`python -m services.ops setup-espocrm --url https://sync.example.de`: day one in one command.

Brings an EspoCRM instance to the one schema (services/espocrm/schema.py): creates the entity
`CBeteiligte` (stream and optimistic concurrency control on) or switches those on, creates every
missing field, adds missing enum values and widens too short text fields; then registers the three
webhooks as the service's API user with `skipOwn: true` at `<url>/vmh/webhook/beteiligte/<event>`,
or re-uses (and re-activates) the ones already there; prints the `ESPOCRM_WEBHOOK_SECRETS` line or
writes it into a dotenv file.

- Idempotent: a second run finds nothing to change and changes nothing.
- `--dry-run` prints every change it would make and makes none.
- Never deletes a field, an option or a record, and never changes a field's type: a field of an
  incompatible type stops the command before anything is changed, naming the field.
- The admin's password is asked for (or taken from `ESPOCRM_ADMIN_PASSWORD`), used for this one
  run and never printed, logged or written anywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from services.errors import OperationError
from services.espocrm import admin as calls
from services.espocrm.schema import (
    ENTITY,
    FIELDS,
    FIELDS_BY_NAME,
    WEBHOOK_EVENTS,
    WEBHOOK_PATH,
    FieldDef,
)
from services.espocrm.schema_check import Difference, differences

if TYPE_CHECKING:
    import httpx

    from services.espocrm.admin import EspoAdminClient
    from services.http.base import ApiClient
    from services.settings import SetupSettings

WEBHOOK_VARIABLE = "ESPOCRM_WEBHOOK_SECRETS"


@dataclass
class Change:
    line: str
    apply: Callable[[], Awaitable[Any]]


@dataclass
class SetupResult:
    changes: list[str]
    secrets: dict[str, str] = field(default_factory=dict)  # webhook id -> secretKey
    complete: bool = True  # every webhook known (a dry run cannot know the new ones' secrets)
    unreadable: list[str] = field(default_factory=list)  # re-used webhooks whose secret EspoCRM withheld

    def secrets_line(self) -> str:
        return f"{WEBHOOK_VARIABLE}=" + ",".join(f"{wid}:{key}" for wid, key in self.secrets.items())


def webhook_url(base_url: str, event: str) -> str:
    return f"{base_url.rstrip('/')}{WEBHOOK_PATH}/{event}"


def _field_summary(spec: FieldDef) -> str:
    parts = [spec.type]
    if spec.options:
        parts.append("values " + ", ".join(repr(o) for o in spec.options))
    if spec.max_length:
        parts.append(f"maxLength {spec.max_length}")
    return "; ".join(parts)


async def schema_changes(admin: EspoAdminClient) -> list[Change]:
    """What brings the instance to the schema; refuses (OperationError) an incompatible type."""
    found = differences(await admin.metadata())
    refused = [d for d in found if d.kind == "type"]
    if refused:
        raise OperationError(
            "; ".join(d.describe() for d in refused)
            + ". setup-espocrm never changes a field's type (that would lose data): change or rename"
            " the field in EspoCRM's Entity Manager, then run it again. Nothing was changed."
        )
    changes: list[Change] = []
    for diff in found:
        changes.extend(_changes_for(admin, diff))
    return changes


def _changes_for(admin: EspoAdminClient, diff: Difference) -> list[Change]:
    if diff.kind == "entity":
        entity = Change(
            f"create entity {ENTITY} (type Base, stream on, optimistic concurrency control on)",
            admin.create_entity,
        )
        return [entity, *(_create_field(admin, f) for f in FIELDS if not f.builtin)]
    if diff.kind == "field":
        return [_create_field(admin, FIELDS_BY_NAME[str(diff.field)])]
    if diff.kind == "options":
        spec = FIELDS_BY_NAME[str(diff.field)]
        key = "typeList" if spec.type == "phone" else "options"
        values = [*diff.have, *diff.want]  # the instance's own values stay, in their order
        added = ", ".join(repr(v) for v in diff.want)
        return [
            Change(
                f"update field {spec.name}: add value(s) {added}",
                partial(admin.update_field, spec.name, {key: values}),
            )
        ]
    if diff.kind == "length":
        return [
            Change(
                f"update field {diff.field}: maxLength {diff.have} -> {diff.want}",
                partial(admin.update_field, str(diff.field), {"maxLength": diff.want}),
            )
        ]
    setting = "stream" if diff.kind == "stream" else "optimisticConcurrencyControl"
    label = "stream" if diff.kind == "stream" else "optimistic concurrency control"
    return [Change(f"update entity {ENTITY}: {label} on", partial(admin.update_entity, {setting: True}))]


def _create_field(admin: EspoAdminClient, spec: FieldDef) -> Change:
    return Change(f"create field {spec.name} ({_field_summary(spec)})", partial(admin.create_field, spec))


async def webhook_changes(api: ApiClient, base_url: str, result: SetupResult) -> list[Change]:
    """Re-use each event's webhook of the API user at our URL (re-activated, skipOwn on), or create it."""
    existing = await calls.webhooks(api)
    changes: list[Change] = []
    for event in WEBHOOK_EVENTS:
        url = webhook_url(base_url, event)
        mine = [w for w in existing if w.get("event") == f"{ENTITY}.{event}" and w.get("url") == url]
        mine.sort(key=lambda w: not w.get("isActive"))
        if not mine:
            changes.append(_create_webhook(api, event, url, result))
            continue
        hook = mine[0]
        if hook.get("secretKey"):
            result.secrets[str(hook["id"])] = str(hook["secretKey"])
        else:
            result.unreadable.append(str(hook["id"]))
        fix = {k: True for k in ("isActive", "skipOwn") if not hook.get(k)}
        if fix:
            names = " and ".join(f"{k} on" for k in fix)
            changes.append(
                Change(
                    f"update webhook {hook['id']} ({ENTITY}.{event}): {names}",
                    partial(calls.update_webhook, api, str(hook["id"]), fix),
                )
            )
    return changes


def _create_webhook(api: ApiClient, event: str, url: str, result: SetupResult) -> Change:
    async def create() -> None:
        hook = await calls.create_webhook(api, event, url)
        result.secrets[str(hook["id"])] = str(hook["secretKey"])

    result.complete = False  # until it is created
    return Change(f"create webhook {ENTITY}.{event} -> {url} (skipOwn, as the API user)", create)


async def run_setup(
    admin: EspoAdminClient, api: ApiClient, base_url: str, *, dry_run: bool, out: TextIO
) -> SetupResult:
    """Plan, print and (unless `dry_run`) apply: the schema first, then the webhooks (EspoCRM
    accepts a webhook only for an entity it has)."""
    result = SetupResult(changes=[])
    verb = "would " if dry_run else ""
    for change in await schema_changes(admin):
        out.write(f"{verb}{change.line}\n")
        result.changes.append(change.line)
        if not dry_run:
            await change.apply()
    for change in await webhook_changes(api, base_url, result):
        out.write(f"{verb}{change.line}\n")
        result.changes.append(change.line)
        if not dry_run:
            await change.apply()
    if not dry_run:
        result.complete = True
    return result


def write_env_line(path: Path, line: str) -> None:
    """Set the variable of `line` in the dotenv `path` (replaced in place, else appended); the
    file is left readable by its owner only (it holds secrets)."""
    name = line.split("=", 1)[0]
    pattern = re.compile(rf"^\s*(export\s+)?{re.escape(name)}\s*=")
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    kept = [ln for ln in lines if not pattern.match(ln)]
    where = next((i for i, ln in enumerate(lines) if pattern.match(ln)), len(kept))
    kept.insert(min(where, len(kept)), line)
    if not path.exists():
        path.touch(mode=0o600)
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    os.chmod(path, 0o600)


def admin_login(given_user: str | None, settings: SetupSettings) -> tuple[str, str]:
    """The admin's user name and password: given, from the environment, or asked on a terminal."""
    import getpass
    import sys

    from services.errors import ConfigurationError

    interactive = sys.stdin.isatty()
    user = given_user or settings.ESPOCRM_ADMIN_USER
    if not user and interactive:
        user = input("EspoCRM admin user name: ").strip()
    secret = settings.ESPOCRM_ADMIN_PASSWORD
    password = secret.get_secret_value() if secret is not None else ""
    if not password and interactive:
        password = getpass.getpass(f"EspoCRM password of {user}: ")
    if not user or not password:
        raise ConfigurationError(
            "setup-espocrm needs an EspoCRM admin's login: run it on a terminal (it asks), or set "
            "ESPOCRM_ADMIN_USER and ESPOCRM_ADMIN_PASSWORD in the environment"
        )
    return user, password


async def command(args: Any, out: TextIO, transport: httpx.AsyncBaseTransport | None = None) -> int:
    """The CLI command; `transport` lets tests talk to the simulator in-process."""
    import sys

    from services.errors import ApiError
    from services.espocrm.admin import EspoAdminClient
    from services.espocrm.client import EspoCrmClient
    from services.settings import load_setup_settings

    settings = load_setup_settings()
    user, password = admin_login(args.admin_user, settings)
    base, timeout = settings.ESPOCRM_API_BASE_URL, settings.HTTP_TIMEOUT_SECONDS
    async with (
        EspoAdminClient(
            base, user, password, timeout=timeout, settings=settings, transport=transport
        ) as admin,
        EspoCrmClient(settings, transport=transport) as api,
    ):
        try:
            result = await run_setup(admin, api, args.url, dry_run=args.dry_run, out=out)
        except (OperationError, ApiError) as exc:
            print(f"setup-espocrm: {exc}", file=sys.stderr)
            return 1
    _report(result, args, out)
    return 0


def _report(result: SetupResult, args: Any, out: TextIO) -> None:
    n = len(result.changes)
    if args.dry_run:
        out.write(f"dry run: {n} change(s) listed, none made\n")
    else:
        out.write(
            f"{n} change(s) made\n" if n else "nothing to change: EspoCRM is set up as the service needs it\n"
        )
    lines = [result.secrets_line(), f"SYNC_PUBLIC_URL={args.url.rstrip('/')}"]
    if result.unreadable:
        ids = ", ".join(result.unreadable)
        out.write(
            f"{WEBHOOK_VARIABLE}: EspoCRM did not show the secret key of webhook(s) {ids}; copy it from "
            "Administration > Webhooks into the line: "
        )
        pairs = [
            *(f"{w}:{k}" for w, k in result.secrets.items()),
            *(f"{w}:<secretKey>" for w in result.unreadable),
        ]
        out.write(f"{WEBHOOK_VARIABLE}=" + ",".join(pairs) + "\n")
    elif not result.complete:
        out.write(f"{WEBHOOK_VARIABLE}: known once the webhooks exist (run without --dry-run)\n")
    elif args.write_env and not args.dry_run:
        for line in lines:
            write_env_line(Path(args.write_env), line)
        out.write(f"{WEBHOOK_VARIABLE} and SYNC_PUBLIC_URL written to {args.write_env}\n")
    else:
        out.write("".join(f"{line}\n" for line in lines))


def add_parser(sub: Any) -> None:
    """The `setup-espocrm` command of `python -m services.ops` (services/ops/cli.py)."""
    st = sub.add_parser(
        "setup-espocrm",
        help="create or complete the CBeteiligte entity, its fields and the three webhooks (an admin's login)",
    )
    st.add_argument(
        "--url", required=True, help="the service's public base URL, e.g. https://sync.example.de"
    )
    st.add_argument("--admin-user", help="EspoCRM admin user name (else ESPOCRM_ADMIN_USER, else asked)")
    st.add_argument("--dry-run", action="store_true", help="print every change it would make; make none")
    st.add_argument(
        "--write-env",
        nargs="?",
        const=".env",
        metavar="PATH",
        help="write ESPOCRM_WEBHOOK_SECRETS and SYNC_PUBLIC_URL into this dotenv file (default .env)",
    )


def main(args: Any, out: TextIO) -> int:
    """Exit status: 0 done (or nothing to do), 1 refused or EspoCRM failed, 2 configuration."""
    import asyncio
    import sys

    from services.errors import ConfigurationError

    try:
        return asyncio.run(command(args, out))
    except ConfigurationError as exc:
        print(str(exc), file=sys.stderr)
        return 2
