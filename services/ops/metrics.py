"""The Prometheus text exposition of the service's counters (served at /vmh/metrics).

What is counted, by which names, and how it is kept: services/store/counters.py (the one
counters path, `Metrics`). `render()` reads the stored values and produces the exposition with
`prometheus_client` (its own registry and collector: no process-global state, nothing of this
process's own).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from services.store.counters import FAMILIES, Family


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
