"""A minimal ``MetricSource`` for verify tests: answers instant queries from a table.

Keys are substrings of the PromQL; the first key found in a query gives its values.
Every query is recorded, so tests can check the placeholders were filled in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from vigil.core import Sample, Series


class FakeMetrics:
    def __init__(self, table: Mapping[str, list[float]] | None = None) -> None:
        self.table = dict(table or {})
        self.queries: list[str] = []

    def query(self, promql: str, at: datetime | None = None) -> list[Sample]:
        self.queries.append(promql)
        ts = at.timestamp() if at else 0.0
        for key, values in self.table.items():
            if key in promql:
                return [Sample("m", {"i": str(i)}, v, ts) for i, v in enumerate(values)]
        return []

    def query_range(
        self, promql: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Series]:
        return []

    def series(self, selector: str, start: datetime, end: datetime) -> list[Mapping[str, str]]:
        return []

    def label_values(self, label: str, selector: str | None = None) -> list[str]:
        return []
