"""Is EspoCRM set up the way the service needs it? The start-up check of `make serve`
(services/ops/preflight.py), also a check of `python -m services.ops status` and `/vmh/health`.

Read as the service's API user (no admin needed): `GET /Metadata` compared with the one schema
(services/espocrm/schema_check.py), the API user's webhooks, one record's `versionNumber`.
Each problem is one line with its fix. `fail`: writes would fail (a missing entity, field or
enum value, an incompatible type, a too short field) - `make serve` does not start. `warn`: the
sync works, with a gap (no stream: notices wait; no optimistic concurrency: a save during a sync
can be overwritten; a webhook missing, inactive, elsewhere, without `skipOwn` or not in
`ESPOCRM_WEBHOOK_SECRETS`: changes arrive with the sweep's poll only, or echo).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.errors import AuthError
from services.espocrm.schema import ENTITY, WEBHOOK_EVENTS, WEBHOOK_PATH
from services.espocrm.schema_check import Difference, differences

if TYPE_CHECKING:
    from services.settings import Settings
    from services.sync.ports import EspoSetupReader

FAIL, WARN = "fail", "warn"
SETUP = "run `python -m services.ops setup-espocrm --url <the service's public URL>` with an admin's login"
FIXES = {
    "entity": SETUP + " (or install the package of `make espocrm-extension`)",
    "field": SETUP,
    "options": SETUP + " (it adds the values; it never removes one)",
    "length": SETUP + " (it widens the field)",
    "type": "change or rename that field in EspoCRM's Entity Manager (setup-espocrm never changes a type), "
    "then run setup-espocrm",
    "stream": SETUP + ", or switch Stream on for the entity in the Entity Manager",
    "concurrency": SETUP
    + ", or switch Optimistic Concurrency Control on for the entity in the Entity Manager",
}


@dataclass(frozen=True)
class Problem:
    level: str
    message: str
    fix: str

    def line(self) -> str:
        return f"{self.message} - fix: {self.fix}"


def _schema_problem(diff: Difference) -> Problem:
    return Problem(FAIL if diff.fails_writes else WARN, diff.describe(), FIXES[diff.kind])


async def check_espocrm(
    espo: EspoSetupReader, *, webhook_ids: Collection[str], public_url: str | None
) -> list[Problem]:
    """Every problem found, schema first; [] when EspoCRM is set up as the service needs it."""
    try:
        found = differences(await espo.metadata())
    except AuthError as exc:
        return [_forbidden("the entity definitions (GET Metadata)", exc)]
    problems = [_schema_problem(d) for d in found]
    if any(d.kind == "entity" for d in found):
        return problems  # no entity: no webhooks or records to look at
    try:
        hooks = await espo.webhooks()
    except AuthError as exc:
        return [*problems, _forbidden("its webhooks (the Webhooks scope)", exc)]
    problems += webhook_problems(hooks, webhook_ids, public_url)
    if not any(d.kind == "concurrency" for d in found):
        problems += await _version_problems(espo)
    return problems


def webhook_problems(
    hooks: list[dict[str, Any]], webhook_ids: Collection[str], public_url: str | None
) -> list[Problem]:
    out: list[Problem] = []
    for event in WEBHOOK_EVENTS:
        name = f"{ENTITY}.{event}"
        mine = [h for h in hooks if h.get("event") == name]
        known = [h for h in mine if str(h.get("id")) in webhook_ids]
        if not mine:
            out.append(
                Problem(
                    WARN,
                    f"no webhook {name} of the API user: changes arrive with the 15-minute sweep only",
                    SETUP,
                )
            )
        elif not known:
            ids = ", ".join(str(h.get("id")) for h in mine)
            out.append(
                Problem(
                    WARN,
                    f"webhook {name} ({ids}) is not in ESPOCRM_WEBHOOK_SECRETS: its deliveries are refused",
                    "put its `id:secretKey` into ESPOCRM_WEBHOOK_SECRETS (setup-espocrm prints the line)",
                )
            )
        else:
            out += _hook_problems(known[0], event, public_url)
    return out


def _hook_problems(hook: dict[str, Any], event: str, public_url: str | None) -> list[Problem]:
    wid, url = hook.get("id"), str(hook.get("url") or "")
    path = f"{WEBHOOK_PATH}/{event}"
    expected = f"{public_url.rstrip('/')}{path}" if public_url else None
    out: list[Problem] = []
    if not hook.get("isActive"):
        out.append(
            Problem(WARN, f"webhook {wid} ({ENTITY}.{event}) is inactive", SETUP + " (it re-activates it)")
        )
    if not hook.get("skipOwn"):
        out.append(
            Problem(
                WARN,
                f"webhook {wid} ({ENTITY}.{event}) has skipOwn off: every write of the service comes back as an event",
                SETUP + " (it switches skipOwn on)",
            )
        )
    if (expected and url != expected) or not url.endswith(path):
        want = expected or f"<SYNC_PUBLIC_URL>{path}"
        out.append(Problem(WARN, f"webhook {wid} ({ENTITY}.{event}) posts to {url}, not to {want}", SETUP))
    return out


def _forbidden(what: str, exc: AuthError) -> Problem:
    """A 403 (401 is the `espocrm` check's): the API user may not read it, so it is not checked."""
    if exc.status_code != 403:
        raise exc
    return Problem(
        WARN,
        f"the API user may not read {what}: this part of the set-up is not checked",
        "give the API user read access to it in its role, or run setup-espocrm --dry-run with an admin's login",
    )


async def _version_problems(espo: EspoSetupReader) -> list[Problem]:
    """Optimistic concurrency switched on, but is it in effect? A record must carry `versionNumber`."""
    _total, rows = await espo.list(ENTITY, select="id", max_size=1)
    if not rows:
        return []
    record = await espo.get(ENTITY, str(rows[0]["id"]))
    if "versionNumber" in record:
        return []
    return [
        Problem(
            WARN,
            f"{ENTITY} records come without versionNumber: a person's save during a sync can be overwritten",
            FIXES["concurrency"] + "; then clear EspoCRM's cache (Administration → Clear Cache)",
        )
    ]


async def check_for(espo: EspoSetupReader, settings: Settings) -> list[Problem]:
    """`check_espocrm` with the service's settings: its webhook ids and public URL."""
    return await check_espocrm(
        espo, webhook_ids=set(settings.ESPOCRM_WEBHOOK_SECRETS), public_url=settings.SYNC_PUBLIC_URL
    )
