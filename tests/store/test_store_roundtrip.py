"""Every value the ``Store`` port takes comes back equal from a real SQLite file."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from vigil.agent.store import SqliteStore
from vigil.core import (
    ActionKind,
    ActionResult,
    ActionStatus,
    FeedbackLabel,
    Finding,
    FindingKind,
    Forecast,
    Mode,
    NotFoundError,
    ObjectRef,
    Plan,
    Severity,
    Store,
    Verification,
    ports,
)

pytestmark = pytest.mark.timeout(30)


def _protocol_methods() -> dict[str, inspect.Signature]:
    methods = {}
    for proto in (
        ports.TickLog,
        ports.FindingStore,
        ports.ForecastStore,
        ports.ActionJournal,
        ports.Outbox,
        ports.FeedbackStore,
        Store,
    ):
        for name, fn in vars(proto).items():
            if not name.startswith("_") and callable(fn):
                methods[name] = inspect.signature(fn)
    return methods


def test_implements_every_store_method_with_the_same_parameters() -> None:
    methods = _protocol_methods()
    assert len(methods) >= 27
    for name, expected in methods.items():
        actual = inspect.signature(getattr(SqliteStore, name))
        assert list(actual.parameters) == list(expected.parameters), name
        for param in expected.parameters.values():
            got = actual.parameters[param.name]
            assert (got.kind, got.default) == (param.kind, param.default), f"{name}.{param.name}"


def _same_forecast(a: Forecast, b: Forecast) -> None:
    assert (a.metric, dict(a.labels), a.made_at, a.model, a.model_version, a.unit) == (
        b.metric,
        dict(b.labels),
        b.made_at,
        b.model,
        b.model_version,
        b.unit,
    )
    assert a.series == b.series
    np.testing.assert_array_equal(a.timestamps, b.timestamps)
    np.testing.assert_array_equal(a.mean, b.mean)  # NaN where NaN
    assert sorted(a.quantiles) == sorted(b.quantiles)
    for q in a.quantiles:
        np.testing.assert_array_equal(a.quantiles[q], b.quantiles[q])


def test_finding_with_anomaly_round_trips(store: SqliteStore, values) -> None:
    finding = values.finding()
    assert store.record_finding(finding) is True
    back = store.get_finding(finding.id)
    assert back == finding
    assert back.anomaly is not None and back.anomaly.detector_version == "1.2"
    assert back.anomaly.series == finding.anomaly.series
    assert back.target == ObjectRef("deployment", "shop", "checkout")
    assert back.started_at.tzinfo is not None and back.started_at == values.T0


def test_finding_with_forecast_round_trips_and_keeps_a_summary(
    store: SqliteStore, values, db_path: Path
) -> None:
    forecast = values.forecast()
    finding = Finding(
        FindingKind.FORECAST,
        forecast.series,
        "load will exceed capacity",
        Severity.WARNING,
        values.T0,
        values.T0,
        forecast=forecast,
        details={"peak": 13.0},
    )
    store.record_finding(finding)
    back = store.get_finding(finding.id)
    assert back.forecast is not None
    _same_forecast(back.forecast, forecast)
    assert (back.kind, back.title, dict(back.details)) == (
        finding.kind,
        finding.title,
        {"peak": 13.0},
    )
    # The summary is readable by SQL without the arrays (nlq, sqlite3 CLI).
    import sqlite3

    with sqlite3.connect(db_path) as conn:
        peak, model = conn.execute(
            "SELECT json_extract(forecast, '$.peak_mean'), json_extract(forecast, '$.model') "
            "FROM findings"
        ).fetchone()
    assert (peak, model) == (13.0, "holt-winters")


def test_alert_finding_without_target_or_values(store: SqliteStore, values) -> None:
    finding = Finding(
        FindingKind.ALERT,
        "fp-9",
        "KubePodCrashLooping",
        "critical",
        values.T0,
        values.T0,
        labels={"alertname": "KubePodCrashLooping"},
    )
    store.record_finding(finding)
    assert store.get_finding(finding.id) == finding


def test_record_finding_refreshes_by_id(store: SqliteStore, values) -> None:
    first = values.finding()
    assert store.record_finding(first)
    later = Finding(
        first.kind,
        first.subject,
        first.title,
        Severity.WARNING,
        first.observed_at + timedelta(minutes=3),
        first.started_at,
        anomaly=first.anomaly,
    )
    assert later.id == first.id
    assert store.record_finding(later) is False
    back = store.get_finding(first.id)
    assert back.severity is Severity.WARNING
    assert back.observed_at == later.observed_at
    assert back.started_at == first.started_at
    assert len(store.open_findings()) == 1


def test_resolve_open_and_between(store: SqliteStore, values) -> None:
    t = values.T0
    a = values.finding(t, service="a")
    b = values.finding(t + timedelta(hours=2), service="b")
    store.record_finding(a)
    store.record_finding(b)
    store.resolve_finding(a.id, t + timedelta(hours=1))
    store.resolve_finding(a.id, t + timedelta(hours=5))  # the first resolution stands
    assert store.get_finding(a.id).resolved_at == t + timedelta(hours=1)
    assert [f.id for f in store.open_findings()] == [b.id]
    assert [f.id for f in store.findings_between(t, t + timedelta(minutes=30))] == [a.id]
    assert [
        f.id
        for f in store.findings_between(t + timedelta(hours=1, minutes=30), t + timedelta(hours=3))
    ] == [b.id]
    assert [f.id for f in store.findings_between(t - timedelta(days=1), t + timedelta(days=1))] == [
        a.id,
        b.id,
    ]
    with pytest.raises(NotFoundError, match="no finding f-nope"):
        store.get_finding("f-nope")
    with pytest.raises(NotFoundError, match="no finding f-nope"):
        store.resolve_finding("f-nope", t)


def test_forecast_latest_per_series(store: SqliteStore, values) -> None:
    assert store.latest_forecast("nope{}") is None
    old = values.forecast(values.T0, level=5.0)
    new = values.forecast(values.T0 + timedelta(hours=1), level=7.0)
    store.record_forecast(new)
    store.record_forecast(old)  # inserted later, made earlier: not the latest
    latest = store.latest_forecast(new.series)
    assert latest is not None
    _same_forecast(latest, new)


def test_ticks_round_trip(store: SqliteStore, values) -> None:
    t = values.T0
    first = store.start_tick(t)
    store.finish_tick(first, t + timedelta(seconds=2), {"fetch": 1.25, "detect": 0.5}, [])
    second = store.start_tick(t + timedelta(minutes=1))
    store.finish_tick(
        second, t + timedelta(minutes=1, seconds=3), {"fetch": 3.0}, ["detect: ValueError: boom"]
    )
    third = store.start_tick(t + timedelta(minutes=2))
    ticks = store.recent_ticks()
    assert [k.id for k in ticks] == [third, second, first]
    assert ticks[0].ended_at is None and ticks[0].ok is None
    assert ticks[1].errors == ("detect: ValueError: boom",) and ticks[1].ok is False
    assert dict(ticks[2].durations) == {"fetch": 1.25, "detect": 0.5} and ticks[2].ok is True
    assert store.recent_ticks(limit=1)[0].id == third
    with pytest.raises(NotFoundError, match="no tick 99"):
        store.finish_tick(99, t, {}, [])
    with pytest.raises(ValueError, match="stage 'fetch'"):
        store.finish_tick(third, t, {"fetch": float("nan")}, [])


def test_journal_entry_with_result_round_trips(store: SqliteStore, values) -> None:
    node = ObjectRef("node", None, "node-a")
    plan = Plan(
        "f-2",
        "drain-node",
        1,
        ActionKind.CORDON,
        node,
        {"why": "DiskPressure"},
        Mode.APPROVE,
        values.T0,
        reason="disk pressure",
    )
    entry = store.journal_plan(plan, ActionStatus.PENDING_APPROVAL, at=values.T0)
    assert entry is not None
    assert (entry.target, entry.namespace, entry.reason) == (node, None, "disk pressure")
    t1 = values.T0 + timedelta(minutes=3)
    result = ActionResult(
        ActionKind.CORDON,
        node,
        ActionStatus.SUCCEEDED,
        t1,
        t1,
        False,
        message="cordoned",
        before={"unschedulable": False},
        after={"unschedulable": True},
    )
    done = store.journal_transition(
        entry.id, ActionStatus.SUCCEEDED, at=t1, result=result, verify_at=t1 + timedelta(minutes=5)
    )
    assert store.journal_get(entry.id) == done
    assert store.journal_by_key(plan.idempotency_key) == done
    assert (done.message, dict(done.before), dict(done.after)) == (
        "cordoned",
        {"unschedulable": False},
        {"unschedulable": True},
    )
    assert (done.created_at, done.updated_at, done.verify_at) == (
        values.T0,
        t1,
        t1 + timedelta(minutes=5),
    )
    assert (done.mode, done.action, dict(done.params)) == (
        Mode.APPROVE,
        ActionKind.CORDON,
        {"why": "DiskPressure"},
    )


def test_outbox_item_and_feedback_round_trip(store: SqliteStore, values) -> None:
    note = values.notification()
    assert store.enqueue("slack", note, at=values.T0)
    [item] = store.due_messages(values.T0)
    assert item.notification == note
    assert (item.channel, item.attempts, item.next_attempt_at) == ("slack", 0, values.T0)
    finding = values.finding()
    store.record_finding(finding)
    store.record_feedback(finding.id, FeedbackLabel.FALSE_POSITIVE, at=values.T0)
    store.record_feedback(finding.id, "true-positive", at=values.T0 + timedelta(1))  # type: ignore[arg-type]
    assert store.feedback_for(finding.anomaly.series) == [
        FeedbackLabel.FALSE_POSITIVE,
        FeedbackLabel.TRUE_POSITIVE,
    ]
    with pytest.raises(NotFoundError, match="feedback needs a known finding"):
        store.record_feedback("f-nope", FeedbackLabel.TRUE_POSITIVE, at=values.T0)


def test_verification_round_trip(store: SqliteStore, values) -> None:
    entry = store.journal_plan(values.plan(), ActionStatus.RUNNING, at=values.T0)
    assert entry is not None
    check = Verification(
        entry.id,
        False,
        values.T0 + timedelta(minutes=5),
        "p99 latency < 300 ms",
        observed="640 ms",
        message="still slow",
    )
    store.record_verification(check)
    assert store.verifications_for(entry.id) == [check]
    with pytest.raises(NotFoundError, match="action 404"):
        store.record_verification(Verification(404, True, values.T0, "x"))


def test_times_in_other_zones_come_back_as_utc(store: SqliteStore, values) -> None:
    cet = timezone(timedelta(hours=1))
    local = datetime(2026, 11, 23, 13, 0, tzinfo=cet)
    tick = store.start_tick(local)
    assert store.recent_ticks()[0].started_at == values.T0
    assert store.recent_ticks()[0].started_at.tzinfo == UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        store.start_tick(datetime(2026, 11, 23, 12, 0))
    assert tick == 1


def test_details_that_are_not_json_get_a_clear_error(store: SqliteStore, values) -> None:
    finding = Finding(
        FindingKind.ALERT, "fp-1", "x", "info", values.T0, values.T0, details={"obj": object()}
    )
    with pytest.raises(ValueError, match=r"finding f-.* details: object value"):
        store.record_finding(finding)
