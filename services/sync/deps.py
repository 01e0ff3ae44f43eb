"""What the parts of a sync are given: `Systems` (the two systems, Redis, time zone, clock),
`Stores` (every Redis store, built once by the composition root, services/runtime.py) and one
narrow view per part, naming exactly the collaborators that part touches, so its constructor
tells a reader what it reads and writes. `SyncEngine` builds the views (services/sync/engine.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from redis.asyncio import Redis

    from services.beteiligte.fieldmap import Direction
    from services.ops.recorder import SyncRecorder
    from services.store.counters import Metrics
    from services.store.service_records import CronTicks
    from services.store.watermark import Watermark
    from services.sync.backoff import OwnWrites
    from services.sync.breaker import BreakerStates, CircuitBreakers
    from services.sync.claims import Claims
    from services.sync.deletions import DeletionGuard
    from services.sync.identity_index import IdentityIndex
    from services.sync.intents import IntentStore
    from services.sync.linking import Linker
    from services.sync.lock import RecordLocks
    from services.sync.notify import Notifier
    from services.sync.ports import AdvowareApi, EspoListingApi
    from services.sync.snapshot import SnapshotStore
    from services.sync.stores import PendingAdvoware, PendingConflicts, RecentEvents


@dataclass(frozen=True)
class Systems:
    """The two systems, Redis, the firm's time zone and the clock: what the engine, the sweep,
    the Advoware change poll and the backfill all work with. Built once per execution by the
    composition root (services/runtime.py `Runtime.systems`)."""

    espo: EspoListingApi
    advo: AdvowareApi
    redis: Redis
    tz: ZoneInfo
    clock: Callable[[], datetime]


@dataclass(frozen=True)
class Stores:
    """Every Redis store of the sync, each the one owner of its keys (services/store/keys.py).
    Built by `services/runtime.py` (`build_stores`); parts, steps and the CLI take them from
    the runtime (`rt.stores`) instead of building their own."""

    locks: RecordLocks
    snapshots: SnapshotStore
    intents: IntentStore
    conflicts: PendingConflicts
    pending_advoware: PendingAdvoware
    recent: RecentEvents
    own_writes: OwnWrites
    index: IdentityIndex
    claims: Claims
    breakers: BreakerStates
    ticks: CronTicks
    espo_watermark: Watermark
    advo_watermark: Watermark


@dataclass(frozen=True)
class PlanningDeps:
    """services/sync/planning.py: reads both systems, the snapshot, an earlier create's intent
    and the identity index; writes nothing."""

    systems: Systems
    snapshots: SnapshotStore
    intents: IntentStore
    index: IdentityIndex
    # Per-field direction (field map + SYNC_FIELD_DIRECTIONS); None: every field two-way.
    directions: Mapping[str, Direction] | None

    @classmethod
    def of(cls, systems: Systems, stores: Stores, directions: Mapping[str, Direction] | None) -> PlanningDeps:
        return cls(systems, stores.snapshots, stores.intents, stores.index, directions)


@dataclass(frozen=True)
class OutcomeDeps:
    """services/sync/outcomes.py: every status write of a sync and its bookkeeping."""

    systems: Systems
    snapshots: SnapshotStore
    intents: IntentStore
    pending_advoware: PendingAdvoware
    own_writes: OwnWrites
    metrics: Metrics
    recent: RecentEvents
    notifier: Notifier
    breakers: CircuitBreakers
    # History, metrics, waiting notices and alerts after each sync (services/ops/recorder.py).
    recorder: SyncRecorder | None

    @classmethod
    def of(
        cls,
        systems: Systems,
        s: Stores,
        metrics: Metrics,
        notifier: Notifier,
        breakers: CircuitBreakers,
        recorder: SyncRecorder | None,
    ) -> OutcomeDeps:
        # Positional, in field order: every field has a type of its own, so mypy checks the order.
        return cls(
            systems, s.snapshots, s.intents, s.pending_advoware, s.own_writes, metrics, s.recent,
            notifier, breakers, recorder,
        )  # fmt: skip


@dataclass(frozen=True)
class UpdateDeps:
    """services/sync/update.py: a linked pair's read, writes and conflict reports."""

    systems: Systems
    linker: Linker
    deletions: DeletionGuard
    conflicts: PendingConflicts
    notifier: Notifier
    metrics: Metrics
    recent: RecentEvents

    @classmethod
    def of(
        cls,
        systems: Systems,
        stores: Stores,
        metrics: Metrics,
        linker: Linker,
        deletions: DeletionGuard,
        notifier: Notifier,
    ) -> UpdateDeps:
        return cls(systems, linker, deletions, stores.conflicts, notifier, metrics, stores.recent)


@dataclass(frozen=True)
class CreateDeps:
    """services/sync/create.py: a record without betnr, under its identity's claims."""

    systems: Systems
    locks: RecordLocks
    intents: IntentStore
    linker: Linker
    metrics: Metrics
    recent: RecentEvents

    @classmethod
    def of(cls, systems: Systems, stores: Stores, metrics: Metrics, linker: Linker) -> CreateDeps:
        return cls(systems, stores.locks, stores.intents, linker, metrics, stores.recent)
