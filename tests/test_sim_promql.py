"""``SimMetrics`` answers the documented PromQL subset with Prometheus' numbers.

Each query is checked against a direct computation over the recorded samples; anything
outside the subset is a ``QueryError`` that quotes the query."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np
import pytest

from vigil.core import ManualClock, QueryError, to_datetime
from vigil.sim.history import SeriesStore
from vigil.sim.metrics import SimMetrics
from vigil.sim.scenario import DEFAULT_START, build_twin, small_scenario
from vigil.sim.twin import Twin

pytestmark = pytest.mark.timeout(60)
T0 = DEFAULT_START.timestamp()


@pytest.fixture(scope="module")
def twin() -> Twin:
    tw = build_twin(small_scenario())
    tw.run(timedelta(hours=2))
    return tw


def _raw(twin: Twin, name: str, **labels: str) -> tuple[np.ndarray, np.ndarray]:
    """Sample times and values of the one live series with these labels."""
    store = twin.store
    found = [
        store.series[i]
        for i in store.by_name[name]
        if all(store.series[i].labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, f"{name}{labels}: {len(found)} series"
    meta = found[0]
    rows = np.arange(meta.first_row, store.rows)
    return store.start + rows * store.step, store.data[rows, meta.col]


def _at(twin: Twin, times: np.ndarray, values: np.ndarray, t: float) -> float:
    return float(values[np.searchsorted(times, t)])


def _value(twin: Twin, query: str, **labels: str) -> float:
    found = [
        s for s in twin.metrics.query(query) if all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, f"{query} {labels}: {found}"
    return found[0].value


def test_rate_matches_the_extrapolated_delta(twin: Twin) -> None:
    t = twin.t
    times, values = _raw(twin, "http_requests_total", service="cart", code="200")
    # Window (t-300, t] holds samples t-270 … t; Prometheus extrapolates the 270 s of
    # samples by 30 s to the window start (one gap < 1.1 gaps) and divides by 300 s.
    want = (_at(twin, times, values, t) - _at(twin, times, values, t - 270)) / 270
    got = _value(twin, 'rate(http_requests_total{service="cart",code="200"}[5m])')
    assert got == pytest.approx(want, rel=1e-12)
    inc = _value(twin, 'increase(http_requests_total{service="cart",code="200"}[5m])')
    assert inc == pytest.approx(want * 300, rel=1e-12)
    irate = _value(twin, 'irate(http_requests_total{service="cart",code="200"}[5m])')
    assert irate == pytest.approx((values[-1] - values[-2]) / 30, rel=1e-12)


def test_sum_by_and_ratio_of_errors(twin: Twin) -> None:
    t = twin.t
    per_code = {}
    for code in ("200", "500", "503"):
        times, values = _raw(twin, "http_requests_total", service="checkout", code=code)
        per_code[code] = (values[-1] - _at(twin, times, values, t - 270)) / 270
    total = sum(per_code.values())
    got = _value(twin, "sum by (service) (rate(http_requests_total[5m]))", service="checkout")
    assert got == pytest.approx(total, rel=1e-12)
    ratio = _value(
        twin,
        'sum by (service) (rate(http_requests_total{code=~"5.."}[5m]))'
        " / sum by (service) (rate(http_requests_total[5m]))",
        service="checkout",
    )
    assert ratio == pytest.approx((per_code["500"] + per_code["503"]) / total, rel=1e-12)
    on = _value(
        twin,
        'sum by (namespace, service) (rate(http_requests_total{code!="200"}[5m])) '
        "/ on (service) sum by (service) (rate(http_requests_total[5m]))",
        service="checkout",
    )
    assert on == pytest.approx(ratio, rel=1e-12)
    pct = _value(twin, 'rate(http_requests_total{service="checkout",code="500"}[5m]) * 100')
    assert pct == pytest.approx(per_code["500"] * 100, rel=1e-12)


def test_histogram_quantile_interpolates_in_the_bucket(twin: Twin) -> None:
    t = twin.t
    bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf]
    rates = []
    for le in [*(f"{b:g}" for b in bounds[:-1]), "+Inf"]:
        times, values = _raw(
            twin, "http_request_duration_seconds_bucket", service="checkout", le=le
        )
        rates.append((values[-1] - _at(twin, times, values, t - 270)) / 270)
    rank = 0.99 * rates[-1]
    b = next(i for i, c in enumerate(rates) if c >= rank)
    lower, below = (bounds[b - 1], rates[b - 1]) if b else (0.0, 0.0)
    want = lower + (bounds[b] - lower) * (rank - below) / (rates[b] - below)
    got = _value(
        twin,
        "histogram_quantile(0.99, sum by (le, service) "
        "(rate(http_request_duration_seconds_bucket[5m])))",
        service="checkout",
    )
    assert got == pytest.approx(want, rel=1e-12)
    assert 0.1 < got < 1.5  # a healthy checkout: p99 well under its 1.5 s SLO


def test_aggregations_topk_and_filters(twin: Twin) -> None:
    memory = {
        s.labels["pod"]: s.value for s in twin.metrics.query("container_memory_working_set_bytes")
    }
    cart = [v for p, v in memory.items() if p.startswith("cart-")]
    assert _value(
        twin, 'sum by (namespace) (container_memory_working_set_bytes{namespace="shop"})'
    ) == pytest.approx(sum(v for p, v in memory.items() if not p.startswith("orders-db")))
    assert _value(twin, 'max(container_memory_working_set_bytes{pod=~"cart-.*"})') == max(cart)
    assert _value(twin, 'min(container_memory_working_set_bytes{pod=~"cart-.*"})') == min(cart)
    assert _value(twin, 'avg(container_memory_working_set_bytes{pod=~"cart-.*"})') == pytest.approx(
        np.mean(cart)
    )
    assert (
        _value(twin, 'count(container_memory_working_set_bytes{pod!~"cart-.*"})') == len(memory) - 3
    )
    top = twin.metrics.query("topk(2, container_memory_working_set_bytes)")
    assert sorted(s.value for s in top) == sorted(memory.values())[-2:]
    assert all(s.metric == "container_memory_working_set_bytes" for s in top)
    without = twin.metrics.query("sum without (pod) (container_memory_working_set_bytes)")
    assert {tuple(sorted(s.labels)) for s in without} == {("container", "namespace")}
    big = twin.metrics.query("kube_deployment_spec_replicas > 2")
    assert {s.labels["deployment"] for s in big} == {
        d.name for d in twin.state.deployments.values() if d.replicas > 2
    }
    flags = twin.metrics.query("kube_deployment_spec_replicas > bool 2")
    assert sorted(s.value for s in flags) == sorted(
        float(d.replicas > 2) for d in twin.state.deployments.values()
    )
    scalar = {
        "2 * 3 + 1": 7.0,
        "2 + 3 * 4": 14.0,
        "10 - 4 - 3": 3.0,
        "2 ^ 3 ^ 2": 512.0,
        "-2 ^ 2": -4.0,
        "-2 * 3": -6.0,
        "(1 + 2) * 3": 9.0,
        "7 % 4": 3.0,
        "3 > bool 2": 1.0,
    }
    for query, want in scalar.items():
        assert twin.metrics.query(query)[0].value == want, query


def test_query_range_agrees_with_instant_queries(twin: Twin) -> None:
    query = 'sum by (service) (rate(http_requests_total{namespace="shop"}[5m]))'
    end = twin.now
    start = end - timedelta(minutes=30)
    series = twin.metrics.query_range(query, start, end, timedelta(minutes=1))
    assert {s.labels["service"] for s in series} == {"cart", "checkout"}
    for s in series:
        assert s.metric == query
        assert len(s) == 31
        for ts, value in zip(s.timestamps[::10], s.values[::10], strict=True):
            want = _value_at(twin, query, to_datetime(ts), service=s.labels["service"])
            assert value == pytest.approx(want, rel=1e-12)


def _value_at(twin: Twin, query: str, at: datetime, **labels: str) -> float:
    return next(
        s.value
        for s in twin.metrics.query(query, at)
        if all(s.labels[k] == v for k, v in labels.items())
    )


def test_series_and_label_values(twin: Twin) -> None:
    m = twin.metrics
    found = m.series('http_requests_total{service="cart"}', DEFAULT_START, twin.now)
    assert {s["code"] for s in found} == {"200", "500", "503"}
    assert all(s["__name__"] == "http_requests_total" for s in found)
    assert m.label_values("namespace") == ["data", "shop"]
    assert m.label_values("service", "http_requests_total") == ["cart", "checkout"]
    with pytest.raises(QueryError, match="not a series selector"):
        m.series("rate(http_requests_total[5m])", DEFAULT_START, twin.now)


def _store() -> tuple[SeriesStore, SimMetrics, ManualClock]:
    """A hand-written counter with a reset: 0, 10, 20, 30, 5 (reset), 15 every 15 s."""
    store = SeriesStore(T0, 15.0)
    store.declare("jobs_total", "counter", "jobs")
    col = store.allocate(1)
    idx = store.open({"__name__": "jobs_total", "job": "a"}, col)
    for v in (0.0, 10.0, 20.0, 30.0, 5.0, 15.0):
        store.next_row()[col] = v
        store.commit()
    store.close(idx)
    clock = ManualClock(DEFAULT_START + timedelta(seconds=75))
    return store, SimMetrics(store, clock), clock


def test_rate_corrects_counter_resets_and_extrapolates_like_prometheus() -> None:
    _, m, _ = _store()
    at = DEFAULT_START + timedelta(seconds=75)
    # Window (15, 75]: samples at 30..75 = 20, 30, 5, 15 → increase 15 - 20 + 30 = 25 over
    # 45 s sampled; start gap 15 s < 1.1 × 15 → extrapolate fully: 25 × 60/45.
    assert m.query("increase(jobs_total[60s])", at)[0].value == pytest.approx(25 * 60 / 45)
    assert m.query("rate(jobs_total[1m])", at)[0].value == pytest.approx(25 / 45)
    # Whole life (−15, 75]: 0..15 → 15 + 30 = 45 over 75 s; extrapolating to zero is
    # limited by the counter reaching 0 at its first sample, so the start adds 0 s.
    assert m.query("increase(jobs_total[90s])", at)[0].value == pytest.approx(45)
    assert m.query("irate(jobs_total[1m])", at)[0].value == pytest.approx(10 / 15)
    assert m.query("max_over_time(jobs_total[1m])", at)[0].value == 30
    assert m.query("avg_over_time(jobs_total[1m])", at)[0].value == pytest.approx(17.5)
    assert m.query("count_over_time(jobs_total[1m])", at)[0].value == 4


def test_deriv_and_predict_linear_fit_a_line() -> None:
    store = SeriesStore(T0, 15.0)
    col = store.allocate(1)
    store.open({"__name__": "queue_depth", "job": "a"}, col)
    for v in (100.0, 110.0, 120.0, 130.0):
        store.next_row()[col] = v
        store.commit()
    m = SimMetrics(store, ManualClock(DEFAULT_START + timedelta(seconds=45)))
    assert m.query("deriv(queue_depth[1m])")[0].value == pytest.approx(10 / 15)
    # 130 now, rising 10 per 15 s: in 60 s, 170.
    assert m.query("predict_linear(queue_depth[1m], 60)")[0].value == pytest.approx(170)


def test_lookback_and_staleness() -> None:
    _, m, _ = _store()
    # Between samples: the newest one at or before the time.
    assert m.query("jobs_total", DEFAULT_START + timedelta(seconds=40))[0].value == 20
    # The series ended after its last sample: stale from the next scrape on.
    assert m.query("jobs_total", DEFAULT_START + timedelta(seconds=80))[0].value == 15
    assert m.query("jobs_total", DEFAULT_START + timedelta(seconds=95)) == []
    # Before the first sample: nothing.
    assert m.query("jobs_total", DEFAULT_START - timedelta(seconds=1)) == []


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("rate(jobs_total[5m] offset 1h)", "offset"),
        ("jobs_total and jobs_total", "'and'"),
        ('label_replace(jobs_total, "a", "$1", "job", "(.*)")', "label_replace"),
        ("rate(jobs_total[5m:1m])", "subqueries"),
        ("jobs_total / on(job) group_left jobs_total", "group_left"),
        ("quantile(0.9, jobs_total)", "quantile"),
        ("sum(jobs_total", "end of query"),
        ("jobs_total @ 100", "@ modifier"),
        ("rate(jobs_total)", "range vector"),
        ('{job=~".*"}', "does not match empty"),
        ('jobs_total{job=~"("}', "regular expression"),
        ("1 > 2", "bool"),
        ("", "empty"),
    ],
)
def test_unsupported_promql_is_a_query_error_quoting_the_query(query: str, why: str) -> None:
    _, m, _ = _store()
    with pytest.raises(QueryError, match=why) as err:
        m.query(query)
    assert err.value.query == query
    assert repr(query) in str(err.value)


def test_range_query_grid_is_floored_to_the_step() -> None:
    _, m, _ = _store()
    [series] = m.query_range(
        "jobs_total",
        DEFAULT_START + timedelta(seconds=7),
        DEFAULT_START + timedelta(seconds=52),
        timedelta(seconds=15),
    )
    offsets = (series.timestamps - T0).tolist()
    assert offsets == [0.0, 15.0, 30.0, 45.0]
    assert series.values.tolist() == [0.0, 10.0, 20.0, 30.0]


def test_range_query_limits() -> None:
    _, m, _ = _store()
    # Longer than Prometheus' 11,000 points: answered whole (PrometheusSource chunks).
    eight_days = m.query_range(
        "jobs_total",
        DEFAULT_START - timedelta(days=8),
        DEFAULT_START + timedelta(minutes=2),
        timedelta(minutes=1),
    )
    assert len(eight_days[0]) == 8 * 1440 + 3 and eight_days[0].valid_count() == 2
    with pytest.raises(QueryError, match="1,000,000"):
        m.query_range(
            "jobs_total", DEFAULT_START, DEFAULT_START + timedelta(days=300), timedelta(seconds=15)
        )
    with pytest.raises(QueryError, match="before start"):
        m.query_range(
            "jobs_total", DEFAULT_START, DEFAULT_START - timedelta(1), timedelta(seconds=15)
        )
