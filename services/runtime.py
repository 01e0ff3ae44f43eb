"""Wiring for one step execution: settings -> Redis -> clients -> engine.

Every Motia handler runs in a fresh process, so this is built per execution and closed
at its end (`async with open_runtime() as rt:`). Imports are local so that a step that
only needs Redis does not pay for httpx/pydantic imports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from services.settings import Settings, get_settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from services.advoware.client import AdvowareClient
    from services.espocrm.client import EspoCrmClient
    from services.sync.engine import SyncEngine


@dataclass
class Runtime:
    settings: Settings
    redis: Redis
    espo: EspoCrmClient
    advo: AdvowareClient
    engine: SyncEngine


@asynccontextmanager
async def open_redis(settings: Settings | None = None) -> AsyncIterator[Redis]:
    from services.redis_store import connect

    settings = settings or get_settings()
    redis = connect(settings.REDIS_URL)
    try:
        yield redis
    finally:
        await redis.aclose()


@asynccontextmanager
async def open_runtime(settings: Settings | None = None) -> AsyncIterator[Runtime]:
    from services.advoware.client import AdvowareClient
    from services.espocrm.client import EspoCrmClient
    from services.http.observe import set_observer
    from services.ops.alerts import Alerts
    from services.ops.metrics import Metrics
    from services.ops.monitor import history_for
    from services.ops.recorder import SyncRecorder
    from services.sync.breaker import CircuitBreakers
    from services.sync.deletions import CONDITION as DELETIONS_CONDITION
    from services.sync.deletions import DeletionGuard
    from services.sync.engine import SyncEngine
    from services.sync.notify import Notifier

    settings = settings or get_settings()
    async with open_redis(settings) as redis:
        espo = EspoCrmClient.from_settings(settings)
        advo = AdvowareClient.from_settings(settings, redis)
        metrics = Metrics(redis)
        set_observer(metrics)  # every API call of this process -> vmh_api_calls / latency histogram
        notifier = Notifier(
            espo,
            redis,
            settings.ESPOCRM_NOTIFY_USER_ID,
            settings.ESPOCRM_NOTIFY_USER_NAME,
            count=lambda result: metrics.inc("vmh_notices", result=result),
        )
        alerts = Alerts(redis, notifier, after=timedelta(seconds=settings.ALERT_AFTER_SECONDS))
        recorder = SyncRecorder(
            history=history_for(redis, settings), metrics=metrics, notifier=notifier, alerts=alerts
        )

        async def alert(condition: str, detail: str, active: bool) -> None:
            """Breakers' conditions go through the ops alerts: one notice each, shared with the
            health watch's (same names); held deletions are alerted at once."""
            if not active:
                await alerts.clear_condition(condition)
                return
            urgent = condition == DELETIONS_CONDITION
            await alerts.raise_condition(condition, detail, after=timedelta(0) if urgent else None)

        breakers = CircuitBreakers(
            redis,
            threshold=settings.SYNC_BREAKER_THRESHOLD,
            window=timedelta(seconds=settings.SYNC_BREAKER_WINDOW_SECONDS),
            alert=alert,
        )
        deletions = DeletionGuard(
            redis,
            share=settings.SYNC_DELETION_BREAKER_SHARE,
            minimum=settings.SYNC_DELETION_BREAKER_MIN,
            alert=alert,
        )
        try:
            engine = SyncEngine(
                espo=espo,
                advo=advo,
                redis=redis,
                tz=settings.timezone,
                notify_user_id=settings.ESPOCRM_NOTIFY_USER_ID,
                notify_user_name=settings.ESPOCRM_NOTIFY_USER_NAME,
                max_attempts=settings.SYNC_MAX_ATTEMPTS,
                lock_ttl_seconds=settings.SYNC_LOCK_TTL_SECONDS,
                breakers=breakers,
                deletions=deletions,
                retry_base=timedelta(seconds=settings.SYNC_RETRY_BASE_SECONDS),
                notifier=notifier,
                recorder=recorder,
                directions=settings.field_directions,
                advoware_reread_after_seconds=settings.SYNC_ADVOWARE_REREAD_SECONDS,
            )
            yield Runtime(settings=settings, redis=redis, espo=espo, advo=advo, engine=engine)
        finally:
            set_observer(None)
            await espo.aclose()
            await advo.aclose()
            await metrics.flush()
