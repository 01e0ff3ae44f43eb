"""The composition root: `Settings` -> Redis -> clients -> notifier, breakers, engine, and on
request the sweeper, the Advoware change poll and the backfill.

`Settings` (services/settings.py) is the only place a default is written; every constructor
below is given its values explicitly from it. Every Motia handler runs in a fresh process,
so a `Runtime` is built per execution and closed at its end (`async with open_runtime() as
rt:`). `build_runtime` wires given clients and Redis (tests and benchmarks pass fakes);
`open_runtime` opens the real ones. Imports are local so that a step that only needs Redis
does not pay for httpx/pydantic imports.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from services.settings import Settings, get_settings
from services.store.timestamps import utc_now

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from services.backfill.plan import ProgressFactory
    from services.backfill.runner import Backfill, BackfillOptions
    from services.conditions import Alert, AlertCondition
    from services.ops.recorder import SyncRecorder
    from services.store.counters import Metrics
    from services.sync.advoware_watch import AdvowareWatch
    from services.sync.breaker import CircuitBreakers, Probe
    from services.sync.deletions import DeletionGuard
    from services.sync.deps import Stores, Systems
    from services.sync.engine import SyncEngine
    from services.sync.notify import Notifier
    from services.sync.ports import Advoware, EspoCrm
    from services.sync.sweep import Sweeper

Clock = Callable[[], datetime]


@dataclass
class Runtime:
    """Everything one execution needs, wired once. `espo`/`advo` are the real clients in the
    service (services/espocrm/client.py, services/advoware/client.py) or fakes in tests."""

    settings: Settings
    redis: Redis
    # The two clients: each user names the part it needs as a Protocol (services/sync/ports.py);
    # here they are carried as the two combined ones, which the clients (and test fakes) satisfy.
    espo: EspoCrm
    advo: Advoware
    clock: Clock
    notifier: Notifier
    breakers: CircuitBreakers
    deletions: DeletionGuard
    engine: SyncEngine
    # Every Redis store (services/sync/deps.py): steps, ops and the CLI take theirs from here.
    stores: Stores
    # This execution's observations (services/ops/metrics.py), flushed to Redis when it closes.
    metrics: Metrics | None = None

    @property
    def systems(self) -> Systems:
        """The clients, Redis, the time zone and the clock, as the engine was built with them:
        the sweeper, the Advoware poll and the backfill are given the same."""
        return self.engine.systems

    def sweeper(self) -> Sweeper:
        from services.sync.sweep import Sweeper

        s = self.settings
        return Sweeper(
            systems=self.systems,
            stores=self.stores,
            watch=self.watch(),
            stale_syncing_age=timedelta(seconds=s.SYNC_STALE_SYNCING_SECONDS),
            retry_base=timedelta(seconds=s.SYNC_RETRY_BASE_SECONDS),
            breakers=self.breakers,
            deletions=self.deletions,
            deletion_scan_interval=timedelta(seconds=s.SYNC_DELETION_SCAN_SECONDS),
        )

    def watch(self) -> AdvowareWatch:
        from services.sync.advoware_watch import AdvowareWatch

        return AdvowareWatch(systems=self.systems, stores=self.stores)

    def backfill(self, options: BackfillOptions, progress: ProgressFactory) -> Backfill:
        from services.backfill.runner import Backfill

        return Backfill(
            systems=self.systems, engine=self.engine, watch=self.watch(), options=options, progress=progress
        )


def build_runtime(
    settings: Settings,
    *,
    espo: EspoCrm,
    advo: Advoware,
    redis: Redis,
    clock: Clock = utc_now,
    metrics: Metrics | None = None,
) -> Runtime:
    """Wire the service's parts from `settings` around the given clients and Redis. With
    `metrics` (the service always; unit tests of the sync without), every sync is recorded
    (history, metrics, waiting notices: services/ops/recorder.py) and the breakers' conditions
    go through the ops alerts."""
    from services.store.counters import Metrics
    from services.sync.deps import Systems
    from services.sync.engine import SyncEngine
    from services.sync.model import SyncConfig
    from services.sync.notify import Notifier

    s = settings
    # Without the service's metrics (unit tests of the sync) the counts still reach vmh:stats;
    # the Prometheus observations of this instance are then never flushed.
    counting = metrics if metrics is not None else Metrics(redis)
    notifier = Notifier(espo, redis, s.ESPOCRM_NOTIFY_USER_ID, s.ESPOCRM_NOTIFY_USER_NAME, metrics=counting)
    recorder, alert = _monitoring(s, redis, notifier, metrics) if metrics is not None else (None, None)
    breakers, deletions = _breakers(s, redis, clock, alert, probes=_probes(espo, advo))
    stores = build_stores(redis, lock_ttl_seconds=s.SYNC_LOCK_TTL_SECONDS)
    config = SyncConfig(
        max_attempts=s.SYNC_MAX_ATTEMPTS,
        retry_base=timedelta(seconds=s.SYNC_RETRY_BASE_SECONDS),
        advoware_reread_after=timedelta(seconds=s.SYNC_ADVOWARE_REREAD_SECONDS),
    )
    engine = SyncEngine(
        systems=Systems(espo=espo, advo=advo, redis=redis, tz=s.timezone, clock=clock),
        stores=stores,
        config=config,
        notifier=notifier,
        breakers=breakers,
        deletions=deletions,
        recorder=recorder,
        directions=s.field_directions,
        metrics=counting,
    )
    return Runtime(
        settings=s,
        redis=redis,
        espo=espo,
        advo=advo,
        clock=clock,
        notifier=notifier,
        breakers=breakers,
        deletions=deletions,
        engine=engine,
        stores=stores,
        metrics=metrics,
    )


def build_stores(redis: Redis, *, lock_ttl_seconds: float) -> Stores:
    """Every Redis store, once per execution: the only place they are built."""
    from services.store.service_records import CronTicks
    from services.store.watermark import Watermark
    from services.sync.backoff import OwnWrites
    from services.sync.breaker import BreakerStates
    from services.sync.claims import Claims
    from services.sync.deps import Stores
    from services.sync.identity_index import IdentityIndex
    from services.sync.intents import IntentStore
    from services.sync.lock import RecordLocks
    from services.sync.snapshot import SnapshotStore
    from services.sync.stores import PendingAdvoware, PendingConflicts, RecentEvents

    return Stores(
        locks=RecordLocks(redis, lock_ttl_seconds),
        snapshots=SnapshotStore(redis),
        intents=IntentStore(redis),
        conflicts=PendingConflicts(redis),
        pending_advoware=PendingAdvoware(redis),
        recent=RecentEvents(redis),
        own_writes=OwnWrites(redis),
        index=IdentityIndex(redis),
        claims=Claims(redis, lock_ttl_seconds),
        breakers=BreakerStates(redis),
        ticks=CronTicks(redis),
        espo_watermark=Watermark.espocrm(redis),
        advo_watermark=Watermark.advoware(redis),
    )


def _monitoring(
    settings: Settings, redis: Redis, notifier: Notifier, metrics: Metrics
) -> tuple[SyncRecorder, Alert]:
    from services.ops.alerts import Alerts
    from services.ops.history import history_for
    from services.ops.recorder import SyncRecorder
    from services.sync.deletions import CONDITION as DELETIONS_CONDITION

    alerts = Alerts(redis, notifier, after=timedelta(seconds=settings.ALERT_AFTER_SECONDS))
    recorder = SyncRecorder(
        history=history_for(redis, settings), metrics=metrics, notifier=notifier, alerts=alerts
    )

    async def alert(condition: AlertCondition, detail: str, active: bool) -> None:
        """Breakers' conditions go through the ops alerts: one notice each, shared with the
        health watch's (same names); held deletions are alerted at once."""
        if not active:
            await alerts.clear_condition(condition)
            return
        urgent = condition == DELETIONS_CONDITION
        await alerts.raise_condition(condition, detail, after=timedelta(0) if urgent else None)

    return recorder, alert


def _probes(espo: EspoCrm, advo: Advoware) -> dict[str, Probe]:
    from services.sync.breaker import system_probes
    from services.sync.model import ENTITY

    return system_probes(espo, advo, ENTITY)


def _breakers(
    settings: Settings, redis: Redis, clock: Clock, alert: Alert | None, *, probes: dict[str, Probe]
) -> tuple[CircuitBreakers, DeletionGuard]:
    from services.sync.breaker import CircuitBreakers
    from services.sync.deletions import DeletionGuard

    s = settings
    breakers = CircuitBreakers(redis, probes=probes, alert=alert, clock=clock)
    deletions = DeletionGuard(
        redis,
        share=s.SYNC_DELETION_BREAKER_SHARE,
        minimum=s.SYNC_DELETION_BREAKER_MIN,
        alert=alert,
        clock=clock,
    )
    return breakers, deletions


@asynccontextmanager
async def open_redis(settings: Settings | None = None) -> AsyncIterator[Redis]:
    from services.store.connection import connect

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
    from services.http.retry import set_system_down
    from services.store.counters import Metrics
    from services.sync.breaker import BreakerStates

    settings = settings or get_settings()
    async with open_redis(settings) as redis:
        espo = EspoCrmClient(settings)
        advo = AdvowareClient(settings, redis)
        metrics = Metrics(redis)
        set_observer(metrics)  # every API call of this process -> vmh_api_calls / latency histogram

        async def breaker_open(system: str) -> bool:
            return await BreakerStates(redis).is_open(system)

        set_system_down(breaker_open)  # no repeat to a system whose breaker opened meanwhile
        try:
            yield build_runtime(settings, espo=espo, advo=advo, redis=redis, metrics=metrics)
        finally:
            set_system_down(None)
            set_observer(None)
            await espo.aclose()
            await advo.aclose()
            await metrics.flush()


# What the ops CLI is given: opens a Runtime (the real one by default; tests pass their own).
RuntimeFactory = Callable[[], AbstractAsyncContextManager[Runtime]]
