"""Is the sync healthy? The checks behind `GET /vmh/health`, `python -m services.ops status`
and the alerts.

| check          | fail (unhealthy: HTTP 503, exit 1)                 | warn (healthy, needs a look)        |
|----------------|----------------------------------------------------|-------------------------------------|
| `redis`        | PING fails                                         |                                     |
| `espocrm`      | unreachable, or the API key refused (401/403)      |                                     |
| `espocrm_setup`| writes would fail: entity, field, enum value, type | stream, concurrency control, webhooks|
| `advoware_contract` |                                               | the start-up check-advoware found some |
| `advoware`     | no token obtainable, or the API does not answer    |                                     |
|                | (either: its circuit breaker is open - reported    |                                     |
|                | from it with the records waiting, not called)      |                                     |
| `sweep`        | last completed sweep older than two intervals      | no sweep completed yet              |
| `queue`        |                                                    | dead-lettered events (BullMQ DLQ)   |
| `records`      |                                                    | records permanently_failed/conflict |
| `notices`      |                                                    | notices waiting, channel broken     |

Each check runs with its own time limit, so one hanging system cannot hang the report. The
report holds ids, counts and reasons only (no names, no values).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.conditions import AlertCondition, ConditionKind
from services.errors import ApiError, AuthError
from services.espocrm.fields import SYNC_STATUS
from services.store.service_records import last_sweep, ping, queue_depths
from services.sync.model import ENTITY

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from services.sync.notify import Notifier
    from services.sync.ports import AdvoProbe, EspoLister

CHECK_TIMEOUT_SECONDS = 10.0
OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Check:
    state: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, **self.detail}


@dataclass
class HealthReport:
    checked_at: str
    checks: dict[str, Check]

    @property
    def healthy(self) -> bool:
        return all(c.state != FAIL for c in self.checks.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "checked_at": self.checked_at,
            "checks": {name: c.as_dict() for name, c in self.checks.items()},
        }


def _failure(exc: BaseException) -> Check:
    if isinstance(exc, asyncio.TimeoutError):
        return Check(FAIL, {"problem": "unreachable", "reason": "no answer in time"})
    if isinstance(exc, AuthError):
        return Check(FAIL, {"problem": "credentials", "status": exc.status_code, "reason": exc.reason})
    if isinstance(exc, ApiError):
        return Check(FAIL, {"problem": "unreachable", "status": exc.status_code, "reason": str(exc)[:200]})
    return Check(FAIL, {"problem": "error", "reason": type(exc).__name__})


async def _guard(probe: Callable[[], Awaitable[Check]]) -> Check:
    try:
        return await asyncio.wait_for(probe(), CHECK_TIMEOUT_SECONDS)
    except (TimeoutError, ApiError, OSError) as exc:
        return _failure(exc)
    except Exception as exc:  # redis errors and the like: reported, never raised from health
        return _failure(exc)


async def check_redis(redis: Redis) -> Check:
    await ping(redis)
    return Check(OK)


async def check_espocrm(espo: EspoLister) -> Check:
    """Reachable and the API key accepted, plus the records a person must look at."""
    counts: dict[str, int] = {}
    for status in ("failed", "permanently_failed", "conflict"):
        total, _ = await espo.list(
            ENTITY,
            where=[{"type": "equals", "attribute": SYNC_STATUS, "value": status}],
            select="id",
            max_size=1,
        )
        counts[status] = int(total)
    _, oldest = await espo.list(
        ENTITY,
        where=[{"type": "in", "attribute": SYNC_STATUS, "value": ["pending_sync", "dirty", "failed"]}],
        select=f"id,{SYNC_STATUS},modifiedAt",
        order_by="modifiedAt",
        order="asc",
        max_size=1,
    )
    pending = (
        {
            "id": oldest[0].get("id"),
            SYNC_STATUS: oldest[0].get(SYNC_STATUS),
            "since": oldest[0].get("modifiedAt"),
        }
        if oldest
        else None
    )
    return Check(OK, {"records": counts, "oldest_pending": pending})


async def check_advoware(advo: AdvoProbe) -> Check:
    await advo.tokens.get()
    async for _row in advo.iter_beteiligte(take=1):
        break
    return Check(OK)


async def check_sweep(redis: Redis, overdue: timedelta, now: datetime) -> Check:
    last = await last_sweep(redis).get()
    if not last:
        return Check(WARN, {"problem": "no sweep completed yet"})
    at = datetime.fromisoformat(str(last["at"]))
    age = (now - at).total_seconds()
    detail = {"last_completed": last["at"], "age_seconds": round(age)}
    if age > overdue.total_seconds():
        return Check(
            FAIL, {**detail, "problem": f"no sweep completed for over {round(overdue.total_seconds())} s"}
        )
    return Check(OK, detail)


async def check_queue(redis: Redis) -> Check:
    waiting, dead, _ = await queue_depths(redis)
    detail = {"depth": waiting, "dead_letters": dead}
    return Check(WARN if dead else OK, detail)


async def check_notices(notifier: Notifier, redis: Redis) -> Check:
    from services.sync.notify import outbox_summary

    problems = await notifier.check_channel()
    outbox = await outbox_summary(redis)
    detail: dict[str, Any] = {"waiting": outbox["waiting"], "oldest_waiting": outbox["oldest"]}
    if problems:
        detail["problem"] = "; ".join(problems)
    elif outbox.get("last_error") and outbox["waiting"]:
        detail["last_error"] = outbox["last_error"]
    return Check(WARN if problems or outbox["waiting"] else OK, detail)


@dataclass
class HealthDeps:
    redis: Redis
    espo: EspoLister
    advo: AdvoProbe
    notifier: Notifier
    sweep_overdue: timedelta
    alerts_active: Callable[[], Awaitable[list[dict[str, Any]]]] | None = None
    # EspoCRM's set-up (services/ops/espocrm_check.py), checked when EspoCRM answers.
    espocrm_setup: Callable[[], Awaitable[Check]] | None = None
    # The circuit breakers' report (services/sync/breaker.py): a system whose breaker is open
    # is reported from it and not called (its probe, every minute, is all it is sent).
    breakers: Callable[[], Awaitable[dict[str, Any]]] | None = None
    # What the start-up check-advoware found (services/ops/preflight.py keeps it in Redis).
    advoware_contract: Callable[[], Awaitable[Check]] | None = None


async def run_checks(deps: HealthDeps, *, now: datetime | None = None) -> HealthReport:
    now = now or datetime.now(UTC)
    redis_check = await _guard(lambda: check_redis(deps.redis))
    breakers = await _breakers(deps) if redis_check.state == OK else {}
    espo_check, advo_check = await asyncio.gather(
        _system_check(breakers.get("espocrm"), lambda: check_espocrm(deps.espo)),
        _system_check(breakers.get("advoware"), lambda: check_advoware(deps.advo)),
    )
    checks: dict[str, Check] = {"redis": redis_check, "espocrm": espo_check, "advoware": advo_check}
    if deps.espocrm_setup is not None and espo_check.state != FAIL:
        checks["espocrm_setup"] = await _guard(deps.espocrm_setup)
    if redis_check.state == OK:
        checks["sweep"] = await _guard(lambda: check_sweep(deps.redis, deps.sweep_overdue, now))
        checks["queue"] = await _guard(lambda: check_queue(deps.redis))
        checks["notices"] = await _guard(lambda: check_notices(deps.notifier, deps.redis))
        if deps.advoware_contract is not None:
            checks["advoware_contract"] = await _guard(deps.advoware_contract)
    records = espo_check.detail.get("records") or {}
    if records.get("permanently_failed") or records.get("conflict"):
        espo_check.state = WARN
    if deps.alerts_active is not None and redis_check.state == OK:
        active = await deps.alerts_active()
        if active:
            checks["alerts"] = Check(WARN, {"active": [a["name"] for a in active]})
    return HealthReport(checked_at=now.isoformat(), checks=checks)


async def _breakers(deps: HealthDeps) -> dict[str, Any]:
    if deps.breakers is None:
        return {}
    try:
        return await asyncio.wait_for(deps.breakers(), CHECK_TIMEOUT_SECONDS)
    except Exception:  # reported by the redis check; the systems are then checked directly
        return {}


async def _system_check(breaker: dict[str, Any] | None, probe: Callable[[], Awaitable[Check]]) -> Check:
    """A system's check: from its open breaker (records waiting, since when) without a call,
    else the check itself, with the records still waiting for it."""
    waiting = {k: breaker[k] for k in ("waiting", "oldest_waiting_since") if breaker and breaker.get(k)}
    if breaker and breaker.get("open"):
        problem = "credentials" if breaker.get("kind") == "auth" else "unreachable"
        detail = {
            "problem": problem,
            "breaker_open_since": breaker.get("since"),
            "reason": breaker.get("reason"),
        }
        return Check(FAIL, {**detail, "records_waiting": breaker.get("waiting", 0), **waiting})
    check = await _guard(probe)
    check.detail.update({("records_waiting" if k == "waiting" else k): v for k, v in waiting.items()})
    return check


def conditions(report: HealthReport) -> dict[AlertCondition, str | None]:
    """The alert conditions this report shows (condition -> detail) or clears (-> None)."""
    out: dict[AlertCondition, str | None] = {}
    for system in ("espocrm", "advoware"):
        check = report.checks.get(system)
        if check is None:
            continue
        problem = check.detail.get("problem") if check.state == FAIL else None
        reason = str(check.detail.get("status") or check.detail.get("reason") or "")
        out[AlertCondition.system(system, credentials=False)] = (
            (reason or "keine Antwort") if problem in ("unreachable", "error") else None
        )
        out[AlertCondition.system(system, credentials=True)] = (
            (reason or "abgelehnt") if problem == "credentials" else None
        )
    sweep = report.checks.get("sweep")
    if sweep is not None:
        out[AlertCondition(ConditionKind.SWEEP_OVERDUE)] = (
            f"letzter Lauf {sweep.detail.get('last_completed')}" if sweep.state == FAIL else None
        )
    return out
