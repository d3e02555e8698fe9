"""The step grid behind ``PrometheusSource.query_range``: alignment and chunk plans.

Properties, checked with hypothesis: chunks tile the grid (every point once, in order,
none over the limit), and alignment is idempotent and never moves a bound by a step or
more.
"""

from __future__ import annotations

import gc
import itertools
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.agent._prometheus_decode import Grid, format_ms, parse_json

pytestmark = pytest.mark.timeout(60)

EPOCH_MS = st.integers(min_value=0, max_value=4_000_000_000_000)
STEP_MS = st.integers(min_value=1, max_value=86_400_000)


# No per-example deadline: a loaded 2-core CI machine must not turn slowness into failure.
@settings(deadline=None)
@given(start=EPOCH_MS, length=st.integers(0, 10**9), step=STEP_MS)
def test_alignment_floors_to_the_step_and_is_idempotent(start: int, length: int, step: int) -> None:
    grid = Grid.aligned(start, start + length, step)
    assert grid.start_ms % step == 0 and grid.end_ms % step == 0
    assert 0 <= start - grid.start_ms < step
    assert 0 <= (start + length) - grid.end_ms < step or grid.end_ms == grid.start_ms
    assert Grid.aligned(grid.start_ms, grid.end_ms, step) == grid


@settings(deadline=None)
@given(start=EPOCH_MS, points=st.integers(1, 30_000), step=STEP_MS, limit=st.integers(1, 11_000))
def test_chunks_tile_the_grid(start: int, points: int, step: int, limit: int) -> None:
    grid = Grid.aligned(start, start + (points - 1) * step, step)
    chunks = grid.chunks(limit)
    assert sum(c.points for c in chunks) == grid.points
    assert all(1 <= c.points <= limit for c in chunks)
    assert chunks[0].start_ms == grid.start_ms and chunks[-1].end_ms == grid.end_ms
    for before, after in itertools.pairwise(chunks):
        assert after.start_ms == before.end_ms + step  # no gap, no shared boundary point


def test_grid_timestamps_and_errors() -> None:
    grid = Grid.aligned(1_000_030_000, 1_000_200_500, 60_000)
    assert grid.start_ms == 1_000_020_000 and grid.end_ms == 1_000_200_000
    assert grid.timestamps().tolist() == [1_000_020.0, 1_000_080.0, 1_000_140.0, 1_000_200.0]
    with pytest.raises(ValueError, match="before its start"):
        Grid.aligned(2000, 1000, 10)
    with pytest.raises(ValueError, match="at least 1 ms"):
        Grid.aligned(0, 1000, 0)


@pytest.mark.parametrize(
    ("ms", "text"),
    [(1_700_000_000_000, "1700000000"), (1_700_000_000_500, "1700000000.5"),
     (1_700_000_000_001, "1700000000.001"), (60_000, "60"), (1, "0.001")],
)  # fmt: skip
def test_format_ms_is_exact(ms: int, text: str) -> None:
    assert format_ms(ms) == text


def test_parse_json_restores_the_collector_even_when_threads_overlap() -> None:
    assert gc.isenabled()
    body = b'{"data": [' + b",".join(b"[1, 2]" for _ in range(20_000)) + b"]}"
    errors: list[BaseException] = []

    def parse() -> None:
        try:
            for _ in range(5):
                assert len(parse_json(body)["data"]) == 20_000
        except BaseException as exc:  # collected for the main thread to report
            errors.append(exc)

    threads = [threading.Thread(target=parse) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert gc.isenabled()
    with pytest.raises(ValueError):
        parse_json(b"not json")
    assert gc.isenabled()
    # A collector the application turned off stays off.
    gc.disable()
    try:
        parse_json(b"[1]")
        assert not gc.isenabled()
    finally:
        gc.enable()
