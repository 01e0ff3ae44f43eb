"""The one counters path: every count the service keeps goes through a `Metrics`, by a name
defined here and nowhere else.

Two Redis hashes hold them, for two readers:

- `vmh:stats` (`Stat`): the plain counters `status` shows (and the chaos harness reads);
  `Metrics.count` adds to it at once, since a handler that dies later must not lose them.
- `vmh:metrics` (`Family`): the Prometheus families served at /vmh/metrics
  (services/ops/metrics.py `render`). Every Motia handler is a fresh process, so nothing is kept
  in memory between events: `inc`/`record` collect one execution's observations and `flush()`
  adds them to the hash in a single pipeline (the composition root flushes when a runtime
  closes).

The recent-events lists `status` shows (services/sync/stores.py `RecentEvents`) are named by
`EventKind`.

| family                                   | type      | labels                  |
|------------------------------------------|-----------|-------------------------|
| `vmh_syncs_total`                        | counter   | trigger, result         |
| `vmh_conflicts_total`                    | counter   |                         |
| `vmh_notices_total`                      | counter   | result (sent/failed)    |
| `vmh_api_calls_total`                    | counter   | system, status_class    |
| `vmh_api_call_duration_seconds`          | histogram | system, status_class    |
| `vmh_retries_total`                      | counter   | system                  |
| `vmh_sweep_duration_seconds`             | histogram |                         |
| `vmh_queue_depth`, `vmh_dead_letters`    | gauge     | (read at scrape time)   |
| `vmh_watermark_lag_seconds`              | gauge     | poll                    |
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from services.store import keys

if TYPE_CHECKING:
    from redis.asyncio import Redis


class Stat(StrEnum):
    """The counters of `vmh:stats` (`status`'s "counters")."""

    CREATES = "creates"
    LINKS = "links"
    UPDATES = "updates"
    UNCHANGED = "unchanged"
    REPLANS = "replans"
    ESPO_WRITES = "espo_writes"
    WAITING = "waiting"
    HELD = "held"
    FAILURES = "failures"
    PERMANENT_FAILURES = "permanent_failures"
    DELETED_IN_ADVOWARE = "deleted_in_advoware"
    UNAPPLIED_WRITES = "unapplied_writes"
    LEASE_LOST = "lease_lost"
    CONFLICTS = "conflicts"
    NOTIFICATIONS = "notifications"
    NOTIFICATIONS_FAILED = "notifications_failed"


class EventKind(StrEnum):
    """The recent-events lists (`vmh:recent:<kind>`) `status` and the console show."""

    FAILURE = "failure"
    CONFLICT = "conflict"
    HELD = "held"
    LINKED = "linked"
    UNLINKED = "unlinked"
    UNAPPLIED = "unapplied"
    DELETED_IN_ADVOWARE = "deleted_in_advoware"
    DUPLICATE_LINK = "duplicate_link"
    BREAKER_OPEN = "breaker_open"
    BREAKER_CLOSED = "breaker_closed"


class MetricName(StrEnum):
    """The Prometheus families (counters without their `_total` suffix)."""

    SYNCS = "vmh_syncs"
    CONFLICTS = "vmh_conflicts"
    NOTICES = "vmh_notices"
    API_CALLS = "vmh_api_calls"
    API_CALL_DURATION = "vmh_api_call_duration_seconds"
    RETRIES = "vmh_retries"
    SWEEP_DURATION = "vmh_sweep_duration_seconds"


API_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SWEEP_BUCKETS: tuple[float, ...] = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


@dataclass(frozen=True)
class Family:
    name: MetricName
    kind: str  # counter | histogram
    doc: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(MetricName.SYNCS, "counter", "Record syncs by trigger and result", ("trigger", "result")),
        Family(MetricName.CONFLICTS, "counter", "Fields both sides changed (EspoCRM won, a person was told)"),
        Family(MetricName.NOTICES, "counter", "Notices to the notify user by result", ("result",)),
        Family(
            MetricName.API_CALLS,
            "counter",
            "Calls to EspoCRM and Advoware by status class",
            ("system", "status_class"),
        ),
        Family(
            MetricName.API_CALL_DURATION,
            "histogram",
            "Latency of calls to EspoCRM and Advoware",
            ("system", "status_class"),
            API_BUCKETS,
        ),
        Family(MetricName.RETRIES, "counter", "HTTP retries after a transient failure", ("system",)),
        Family(MetricName.SWEEP_DURATION, "histogram", "Duration of completed sweeps", (), SWEEP_BUCKETS),
    )
}


def field(name: str, labels: Mapping[str, str], part: str = "") -> str:
    """A series' field in `vmh:metrics`: family, labels sorted by name, part of a histogram."""
    return json.dumps([str(name), sorted(labels.items()), part], separators=(",", ":"))


class Metrics:
    """The one way to count: `count` (vmh:stats, at once), `inc`/`record` (vmh:metrics, this
    execution's observations until `flush()`)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._pending: dict[str, float] = defaultdict(float)

    async def count(self, stat: Stat, amount: int = 1) -> None:
        await self._redis.hincrby(keys.STATS, stat, amount)

    async def stats(self) -> dict[str, int]:
        return {k: int(v) for k, v in (await self._redis.hgetall(keys.STATS)).items()}

    def inc(self, name: MetricName, amount: float = 1.0, **labels: str) -> None:
        family = FAMILIES[name]
        _check_labels(family, labels)
        self._pending[field(name, labels)] += amount

    def record(self, name: MetricName, seconds: float, **labels: str) -> None:
        family = FAMILIES[name]
        _check_labels(family, labels)
        bucket = next((str(b) for b in family.buckets if seconds <= b), "+Inf")
        self._pending[field(name, labels, "bucket:" + bucket)] += 1
        self._pending[field(name, labels, "sum")] += seconds
        self._pending[field(name, labels, "count")] += 1

    def observe(self, system: str, method: str, status_class: str, seconds: float) -> None:
        """The per-request hook of the HTTP client base (services/http/observe.py `Observer`)."""
        self.inc(MetricName.API_CALLS, system=system, status_class=status_class)
        self.record(MetricName.API_CALL_DURATION, seconds, system=system, status_class=status_class)

    def retry(self, system: str) -> None:
        """The HTTP retry policy's hook (services/http/observe.py `report_retry`)."""
        self.inc(MetricName.RETRIES, system=system)

    def notice(self, result: str) -> None:
        """A notice to the notify user was `sent` or `failed` (services/sync/notify.py)."""
        self.inc(MetricName.NOTICES, result=result)

    async def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, defaultdict(float)
        pipe = self._redis.pipeline(transaction=False)
        for name, amount in pending.items():
            pipe.hincrbyfloat(keys.METRICS, name, amount)
        await pipe.execute()


def _check_labels(family: Family, labels: Mapping[str, str]) -> None:
    if set(labels) != set(family.labels):
        raise ValueError(f"{family.name} takes labels {family.labels}, got {sorted(labels)}")


async def stored(redis: Redis) -> dict[str, float]:
    raw = await redis.hgetall(keys.METRICS)
    return {k: float(v) for k, v in raw.items()}


async def counter_value(redis: Redis, name: MetricName, **labels: str) -> float:
    raw = await redis.hget(keys.METRICS, field(name, labels))
    return float(raw) if raw is not None else 0.0
