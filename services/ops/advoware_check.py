"""`python -m services.ops check-advoware`: what the connected Advoware server really sends, against
the contract this project assumes (shared/docs/advoware-api.md Part 2 and "Evidence that points
away from Part 2"). Read-only: a login and a few listing pages, never a write.

| topic        | looked at                                         | error (writes or syncs fail) when       |
|--------------|---------------------------------------------------|-----------------------------------------|
| login        | the token request and the first listing page      | refused, not activated, offline, 404    |
| licence      | the Kürzel licensed for the product, if listed    | the user is not among them              |
| listing      | the answer's shape                                | not an array, items without `betNr`     |
| fields       | names and casing of the first page's items        | no `name` (every write needs it)        |
| rowId        | whether the server sends a row version            | never (the hourly scan compares content)|
| geaendertAm  | present; its zone against the answer's `Date`     | never (warned: edits wait for the scan) |
| page size    | `take=100` honoured, `skip` honoured              | `skip` ignored (no listing is complete) |

Each finding is one line with its fix. `check_configured(settings)` is the entry point for other
start-up checks (`make serve`'s preflight, `status`); `exit_code` turns findings into the
command's exit status (1 when any finding is an error).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol
from zoneinfo import ZoneInfo

from services.advoware.contract import FIELD_CHANGED_AT, FIELD_KEY, FIELD_ROW_ID, MAX_TAKE
from services.advoware.fields import canonical, spelling
from services.errors import ApiError, AuthError, NotFoundError, UnavailableError, ValidationError

if TYPE_CHECKING:
    from services.settings import Settings

log = logging.getLogger(__name__)

Severity = Literal["error", "warning", "info"]
SKEW = timedelta(minutes=5)  # clock difference tolerated between a stamp and the server's Date
RECENT = timedelta(minutes=15)  # a change this fresh tells the stamps' zone
LOOKBACK = timedelta(hours=26)  # changes read for the zone check (a wrong zone shifts < 26 h)
ZONE_PAGES = 5  # pages of recent changes read at most for the newest stamp


@dataclass(frozen=True)
class Finding:
    severity: Severity
    topic: str
    text: str
    fix: str = ""

    def line(self) -> str:
        fix = f" -> fix: {self.fix}" if self.fix else ""
        return f"{self.severity.upper():7} {self.topic}: {self.text}{fix}"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class SampleSource(Protocol):
    async def sample_page(
        self, *, skip: int = 0, take: int = MAX_TAKE, changed_since_local: str | None = None
    ) -> tuple[Any, str | None]: ...

    async def licensed_users(self, product: int) -> list[str] | None: ...


@dataclass(frozen=True)
class Account:
    """Who the service signs in as (ADVOWARE_USER, ADVOWARE_PRODUCT_ID): the licence check's subject."""

    user: str
    product: int


def exit_code(findings: list[Finding]) -> int:
    return 1 if any(f.severity == "error" for f in findings) else 0


async def check_configured(settings: Settings) -> list[Finding]:
    """Open Redis (the token cache) and the Advoware client of `settings`; the findings."""
    from redis.exceptions import RedisError

    from services.advoware.client import AdvowareClient
    from services.store.connection import connect

    redis = connect(settings.REDIS_URL)
    client = AdvowareClient(settings, redis)
    try:
        account = Account(settings.ADVOWARE_USER, settings.ADVOWARE_PRODUCT_ID)
        return await check_advoware(client, settings.timezone, account)
    except (RedisError, OSError) as exc:  # the token cache: nothing was asked of Advoware
        fix = "start Redis or correct REDIS_URL"
        return [Finding("error", "redis", f"unreachable ({type(exc).__name__})", fix)]
    finally:
        await client.aclose()
        await redis.aclose()


async def check_advoware(client: SampleSource, tz: ZoneInfo, account: Account) -> list[Finding]:
    """Every finding about the server behind `client`; `tz` is ADVOWARE_TIMEZONE."""
    out: list[Finding] = []
    try:
        page, _date = await client.sample_page()
    except ApiError as exc:
        return [_login_failure(exc)]
    if not isinstance(page, list):
        return [Finding("error", "listing", "the listing answer is not a JSON array", _CONTRACT_FIX)]
    out.append(Finding("info", "login", "token issued and the listing answered: App-ID and user activated"))
    out.append(await _licence(client, account))
    if not page:
        out.append(Finding("warning", "fields", "the server lists no Beteiligte: nothing to compare yet"))
        return out
    out.extend(_fields(page))
    if any(f.severity == "error" for f in out):
        return out
    out.extend(await _paging(client, page))
    out.extend(await _stamps(client, page, tz))
    return out


_CONTRACT_FIX = "compare the firm's Swagger with services/advoware/contract.py and correct it there"


def _login_failure(exc: ApiError) -> Finding:
    reason = getattr(exc, "reason", None) or str(exc)
    if isinstance(exc, AuthError):
        fixes = {
            "product or user not activated": "ask advoware GmbH to activate ADVOWARE_APP_ID for this "
            "Kanzlei and ADVOWARE_PRODUCT_ID, and the user for the API",
            "kanzlei/database not registered": "check ADVOWARE_KANZLEI and ADVOWARE_DATABASE",
            "wrong user or password": "check ADVOWARE_USER and ADVOWARE_PASSWORD",
        }
        fix = fixes.get(reason, "check ADVOWARE_APP_ID, ADVOWARE_API_KEY, ADVOWARE_USER, ADVOWARE_PASSWORD")
        return Finding("error", "login", f"refused: {reason}", fix)
    if isinstance(exc, UnavailableError):
        # "Advoware does not answer" (and "unreachable" for Redis) are what make serve's preflight
        # recognises as "not reachable now" rather than "differs" (services/ops/preflight.py).
        return Finding(
            "error",
            "login",
            f"Advoware does not answer: {reason}",
            "start the advoware Manager service on the firm's server; check ADVOWARE_API_BASE_URL",
        )
    if isinstance(exc, NotFoundError):
        return Finding("error", "listing", "the Beteiligte listing answers 404", _CONTRACT_FIX)
    if isinstance(exc, ValidationError):
        return Finding("error", "page size", f"the listing refuses take={MAX_TAKE}: {reason}", _CONTRACT_FIX)
    return Finding("error", "listing", f"the listing failed: {reason}", _CONTRACT_FIX)


async def _licence(client: SampleSource, account: Account) -> Finding:
    """Is the user's Kürzel among those licensed for the product (where the server lists them)?"""
    try:
        users = await client.licensed_users(account.product)
    except ApiError as exc:
        return Finding(
            "warning", "licence", f"the licence list failed: {exc}", "ask the vendor about the licence"
        )
    if users is None:
        return Finding("info", "licence", "the server offers no licence list; the login above is the check")
    if account.user.casefold() not in {u.casefold() for u in users}:
        text = f"the user {account.user} is not among the {len(users)} Kürzel licensed for product {account.product}"
        fix = f"ask advoware GmbH to license {account.user} for product {account.product}, or use a licensed Kürzel"
        return Finding("error", "licence", text, fix)
    return Finding("info", "licence", f"{account.user} is licensed for product {account.product}")


def _fields(page: list[Any]) -> list[Finding]:
    """Names and casing of the sample's items."""
    items = [item for item in page if isinstance(item, dict)]
    renamed: dict[str, str] = {}
    present: set[str] = set()
    for item in items:
        renamed.update(spelling(item))
        present.update(canonical(item))
    out: list[Finding] = []
    if len(items) != len(page) or FIELD_KEY not in present:
        out.append(
            Finding("error", "fields", f"listing items without {FIELD_KEY} (in any casing)", _CONTRACT_FIX)
        )
        return out
    if "name" not in present:
        out.append(Finding("error", "fields", "no `name` field: every write sends it", _CONTRACT_FIX))
    if renamed:
        shown = ", ".join(sorted(renamed.values())[:6])
        case = "PascalCase" if all(v[:1].isupper() for v in renamed.values()) else "another casing"
        out.append(
            Finding(
                "warning",
                "fields",
                f"the server spells fields in {case} ({shown}), the contract camelCase; they are read "
                "case-insensitively, writes go out in camelCase",
                "none for reading; confirm with the vendor that writes in camelCase are accepted",
            )
        )
    if FIELD_ROW_ID in present:
        out.append(Finding("info", "rowId", "sent: the hourly scan compares row versions"))
    else:
        out.append(Finding("info", "rowId", "not sent: the hourly scan compares content (no extra calls)"))
    return out


async def _paging(client: SampleSource, first: list[dict[str, Any]]) -> list[Finding]:
    """`take` and `skip` honoured? One more page (at skip = the first page's length)."""
    try:
        second, _date = await client.sample_page(skip=len(first))
    except ApiError as exc:
        return [Finding("error", "page size", f"the second listing page failed: {exc}", _CONTRACT_FIX)]
    first_ids = {canonical(i).get(FIELD_KEY) for i in first}
    second_ids = {canonical(i).get(FIELD_KEY) for i in second} if isinstance(second, list) else set()
    if second_ids and second_ids <= first_ids:
        text = "the second page repeats the first: the server ignores `skip`; no listing can be read whole"
        return [Finding("error", "page size", text, _CONTRACT_FIX)]
    if len(first) < MAX_TAKE and second_ids:
        text = (
            f"pages are capped at {len(first)} (take={MAX_TAKE} asked): listings read on to the "
            "empty page, one call more each"
        )
        return [
            Finding("warning", "page size", text, "none needed; ask the vendor for the maximum page size")
        ]
    return [Finding("info", "page size", f"take={MAX_TAKE} and skip honoured")]


async def _stamps(client: SampleSource, page: list[dict[str, Any]], tz: ZoneInfo) -> list[Finding]:
    """`geaendertAm` present? In which zone, against the server's `Date` header?"""
    if not any(FIELD_CHANGED_AT in canonical(i) for i in page):
        text = f"no {FIELD_CHANGED_AT}: the 15-minute poll finds no edit; they arrive with the hourly scan"
        return [
            Finding(
                "warning", FIELD_CHANGED_AT, text, "lower SYNC_DELETION_SCAN_SECONDS if an hour is too long"
            )
        ]
    from services.advoware.timezone import query_since_local

    since = query_since_local(datetime.now(UTC) - LOOKBACK, tz)
    newest: str | None = None
    date: str | None = None
    try:
        for n in range(ZONE_PAGES):
            rows, date = await client.sample_page(skip=n * MAX_TAKE, changed_since_local=since)
            stamps = [str(s) for r in rows or [] if (s := canonical(r).get(FIELD_CHANGED_AT))]
            newest = max([*stamps, *([newest] if newest else [])], default=None, key=_naive)
            if len(rows or []) < MAX_TAKE:
                break
    except ApiError as exc:
        text = f"the listing refuses geaendertAb: {exc}"
        return [Finding("error", FIELD_CHANGED_AT, text, _CONTRACT_FIX)]
    return [_zone(newest, date, tz)]


def _naive(stamp: str) -> datetime:
    from services.advoware.timezone import parse_advoware_datetime

    return parse_advoware_datetime(stamp).replace(tzinfo=None)


def _zone(newest: str | None, date: str | None, tz: ZoneInfo) -> Finding:
    """Which zone makes the newest change stamp fit the server's clock."""
    from services.advoware.timezone import local_to_utc, parse_advoware_datetime

    topic = f"{FIELD_CHANGED_AT} zone"
    if newest is None or date is None:
        why = "no change in the last day" if newest is None else "the answer has no Date header"
        return Finding("info", topic, f"not checked ({why}); edit a party in Advoware and run again")
    if parse_advoware_datetime(newest).tzinfo is not None:
        return Finding(
            "info", topic, f"stamps carry their offset ({newest}): ADVOWARE_TIMEZONE is not needed"
        )
    server_now = parsedate_to_datetime(date).astimezone(UTC)
    as_configured = server_now - local_to_utc(newest, tz)  # the newest change's age, read as `tz`
    as_utc = server_now - _naive(newest).replace(tzinfo=UTC)
    configured = f"ADVOWARE_TIMEZONE={tz.key}"
    if -SKEW <= as_configured <= RECENT:
        return Finding(
            "info", topic, f"stamps fit {configured} (newest change {_minutes(as_configured)} old)"
        )
    if -SKEW <= as_utc <= RECENT:
        text = (
            f"the newest change is {_minutes(as_utc)} old read as UTC, {_minutes(as_configured)} read "
            f"as {tz.key}: the server writes its stamps in UTC"
        )
        return Finding("warning", topic, text, "set ADVOWARE_TIMEZONE=UTC")
    if as_configured < -SKEW:
        ahead = -as_utc
        text = (
            f"the newest change lies {_minutes(-as_configured)} after the server's clock read as "
            f"{tz.key}: the stamps are about UTC{_offset(ahead)}"
        )
        return Finding(
            "warning", topic, text, "set ADVOWARE_TIMEZONE to the firm's zone (e.g. Europe/Berlin)"
        )
    text = f"inconclusive: the newest change is {_minutes(as_configured)} old read as {tz.key}"
    return Finding("info", topic, text, "edit a party in Advoware and run again")


def _minutes(delta: timedelta) -> str:
    return f"{round(delta.total_seconds() / 60)} min"


def _offset(delta: timedelta) -> str:
    quarter = round(delta.total_seconds() / 900) * 15
    sign = "+" if quarter >= 0 else "-"
    return f"{sign}{abs(quarter) // 60:02d}:{abs(quarter) % 60:02d}"
