"""The composition root (services/runtime.py) around the in-memory fakes: tests get the same
wiring the service uses, with `Settings`' own defaults (the one source) plus overrides, and the
unit tests' typed world (`World`, the `world` fixture of tests/unit/conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.runtime import Runtime, build_runtime
from services.settings import Settings
from services.store.counters import Metrics
from tests.support.fakes import Clock, FakeAdvo, FakeEspo, fake_redis

if TYPE_CHECKING:
    from services.ops.history import HistoryStore
    from services.sync.deps import Stores
    from services.sync.engine import SyncEngine


def settings_with(**overrides: Any) -> Settings:
    """`Settings` with its declared defaults and `overrides`; reads no environment, validates
    nothing (the required connection settings stay unset: the fakes need none; no webhook
    secrets, which the EspoCRM set-up check of the health report reads)."""
    return Settings.model_construct(**{"ESPOCRM_WEBHOOK_SECRETS": {}, **overrides})


def fake_runtime(
    espo: Any, advo: Any, redis: Any, clock: Clock, *, recorded: bool = True, **overrides: Any
) -> Runtime:
    """A Runtime whose clients are fakes and whose time is `clock`, wired as the service runs:
    with its `Metrics`, so every sync is recorded (history, metrics, waiting notices, alerts).
    `recorded=False`: without them (the counts still reach vmh:stats)."""
    return build_runtime(
        settings_with(**overrides),
        espo=espo,
        advo=advo,
        redis=redis,
        clock=lambda: clock.now,
        metrics=Metrics(redis) if recorded else None,
    )


@dataclass
class World:
    """The unit tests' world: one clock, an in-memory Redis, fake EspoCRM and Advoware on that
    clock, and the service's wiring over them (Berlin time, the clock's now)."""

    clock: Clock
    redis: Any  # an in-memory fakeredis (decodes to str, as the service's connection does)
    espo: FakeEspo
    advo: FakeAdvo
    rt: Runtime

    @property
    def engine(self) -> SyncEngine:
        return self.rt.engine

    @property
    def stores(self) -> Stores:
        return self.rt.stores

    @property
    def history(self) -> HistoryStore:
        """The per-record history the recorder writes (a world built `recorded=False` has none)."""
        recorder = self.rt.engine.recorder
        assert recorder is not None, "built with recorded=False: nothing is recorded"
        return recorder.history

    @property
    def metrics(self) -> Metrics:
        """The counters every part counts through (the runtime's)."""
        return self.rt.engine.metrics


def fake_world(*, recorded: bool = True, **settings: Any) -> World:
    """A fresh `World` with `settings` overriding the Settings defaults, e.g. SYNC_MAX_ATTEMPTS=3."""
    clock = Clock()
    redis = fake_redis()
    espo, advo = FakeEspo(clock), FakeAdvo(clock)
    return World(
        clock, redis, espo, advo, fake_runtime(espo, advo, redis, clock, recorded=recorded, **settings)
    )
