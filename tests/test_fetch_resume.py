"""The fetch stage resumes from the live series: a deleted pod's series must not make
every later tick fetch again from its last point (regression, issue 4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from vigil.agent.loop import TickContext
from vigil.agent.stages import FetchStage
from vigil.core import ManualClock, Sample, Series

pytestmark = pytest.mark.timeout(30)

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
POD_GONE = T0 - timedelta(hours=6)


class PodsSource:
    """A MetricSource at the seam: a live pod, and one deleted six hours before T0."""

    def __init__(self) -> None:
        self.requests: list[tuple[datetime, datetime]] = []

    def query(self, promql: str, at: datetime | None = None) -> list[Sample]:
        raise NotImplementedError

    def series(self, selector: str, start: datetime, end: datetime) -> list[dict[str, str]]:
        return []

    def label_values(self, label: str, selector: str | None = None) -> list[str]:
        return []

    def query_range(
        self, promql: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Series]:
        self.requests.append((start, end))
        s = step.total_seconds()
        first = np.ceil(start.timestamp() / s) * s
        ts = first + s * np.arange(int((end.timestamp() - first) // s) + 1)
        out = [Series("cpu", {"namespace": "shop", "pod": "live"}, ts, np.ones(ts.size))]
        old = ts[ts <= POD_GONE.timestamp()]
        if old.size:
            out.append(Series("cpu", {"namespace": "shop", "pod": "gone"}, old, np.ones(old.size)))
        return out


def test_fetch_resumes_from_live_series_not_from_a_deleted_pod() -> None:
    source = PodsSource()
    stage = FetchStage(source, {"cpu": "cpu"}, lookback=86_400, step=60, overlap=300)
    clock = ManualClock(T0)
    ctx = TickContext(1, clock.now())
    stage.run(ctx)
    assert len(ctx.series) == 2
    for tick in range(2, 5):
        clock.advance(600)
        ctx = TickContext(tick, clock.now())
        stage.run(ctx)
        start, end = source.requests[-1]
        assert end - start <= timedelta(seconds=600 + 300), "only the new points and the overlap"
        assert len(ctx.series) == 2, "the deleted pod's history is still served"
