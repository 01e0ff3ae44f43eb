"""The operations endpoints' and commands' one entry: health (with alerts), metrics, history.

Steps and the CLI call these with an open `Runtime`; nothing here imports Motia.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.errors import OperationError
from services.store import keys
from services.store.service_records import CronTicks, JsonRecord, advoware_check

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from services.ops.alerts import Alerts
    from services.ops.health import Check as HealthCheck
    from services.ops.health import HealthReport
    from services.runtime import Runtime
    from services.sync.notify import Notifier

# An unauthenticated probe (a load balancer every few seconds) reuses a report this young,
# so nobody without the token can make the service call EspoCRM and Advoware at will.
HEALTH_CACHE_SECONDS = 15


def health_cache(redis: Redis) -> JsonRecord:
    """The last health report, kept `HEALTH_CACHE_SECONDS` for unauthenticated probes."""
    return JsonRecord(redis, keys.HEALTH_LAST, HEALTH_CACHE_SECONDS)


def notifier_for(rt: Runtime) -> Notifier:
    """The runtime's notifier (the one the engine uses), or one built from the settings."""
    existing = getattr(rt, "notifier", None)
    if existing is not None:
        return existing
    from services.sync.notify import Notifier

    s = rt.settings
    return Notifier(rt.espo, rt.redis, s.ESPOCRM_NOTIFY_USER_ID, s.ESPOCRM_NOTIFY_USER_NAME)


def alerts_for(rt: Runtime, notifier: Notifier | None = None) -> Alerts:
    from services.ops.alerts import Alerts

    return Alerts(
        rt.redis, notifier or notifier_for(rt), after=timedelta(seconds=rt.settings.ALERT_AFTER_SECONDS)
    )


async def check(rt: Runtime) -> HealthReport:
    """Run every health check now, raise/clear the alert conditions it shows, and post the
    notices waiting in the outbox (the per-minute watch and an authenticated health request)."""
    from services.conditions import AlertCondition, ConditionKind
    from services.ops import alerts as alerting
    from services.ops.health import HealthDeps, conditions, run_checks

    notifier = notifier_for(rt)
    alerts = alerts_for(rt, notifier)
    report = await run_checks(
        HealthDeps(
            redis=rt.redis,
            espo=rt.espo,
            advo=rt.advo,
            notifier=notifier,
            sweep_overdue=timedelta(seconds=rt.settings.ALERT_SWEEP_OVERDUE_SECONDS),
            alerts_active=alerts.active,
            espocrm_setup=lambda: espocrm_setup_check(rt),
            breakers=rt.stores.breakers.report,
            advoware_contract=lambda: advoware_contract_check(rt.redis),
        )
    )
    if report.checks["redis"].state != "fail":
        await alerting.apply(
            alerts, conditions(report), {AlertCondition(ConditionKind.SWEEP_OVERDUE): timedelta(0)}
        )
        if report.checks.get("espocrm") and report.checks["espocrm"].state != "fail":
            await notifier.retry_pending()
        await health_cache(rt.redis).put(report.as_dict())
    return report


async def espocrm_setup_check(rt: Runtime) -> HealthCheck:
    """The start-up check of EspoCRM as a health check: its problem lines, fail/warn/ok."""
    from services.ops.espocrm_check import FAIL, check_for
    from services.ops.health import Check

    problems = await check_for(rt.espo, rt.settings)
    if not problems:
        return Check("ok")
    state = "fail" if any(p.level == FAIL for p in problems) else "warn"
    return Check(state, {"problems": [p.line() for p in problems]})


async def advoware_contract_check(redis: Redis) -> HealthCheck:
    """What `make serve`'s start-up check-advoware found (kept in Redis): warn while it found
    something, never fail (whether Advoware answers now is the `advoware` check's)."""
    from services.ops.health import Check

    record = await advoware_check(redis).get()
    if not record:
        return Check("ok", {"note": "not checked yet: make serve checks at start, or run check-advoware"})
    lines = [
        f"{f['severity']} {f['topic']}: {f['text']}" + (f" - fix: {f['fix']}" if f.get("fix") else "")
        for f in record.get("findings") or []
        if f.get("severity") != "info"
    ]
    detail: dict[str, Any] = {"checked_at": record.get("at")}
    if lines:
        detail["findings"] = lines
    return Check("warn" if lines else "ok", detail)


async def claim_watch_tick(redis: Redis, now: datetime | None = None) -> bool:
    """One watch per cron tick across instances (and tests hold the ticks, like the sweep's)."""
    tick = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M")
    return await CronTicks(redis).claim_watch(tick)


async def cached_health(redis: Redis) -> bool | None:
    """The last report's verdict if it is young enough, else None."""
    report = await health_cache(redis).get()
    if not report:
        return None
    return bool(report.get("healthy"))


async def metrics_text(rt: Runtime) -> str:
    """The Prometheus exposition: stored counters plus gauges read now."""
    from services.ops.metrics import render
    from services.store.counters import stored
    from services.store.service_records import queue_depths
    from services.sync.notify import outbox_waiting

    waiting, dead, _ = await queue_depths(rt.redis)
    now = datetime.now(UTC)
    lag: dict[tuple[str, ...], float] = {}
    for poll, mark in (("advoware", rt.stores.advo_watermark), ("espocrm", rt.stores.espo_watermark)):
        value = await mark.stored()
        if value is not None:
            lag[(poll,)] = max(0.0, (now - value).total_seconds())
    outbox = await outbox_waiting(rt.redis)
    gauges: dict[str, Any] = {
        "vmh_queue_depth": ("Events waiting in the Motia queues", {(): waiting}, ()),
        "vmh_dead_letters": ("Events in the Motia dead-letter queues", {(): dead}, ()),
        "vmh_notices_waiting": ("Notices kept in the outbox for another attempt", {(): outbox}, ()),
        "vmh_watermark_lag_seconds": ("Age of each change poll's watermark", lag, ("poll",)),
    }
    return render(await stored(rt.redis), gauges).decode()


async def record_history(rt: Runtime, record_id: str | None, betnr: int | None) -> tuple[str, list[Any]]:
    """(EspoCRM id, entries newest first) for an id or a betnr; an unknown betnr raises
    OperationError with status 404, an ambiguous one 409 (services/ops/actions.py
    `resolve_record`, as for every operator's tool)."""
    from services.ops.actions import resolve_record
    from services.ops.history import history_for

    record_id = await resolve_record(rt.espo, record_id, betnr)
    return record_id, await history_for(rt.redis, rt.settings).entries(record_id)


def _first_value(value: Any) -> Any:
    """A query parameter given twice arrives as a list: the first one counts."""
    return value[0] if isinstance(value, list) else value


async def history_request(rt: Runtime, query: Mapping[str, Any]) -> dict[str, Any]:
    """`GET /vmh/beteiligte/sync/history?id=…` (or `?betnr=N`): 400 unless exactly one of
    them is given, 404 for an unknown record."""

    record_id, betnr = _first_value(query.get("id")), _first_value(query.get("betnr"))
    if bool(record_id) == bool(betnr) or (betnr and not str(betnr).isdigit()):
        raise OperationError("give exactly one of ?id=<EspoCRM id> and ?betnr=<number>")
    rid, entries = await record_history(rt, record_id or None, int(betnr) if betnr else None)
    return {"id": rid, "entries": entries}
