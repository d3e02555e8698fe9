"""``PrometheusSource`` against a real Prometheus (backfilled by ``promfixture``).

Values come back exactly as written, gaps and NaNs as NaN, long ranges chunked and
stitched, ranges aligned to the step; series discovery and label values. Fault cases
(server down, 5xx, garbage, bad PromQL, auth, TLS) are in ``test_prometheus_faults.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from promfixture import SeriesData

from vigil.agent.prometheus import PrometheusSource
from vigil.core import MetricSource, QueryError, Series

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(60)]

MIN = 60
# Midnight UTC three days ago: recent (inside any retention), older than the head block.
T0 = (int(time.time()) // 86400 - 3) * 86400
STEP = timedelta(minutes=1)

# Values that only survive the round trip if nothing rounds them on the way.
DIGITS = [0.1234567890123456789, 12345678.901234567, 1e-300, -2.5e17, math.pi]
GAP = range(30, 50)  # minutes 30..49 of instance "a" are not written at all
NAN_AT = 10  # minute 10 of instance "a" is written as NaN


def _values_a() -> list[float]:
    out = []
    for k in range(120):
        if k == NAN_AT:
            out.append(math.nan)
        elif k < len(DIGITS):
            out.append(DIGITS[k])
        else:
            out.append(round(100 + 7.77 * math.sin(k / 9), 9))
    return out


VALUES_A = _values_a()
DENSE_STEP = 10
DENSE_POINTS = 12_100  # > 11,000 points per series at a 10 s step: must be chunked


def _dataset() -> list[SeriesData]:
    a = [(T0 + k * MIN, v) for k, v in enumerate(VALUES_A) if k not in GAP]
    b = [(T0 + k * MIN, float(k)) for k in range(120)]
    c = [(T0 + k * MIN, 1000.0 - k) for k in range(60)]  # ends after one hour
    dense = [(T0 + k * DENSE_STEP, float(k % 977) / 7) for k in range(DENSE_POINTS)]
    return [
        SeriesData("vigil_test_gauge", {"job": "api", "instance": "a"}, a),
        SeriesData("vigil_test_gauge", {"job": "api", "instance": "b"}, b),
        SeriesData("vigil_test_gauge", {"job": "db", "instance": "c"}, c),
        SeriesData("vigil_test_dense", {"job": "api"}, dense),
    ]


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@pytest.fixture(scope="module")
def prom_url(prometheus_factory: Callable[..., str]) -> str:
    # A lookback shorter than the data's interval: each step reads exactly the sample
    # written at it, and a gap reads as missing instead of the last value repeated.
    return prometheus_factory("exact", _dataset(), lookback="5s")


@pytest.fixture
def source(prom_url: str) -> PrometheusSource:
    with PrometheusSource(prom_url, timeout=10, retries=0) as src:
        yield src


def by_instance(series: list[Series]) -> dict[str, Series]:
    return {s.labels["instance"]: s for s in series}


def test_is_a_metric_source(source: PrometheusSource) -> None:
    assert isinstance(source, MetricSource)


def test_query_range_returns_exactly_the_values_written(source: PrometheusSource) -> None:
    got = by_instance(
        source.query_range('vigil_test_gauge{job="api"}', at(T0), at(T0 + 119 * MIN), STEP)
    )
    assert set(got) == {"a", "b"}
    a = got["a"]
    assert a.metric == "vigil_test_gauge"
    assert dict(a.labels) == {"instance": "a", "job": "api"}
    assert a.timestamps.tolist() == [float(T0 + k * MIN) for k in range(120)]
    expected = np.array([math.nan if k in GAP else v for k, v in enumerate(VALUES_A)])
    assert np.array_equal(a.values, expected, equal_nan=True)
    # The exact floats, bit for bit, not just close.
    assert a.values[: len(DIGITS)].tolist()[:NAN_AT] == DIGITS[:NAN_AT]
    assert math.isnan(a.values[NAN_AT])  # written NaN
    assert np.isnan(a.values[GAP.start : GAP.stop]).all()  # gap: NaN, never 0
    assert got["b"].values.tolist() == [float(k) for k in range(120)]


def test_series_that_ends_inside_the_range_is_padded_with_nan(
    source: PrometheusSource,
) -> None:
    (c,) = source.query_range('vigil_test_gauge{job="db"}', at(T0), at(T0 + 119 * MIN), STEP)
    assert len(c) == 120
    assert c.values[:60].tolist() == [1000.0 - k for k in range(60)]
    assert np.isnan(c.values[60:]).all()
    assert c.valid_count() == 60


def test_no_matching_series_is_an_empty_list(source: PrometheusSource) -> None:
    assert source.query_range("vigil_no_such_metric", at(T0), at(T0 + 3600), STEP) == []
    assert source.series("vigil_no_such_metric", at(T0), at(T0 + 3600)) == []
    assert source.label_values("instance", "vigil_no_such_metric") == []


def test_aggregation_is_named_by_its_query(source: PrometheusSource) -> None:
    query = "sum by (job) (vigil_test_gauge)"
    got = source.query_range(query, at(T0), at(T0 + 59 * MIN), STEP)
    assert [(s.metric, dict(s.labels)) for s in got] == [
        (query, {"job": "api"}),
        (query, {"job": "db"}),
    ]
    db = got[1]
    assert db.values.tolist() == [1000.0 - k for k in range(60)]


def test_step_alignment(source: PrometheusSource) -> None:
    # Start and end off the grid: both floor to multiples of the step.
    got = by_instance(
        source.query_range(
            'vigil_test_gauge{instance="b"}', at(T0 + 17), at(T0 + 10 * MIN + 43), STEP
        )
    )["b"]
    assert got.timestamps.tolist() == [float(T0 + k * MIN) for k in range(11)]
    assert got.values.tolist() == [float(k) for k in range(11)]
    # Asked a few seconds apart, the same range gives the same answer (cacheable).
    again = source.query_range(
        'vigil_test_gauge{instance="b"}', at(T0 + 59), at(T0 + 10 * MIN + 1), STEP
    )
    assert again == [got]
    # A coarser step aligns to its own multiples.
    five = source.query_range(
        'vigil_test_gauge{instance="b"}', at(T0 + 7 * MIN), at(T0 + 31 * MIN), STEP * 5
    )[0]
    assert five.timestamps.tolist() == [float(T0 + k * MIN) for k in (5, 10, 15, 20, 25, 30)]
    assert five.values.tolist() == [5.0, 10.0, 15.0, 20.0, 25.0, 30.0]


def test_long_range_is_chunked_and_stitched(prom_url: str) -> None:
    step = timedelta(seconds=DENSE_STEP)
    end = T0 + (DENSE_POINTS - 1) * DENSE_STEP
    truth = np.array([float(k % 977) / 7 for k in range(DENSE_POINTS)])
    with PrometheusSource(prom_url, timeout=20, max_workers=3) as src:
        (got,) = src.query_range("vigil_test_dense", at(T0), at(end), step)
    assert len(got) == DENSE_POINTS  # more than Prometheus' 11,000 in one request
    assert np.all(np.diff(got.timestamps) == DENSE_STEP)  # no duplicated boundary point
    assert got.values.tolist() == truth.tolist()


def test_small_chunks_match_the_unchunked_answer(prom_url: str) -> None:
    query = "vigil_test_gauge"
    with (
        PrometheusSource(prom_url, timeout=10) as whole,
        PrometheusSource(prom_url, timeout=10, max_points_per_request=7, max_workers=4) as bits,
    ):
        truth = whole.query_range(query, at(T0), at(T0 + 119 * MIN), STEP)
        chunked = bits.query_range(query, at(T0), at(T0 + 119 * MIN), STEP)
        # Series "c" is absent from the later chunks entirely; it must still line up.
    assert len(truth) == 3
    assert chunked == truth


def test_too_many_points_is_refused_before_asking(prom_url: str) -> None:
    with PrometheusSource(prom_url, max_points=1000) as src, pytest.raises(QueryError) as err:
        src.query_range("vigil_test_dense", at(T0), at(T0 + 86400), timedelta(seconds=10))
    assert "8641 points per series" in str(err.value)
    assert "larger step" in str(err.value)


def test_instant_query(source: PrometheusSource) -> None:
    samples = source.query("vigil_test_gauge", at=at(T0 + 5 * MIN))
    assert [(s.labels["instance"], s.value, s.timestamp) for s in samples] == [
        ("a", VALUES_A[5], T0 + 5 * MIN),
        ("b", 5.0, T0 + 5 * MIN),
        ("c", 995.0, T0 + 5 * MIN),
    ]
    assert all(s.metric == "vigil_test_gauge" for s in samples)


def test_instant_scalar_and_empty_results(source: PrometheusSource) -> None:
    (scalar,) = source.query('scalar(vigil_test_gauge{instance="b"})', at=at(T0 + 7 * MIN))
    assert (scalar.value, scalar.timestamp, dict(scalar.labels)) == (7.0, T0 + 7 * MIN, {})
    # In the gap nothing is returned: an empty vector, not a zero.
    assert source.query('vigil_test_gauge{instance="a"}', at=at(T0 + 40 * MIN)) == []


def test_instant_query_of_a_range_vector_is_a_query_error(source: PrometheusSource) -> None:
    with pytest.raises(QueryError, match=r"returns a matrix.*query_range"):
        source.query("vigil_test_gauge[5m]", at=at(T0 + 30 * MIN))


def test_series_discovery(source: PrometheusSource) -> None:
    found = source.series('{__name__=~"vigil_test_.*", job="api"}', at(T0), at(T0 + 3600))
    assert found == [
        {"__name__": "vigil_test_dense", "job": "api"},
        {"__name__": "vigil_test_gauge", "instance": "a", "job": "api"},
        {"__name__": "vigil_test_gauge", "instance": "b", "job": "api"},
    ]
    # Before the data, nothing matches.
    assert source.series("vigil_test_gauge", at(T0 - 86400), at(T0 - 3600)) == []


def test_label_values(source: PrometheusSource) -> None:
    assert source.label_values("instance", "vigil_test_gauge") == ["a", "b", "c"]
    assert source.label_values("instance", 'vigil_test_gauge{job="db"}') == ["c"]
    assert {"vigil_test_dense", "vigil_test_gauge"} <= set(source.label_values("__name__"))


def test_bad_promql_quotes_the_query_and_prometheus_message(source: PrometheusSource) -> None:
    query = "sum(rate(vigil_test_gauge[5m]) by"
    with pytest.raises(QueryError) as err:
        source.query_range(query, at(T0), at(T0 + 3600), STEP)
    message = str(err.value)
    assert repr(query) in message
    assert "HTTP 400" in message
    assert "bad_data" in message and "parse error" in message
    assert source.url in message
    assert err.value.query == query
