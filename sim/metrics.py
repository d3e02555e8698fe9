"""``SimMetrics``: the ``MetricSource`` port over the twin's recorded history.

Answers the PromQL subset of ``vigil.sim.promql`` (documented in ``docs/sim.md``) with
Prometheus' semantics, so detectors, playbooks and the NL layer run on the twin
unchanged. A result without a metric name (after ``rate``, ``sum``, arithmetic) is
returned under the query text as its ``metric``. Only data up to the twin's current
step exists: a query can never see the simulated future. Created by
``vigil.sim.twin.Twin`` (``twin.metrics``); usable on any ``SeriesStore``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import lru_cache

import numpy as np

from vigil.core import Clock, QueryError, Sample, Series, to_timestamp
from vigil.sim.evaluator import Scalar, evaluate
from vigil.sim.history import SeriesStore
from vigil.sim.promql import Expr, Selector, parse

__all__ = ["MAX_POINTS", "SimMetrics"]

# Prometheus refuses more than 11,000 points per series and PrometheusSource splits
# longer ranges into chunks; the twin answers them whole, up to a memory guard.
MAX_POINTS = 1_000_000


@lru_cache(maxsize=512)
def _parse(query: str) -> Expr:
    return parse(query)


class SimMetrics:
    """PromQL over a ``SeriesStore``; ``clock`` decides what "now" is for instant queries."""

    def __init__(self, store: SeriesStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def query(self, promql: str, at: datetime | None = None) -> list[Sample]:
        when = to_timestamp(at if at is not None else self._clock.now())
        result = evaluate(self._store, _parse(promql), np.array([when]), promql)
        if isinstance(result, Scalar):
            return [Sample(promql, {}, float(result.values[0]), when)]
        out = []
        for labels, row in zip(result.labels, result.values, strict=True):
            if np.isnan(row[0]):
                continue
            name = labels.get("__name__", promql)
            rest = {k: v for k, v in labels.items() if k != "__name__"}
            out.append(Sample(name, rest, float(row[0]), when))
        return sorted(out, key=lambda s: s.id)

    def query_range(
        self, promql: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Series]:
        seconds = step.total_seconds()
        if seconds <= 0:
            raise QueryError(f"query {promql!r}: step must be positive, got {step}", query=promql)
        t0, t1 = to_timestamp(start), to_timestamp(end)
        if t1 < t0:
            raise QueryError(f"query {promql!r}: end {end} is before start {start}", query=promql)
        # Start and end floored to multiples of the step, as PrometheusSource does, so
        # points line up across ticks and sources.
        first = math.floor(t0 / seconds + 1e-9) * seconds
        count = math.floor((t1 - first) / seconds + 1e-9) + 1
        if count > MAX_POINTS:
            raise QueryError(
                f"query {promql!r}: {count} points per series exceeds the maximum of "
                f"{MAX_POINTS:,}; use a larger step or a shorter range",
                query=promql,
            )
        times = first + seconds * np.arange(max(count, 0), dtype=np.float64)
        result = evaluate(self._store, _parse(promql), times, promql)
        if isinstance(result, Scalar):
            return [Series(promql, {}, times, result.values)]
        out = []
        for labels, row in zip(result.labels, result.values, strict=True):
            if np.isnan(row).all():
                continue
            name = labels.get("__name__", promql)
            rest = {k: v for k, v in labels.items() if k != "__name__"}
            out.append(Series(name, rest, times, row))
        return sorted(out, key=lambda s: s.id)

    def _selector(self, selector: str) -> Selector:
        expr = _parse(selector)
        if not isinstance(expr, Selector) or expr.range_s is not None:
            raise QueryError(
                f"{selector!r} is not a series selector (write e.g. "
                'http_requests_total{namespace="shop"})',
                query=selector,
            )
        return expr

    def series(self, selector: str, start: datetime, end: datetime) -> list[Mapping[str, str]]:
        """Label sets (with ``__name__``) of matching series with samples in [start, end]."""
        sel = self._selector(selector)
        store = self._store
        lo = math.ceil((to_timestamp(start) - store.start) / store.step - 1e-9)
        hi = math.floor((to_timestamp(end) - store.start) / store.step + 1e-9)
        found = {}
        for i in store.select(sel.name, sel.matchers):
            if store.has_data(i, lo, hi):
                labels = store.series[i].labels
                found[tuple(sorted(labels.items()))] = dict(labels)
        return [found[k] for k in sorted(found)]

    def label_values(self, label: str, selector: str | None = None) -> list[str]:
        store = self._store
        if selector is None:
            indexes: list[int] | range = range(len(store.series))
        else:
            sel = self._selector(selector)
            indexes = store.select(sel.name, sel.matchers)
        values = {store.series[i].labels.get(label) for i in indexes}
        return sorted(v for v in values if v)
