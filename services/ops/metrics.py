"""Counters and latency histograms in Redis, exposed in Prometheus' text format.

Every Motia handler is a fresh process, so nothing is kept in memory between events: a
`Metrics` buffer collects one execution's observations and `flush()` adds them to the one
Redis hash `vmh:metrics` in a single pipeline (the composition root flushes when a runtime
closes). `render()` reads that hash and produces the exposition with `prometheus_client`
(its own registry and collector: no process-global state, nothing of this process's own).

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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.store import keys

if TYPE_CHECKING:
    from redis.asyncio import Redis

METRICS_KEY = keys.METRICS

API_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SWEEP_BUCKETS: tuple[float, ...] = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


@dataclass(frozen=True)
class Family:
    name: str  # without the _total suffix for counters
    kind: str  # counter | histogram
    doc: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("vmh_syncs", "counter", "Record syncs by trigger and result", ("trigger", "result")),
        Family("vmh_conflicts", "counter", "Fields both sides changed (EspoCRM won, a person was told)"),
        Family("vmh_notices", "counter", "Notices to the notify user by result", ("result",)),
        Family(
            "vmh_api_calls",
            "counter",
            "Calls to EspoCRM and Advoware by status class",
            ("system", "status_class"),
        ),
        Family(
            "vmh_api_call_duration_seconds",
            "histogram",
            "Latency of calls to EspoCRM and Advoware",
            ("system", "status_class"),
            API_BUCKETS,
        ),
        Family("vmh_retries", "counter", "HTTP retries after a transient failure", ("system",)),
        Family("vmh_sweep_duration_seconds", "histogram", "Duration of completed sweeps", (), SWEEP_BUCKETS),
    )
}


def _field(name: str, labels: Mapping[str, str], part: str = "") -> str:
    return json.dumps([name, sorted(labels.items()), part], separators=(",", ":"))


class Metrics:
    """One execution's observations; `flush()` adds them to Redis."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._pending: dict[str, float] = defaultdict(float)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        family = FAMILIES[name]
        _check_labels(family, labels)
        self._pending[_field(name, labels)] += amount

    def record(self, name: str, seconds: float, **labels: str) -> None:
        family = FAMILIES[name]
        _check_labels(family, labels)
        bucket = next((str(b) for b in family.buckets if seconds <= b), "+Inf")
        self._pending[_field(name, labels, "bucket:" + bucket)] += 1
        self._pending[_field(name, labels, "sum")] += seconds
        self._pending[_field(name, labels, "count")] += 1

    def observe(self, system: str, method: str, status_class: str, seconds: float) -> None:
        """The per-request hook of the HTTP client base (services/http/observe.py `Observer`)."""
        self.inc("vmh_api_calls", system=system, status_class=status_class)
        self.record("vmh_api_call_duration_seconds", seconds, system=system, status_class=status_class)

    def retry(self, system: str) -> None:
        """The HTTP retry policy's hook (services/http/observe.py `report_retry`)."""
        self.inc("vmh_retries", system=system)

    async def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, defaultdict(float)
        pipe = self._redis.pipeline(transaction=False)
        for name, amount in pending.items():
            pipe.hincrbyfloat(METRICS_KEY, name, amount)
        await pipe.execute()


def _check_labels(family: Family, labels: Mapping[str, str]) -> None:
    if set(labels) != set(family.labels):
        raise ValueError(f"{family.name} takes labels {family.labels}, got {sorted(labels)}")


async def stored(redis: Redis) -> dict[str, float]:
    raw = await redis.hgetall(METRICS_KEY)
    return {k: float(v) for k, v in raw.items()}


async def counter_value(redis: Redis, name: str, **labels: str) -> float:
    raw = await redis.hget(METRICS_KEY, _field(name, labels))
    return float(raw) if raw is not None else 0.0


def render(values: Mapping[str, float], gauges: Mapping[str, Any]) -> bytes:
    """The Prometheus text exposition of the stored values and the scrape-time gauges.

    `gauges`: name -> (doc, {label tuple: value}, label names)."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(values, gauges))  # type: ignore[arg-type]
    return generate_latest(registry)


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Collector:
    def __init__(self, values: Mapping[str, float], gauges: Mapping[str, Any]) -> None:
        self._values = values
        self._gauges = gauges

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        grouped: dict[str, dict[tuple[tuple[str, str], ...], dict[str, float]]] = defaultdict(
            lambda: defaultdict(dict)
        )
        for raw, value in self._values.items():
            try:
                name, labels, part = json.loads(raw)
            except (ValueError, TypeError):
                continue  # a field this version does not know: not ours to show
            if name not in FAMILIES:
                continue
            grouped[name][tuple((str(k), str(v)) for k, v in labels)][part] = value
        for name, family in FAMILIES.items():
            series = grouped.get(name, {})
            if family.kind == "counter":
                counter = CounterMetricFamily(name, family.doc, labels=list(family.labels))
                for labels, parts in sorted(series.items()):
                    counter.add_metric(_values(family, labels), parts.get("", 0.0))
                yield counter
            else:
                hist = HistogramMetricFamily(name, family.doc, labels=list(family.labels))
                for labels, parts in sorted(series.items()):
                    hist.add_metric(
                        _values(family, labels),
                        buckets=list(_cumulative(family.buckets, parts)),
                        sum_value=parts.get("sum", 0.0),
                    )
                yield hist
        for name, (doc, samples, label_names) in self._gauges.items():
            gauge = GaugeMetricFamily(name, doc, labels=list(label_names))
            for label_values, value in samples.items():
                gauge.add_metric(list(label_values), float(value))
            yield gauge


def _values(family: Family, labels: tuple[tuple[str, str], ...]) -> list[str]:
    """Label values in the family's label order (stored sorted by label name)."""
    by_name = dict(labels)
    return [by_name.get(name, "") for name in family.labels]


def _cumulative(buckets: Iterable[float], parts: Mapping[str, float]) -> Iterator[tuple[str, float]]:
    total = 0.0
    for bound in buckets:
        total += parts.get(f"bucket:{bound}", 0.0)
        yield str(bound), total
    total += parts.get("bucket:+Inf", 0.0)
    yield "+Inf", total
