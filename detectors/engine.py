"""``DetectionEngine``: what the agent calls each tick to turn series into anomalies.

``observe(series, now)`` takes the series the agent fetched (whole windows or just the
newest points: the engine keeps its own history), and returns a ``DetectionReport``:
the anomalies that page (ensemble score past the alarm level, k of n points), and the
series still warming up as ``id → (have, need)``. New series wait in a nursery until
they have ``min_points`` valid points, then are fitted as a new bank; existing banks
take one vectorised incremental step per tick and are refitted on a schedule (a few
banks per tick at most). Workloads with a flagged series go through the multivariate
IsolationForest stage within a time budget, and static SLO rules run on the series
they select. Pure: no I/O, time comes in as ``now``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from vigil.core import Anomaly, Series, Severity, to_datetime, to_timestamp
from vigil.detectors.bank import Bank
from vigil.detectors.base import FloatArray
from vigil.detectors.ensemble import Ensemble, EnsembleScores, calibrate, default_members
from vigil.detectors.settings import DetectionSettings
from vigil.detectors.slo import SloRule

__all__ = ["DetectionEngine", "DetectionReport", "guess_unit"]

log = logging.getLogger(__name__)

_SUFFIX_UNITS = (
    ("_seconds", "seconds"),
    ("_bytes", "bytes"),
    ("_ratio", "ratio"),
    ("_cores", "cores"),
)


def guess_unit(metric: str) -> str:
    """Unit from a Prometheus-style name suffix (``*_seconds`` → seconds), else ''."""
    for suffix, unit in _SUFFIX_UNITS:
        if metric.endswith(suffix):
            return unit
    return ""


@dataclass(frozen=True)
class DetectionReport:
    """One tick's outcome: paging anomalies, warming-up series and what was skipped."""

    at: datetime
    anomalies: list[Anomaly]
    warming_up: Mapping[str, tuple[int, int]]
    scored: int
    durations: Mapping[str, float] = field(default_factory=dict)
    multivariate_skipped: int = 0
    below_min_change: int = 0
    inside_expected: int = 0  # anomalies whose values stayed inside the primary band

    def warming_up_lines(self) -> list[str]:
        """``series: warming up, N of M points`` per warming-up series."""
        return [
            f"{sid}: warming up, {have} of {need} points"
            for sid, (have, need) in sorted(self.warming_up.items())
        ]


@dataclass
class _Pending:
    """A series in the nursery: what has been seen of it, not yet fitted."""

    metric: str
    labels: Mapping[str, str]
    timestamps: FloatArray
    values: FloatArray


@dataclass(frozen=True)
class _Meta:
    metric: str
    labels: Mapping[str, str]


class DetectionEngine:
    """Keeps fitted banks between ticks; ``observe`` once per tick.

    Thread-safe for the agent's pattern: the tick calls ``observe(..., refit=False)``
    while a separate job calls ``refit(now)``. A refit fits a copy of a bank's history
    without holding the engine's lock and swaps the new model in under it, so a tick
    never waits for a fit.
    """

    def __init__(self, settings: DetectionSettings | None = None) -> None:
        self.settings = settings or DetectionSettings()
        self._banks: list[Bank] = []
        self._where: dict[str, tuple[Bank, int]] = {}
        self._meta: dict[str, _Meta] = {}
        self._nursery: dict[str, _Pending] = {}
        self._sensitivity: dict[str, float] = {}
        self._last_seen: dict[str, float] = {}
        self._small = 0
        self._inside = 0
        self._rules = [
            SloRule(r.metric, r.kind, r.limit, dict(r.labels)) for r in self.settings.slo_rules
        ]
        # Reentrant: observe(refit=True) refits while it holds the lock.
        self._lock = threading.RLock()
        self._refitting = threading.Lock()

    # ------------------------------------------------------------------ feedback
    def set_sensitivity(self, series_id: str, factor: float) -> None:
        """Scale a series' raw scores by ``factor`` (> 1: more sensitive, < 1: fewer alarms)."""
        if not (factor > 0 and math.isfinite(factor)):
            raise ValueError(
                f"sensitivity for {series_id} must be a finite number > 0, got {factor}"
            )
        with self._lock:
            self._sensitivity[series_id] = float(factor)
            where = self._where.get(series_id)
            if where is not None:
                bank, row = where
                bank.ensemble.set_sensitivity([row], factor)

    def sensitivity(self, series_id: str) -> float:
        return self._sensitivity.get(series_id, 1.0)

    def make_ensemble(self) -> Ensemble:
        s = self.settings
        return Ensemble(
            default_members(s.min_points),
            alarm=s.alarm_level,
            persistence=(s.persistence_k, s.persistence_n),
        )

    # ------------------------------------------------------------------ the tick
    def observe(
        self, series: Sequence[Series], now: datetime, *, refit: bool = True
    ) -> DetectionReport:
        """Score the new points of ``series``; fit new series; refit due banks.

        With ``refit=False`` due refits wait for ``refit(now)``, which the agent runs
        as its own job so ticks stay short (a bank of 500 series refits in ~2.5 s).
        """
        with self._lock:
            return self._observe(series, now, refit=refit)

    def _observe(self, series: Sequence[Series], now: datetime, *, refit: bool) -> DetectionReport:
        now_ts = to_timestamp(now)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        per_bank: dict[int, list[tuple[int, Series]]] = {}
        for s in series:
            self._meta.setdefault(s.id, _Meta(s.metric, dict(s.labels)))
            if s.valid_count():
                valid_ts = s.timestamps[~np.isnan(s.values)]
                self._last_seen[s.id] = max(
                    self._last_seen.get(s.id, -math.inf), float(valid_ts[-1])
                )
            where = self._where.get(s.id)
            if where is None:
                self._to_nursery(s, now_ts)
            else:
                per_bank.setdefault(id(where[0]), []).append((where[1], s))
        timings["collect"] = time.perf_counter() - started

        started = time.perf_counter()
        anomalies: list[Anomaly] = []
        flagged: list[tuple[Bank, int]] = []
        scored = 0
        self._small = self._inside = 0
        for bank in self._banks:
            batch = per_bank.get(id(bank), [])
            new = self._new_columns(bank, batch, now_ts)
            if new is None:
                continue
            result = bank.advance(new)
            scored += int(np.count_nonzero(~np.isnan(result.score[:, -1])))
            found = self._anomalies(bank, new, result)
            anomalies.extend(found)
            flagged.extend((bank, bank.index[a.series]) for a in found)
        timings["score"] = time.perf_counter() - started

        started = time.perf_counter()
        skipped = self._multivariate(flagged, anomalies)
        timings["multivariate"] = time.perf_counter() - started
        anomalies.extend(self._slo(now_ts))

        started = time.perf_counter()
        self._graduate(now_ts)
        if refit:
            self._refit_due(now_ts, self.settings.max_refits_per_tick)
        timings["fit"] = time.perf_counter() - started
        return DetectionReport(
            at=now,
            anomalies=anomalies,
            warming_up=self._warming_up(),
            scored=scored,
            durations=timings,
            multivariate_skipped=skipped,
            below_min_change=self._small,
            inside_expected=self._inside,
        )

    # ------------------------------------------------------------------ internals
    def _to_nursery(self, s: Series, now_ts: float) -> None:
        keep = s.timestamps <= now_ts
        ts, vals = s.timestamps[keep], s.values[keep]
        pending = self._nursery.get(s.id)
        if pending is None:
            self._nursery[s.id] = _Pending(s.metric, dict(s.labels), ts.copy(), vals.copy())
            return
        newer = ts > (pending.timestamps[-1] if pending.timestamps.size else -math.inf)
        pending.timestamps = np.concatenate([pending.timestamps, ts[newer]])
        pending.values = np.concatenate([pending.values, vals[newer]])
        horizon = now_ts - self.settings.history
        recent = pending.timestamps >= horizon
        pending.timestamps, pending.values = pending.timestamps[recent], pending.values[recent]

    def _new_columns(
        self, bank: Bank, batch: list[tuple[int, Series]], now_ts: float
    ) -> FloatArray | None:
        """The grid columns after ``bank.last_time`` up to the newest point seen (≤ now).

        Driven by the data, not the clock: a scrape that lags ``now`` is picked up next
        tick instead of leaving a permanent gap.
        """
        newest = -math.inf
        for _, s in batch:
            if s.timestamps.size:
                newest = max(newest, min(float(s.timestamps[-1]), now_ts))
        due = round((newest - bank.last_time) / bank.step) if math.isfinite(newest) else 0
        if due < 1:
            return None
        k = min(due, bank.capacity)
        first = bank.last_time + bank.step * (due - k + 1)
        new = np.full((len(bank), k), np.nan)
        for row, s in batch:
            lo = int(np.searchsorted(s.timestamps, first - bank.step / 2))
            if lo >= s.timestamps.size:
                continue
            ts = s.timestamps[lo:]
            cols = np.rint((ts - first) / bank.step).astype(np.int64)
            ok = (cols >= 0) & (cols < k)
            new[row, cols[ok]] = s.values[lo:][ok]
        if k < due:
            bank.last_time += bank.step * (due - k)  # a gap longer than the history
        return new

    def _severity(self, score: float) -> Severity:
        return Severity.CRITICAL if score >= self.settings.critical_score else Severity.WARNING

    def _anomalies(self, bank: Bank, new: FloatArray, res: EnsembleScores) -> list[Anomaly]:
        k = new.shape[1]
        times = bank.times(k)
        out: list[Anomaly] = []
        alarm_any = res.alarm.any(axis=1)
        # Runs that ended in this tick close; runs still alarming carry on.
        ended = ~res.alarm[:, -1]
        for row in np.flatnonzero(alarm_any):
            cols = np.flatnonzero(res.alarm[row])
            end_col = int(cols[-1])
            if math.isnan(bank.run_start[row]):
                first_col = int(cols[0])
                back = (self.settings.persistence_k - 1) * bank.step
                bank.run_start[row] = times[first_col] - back
            # Report the point of this tick's run furthest outside the expected range: the
            # alarm can outlast the excursion by the persistence window, and "100 ms,
            # expected 92–166 ms" explains nothing to a person. (The run still counts when
            # every point is inside the primary member's band: the members agreeing on a
            # smaller departure is evidence too, and dropping such ticks would split one
            # incident into several findings.)
            vals, lows, highs = new[row, cols], res.low[row, cols], res.high[row, cols]
            beyond = np.fmax(vals - np.fmax(lows, highs), np.fmin(lows, highs) - vals)
            beyond = np.where(np.isfinite(beyond), beyond, -np.inf)
            pick = int(np.argmax(beyond))
            if not np.isfinite(beyond[pick]):
                continue
            self._inside += int(beyond[pick] <= 0)
            col = int(cols[pick])
            value = float(new[row, col])
            low, high = float(res.low[row, col]), float(res.high[row, col])
            score = float(np.nanmax(res.score[row, cols]))
            sid = bank.ids[row]
            meta = self._meta[sid]
            unit = self.settings.units.get(meta.metric, guess_unit(meta.metric))
            # The practical floor judges the run where it is at the tick, as a person
            # looking at it would: one whose newest alarming point is back near normal is
            # winding down, and an excursion already over by the tick does not page (on
            # the twin those short blips were most of the remaining false findings).
            now_value, now_expected = float(new[row, end_col]), float(res.expected[row, end_col])
            if not self._significant(now_value, now_expected, unit):
                self._small += 1
                continue
            out.append(
                Anomaly(
                    metric=meta.metric,
                    labels=meta.labels,
                    start=to_datetime(float(bank.run_start[row])),
                    end=to_datetime(float(times[end_col])),
                    score=min(max(score, 0.0), 1.0),
                    severity=self._severity(score),
                    value=value,
                    expected_low=min(low, high),
                    expected_high=max(low, high),
                    detector="ensemble",
                    detector_version=bank.ensemble.version,
                    unit=unit,
                    description=self.settings.descriptions.get(meta.metric, ""),
                )
            )
        bank.run_start = np.where(ended, np.nan, bank.run_start)
        return out

    def _significant(self, value: float, expected: float, unit: str) -> bool:
        """Whether ``value`` departs from ``expected`` enough to matter to a person.

        Statistics alone page on smooth metrics for a few percent; ``min_change``
        (relative) and ``min_change_by_unit`` (absolute) set the practical floor.
        """
        if not math.isfinite(expected):
            return True
        floor = max(
            self.settings.min_change * abs(expected),
            self.settings.min_change_by_unit.get(unit, 0.0),
        )
        return abs(value - expected) >= floor

    def _workload(self, sid: str) -> tuple[str, ...] | None:
        labels = self._meta[sid].labels
        keys = self.settings.workload_labels
        if not keys or any(k not in labels for k in keys):
            return None
        return tuple(labels[k] for k in keys)

    def _multivariate(self, flagged: list[tuple[Bank, int]], anomalies: list[Anomaly]) -> int:
        """IsolationForest on each flagged workload's metrics; returns workloads skipped."""
        budget = self.settings.multivariate_budget
        if budget <= 0 or not flagged:
            return 0
        from vigil.detectors.isolation import IsolationDetector

        groups: dict[tuple[str, ...], list[tuple[Bank, int]]] = {}
        for sid, (bank, row) in self._where.items():
            key = self._workload(sid)
            if key is not None:
                groups.setdefault(key, []).append((bank, row))
        todo = {self._workload(b.ids[r]) for b, r in flagged} - {None}
        deadline = time.perf_counter() + budget
        skipped = 0
        threshold = IsolationDetector().threshold
        verdicts: dict[tuple[str, ...], float] = {}
        for key in sorted(k for k in todo if k is not None):
            members = groups.get(key, [])
            if len(members) < 2:
                continue
            if time.perf_counter() > deadline:
                skipped += 1
                continue
            width = min(b.filled for b, _ in members)
            rows = np.stack([b.history(r)[-width:] for b, r in members])
            detector = IsolationDetector()
            detector.fit(rows[:, :-1], members[0][0].step)
            z = detector.update(rows[:, -1:]).score
            if np.isfinite(z).any():
                verdicts[key] = float(np.nanmax(z))
                threshold = detector.threshold
        for i, anomaly in enumerate(anomalies):
            key = self._workload(anomaly.series) if anomaly.series in self._meta else None
            if key in verdicts:
                joint = float(calibrate(np.array([verdicts[key]]), threshold)[0])
                if joint >= self.settings.alarm_level:
                    anomalies[i] = _with_joint(anomaly, joint)
        return skipped

    def _slo(self, now_ts: float) -> list[Anomaly]:
        out: list[Anomaly] = []
        for rule in self._rules:
            for sid, (bank, row) in self._where.items():
                meta = self._meta[sid]
                if not rule.matches(meta.metric, meta.labels):
                    continue
                hist = bank.history(row)[None, :]
                if hist.shape[1] < 2:
                    continue
                det = rule.detector()
                det.fit(hist[:, :-1], bank.step)
                res = det.update(hist[:, -1:])
                score = float(res.score[0, -1])
                if not (math.isfinite(score) and score >= det.threshold):
                    continue
                value = float(hist[0, -1])
                out.append(
                    Anomaly(
                        metric=meta.metric,
                        labels=meta.labels,
                        start=to_datetime(bank.last_time),
                        end=to_datetime(bank.last_time),
                        score=1.0,
                        severity=Severity.CRITICAL,
                        value=value if math.isfinite(value) else 0.0,
                        expected_low=float(res.low[0, -1]),
                        expected_high=float(res.high[0, -1]),
                        detector=det.name,
                        detector_version=det.version,
                        unit=self.settings.units.get(meta.metric, guess_unit(meta.metric)),
                        description=self.settings.descriptions.get(meta.metric, ""),
                    )
                )
        return out

    def _graduate(self, now_ts: float) -> None:
        """Fit the nursery series that have enough valid points as new banks, by step."""
        need = self.settings.min_points
        ready: dict[float, list[str]] = {}
        for sid, p in self._nursery.items():
            valid = ~np.isnan(p.values)
            if np.count_nonzero(valid) < need or p.timestamps.size < 2:
                continue
            step = float(np.median(np.diff(p.timestamps)))
            if step <= 0:
                continue
            ready.setdefault(round(step, 3), []).append(sid)
        for step, ids in ready.items():
            capacity = max(2, round(self.settings.history / step))
            for start in range(0, len(ids), self.settings.bank_size):
                chunk = ids[start : start + self.settings.bank_size]
                last = max(
                    math.floor(min(float(self._nursery[s].timestamps[-1]), now_ts) / step) * step
                    for s in chunk
                )
                hist = np.full((len(chunk), capacity), np.nan)
                grid0 = last - (capacity - 1) * step
                for row, sid in enumerate(chunk):
                    p = self._nursery.pop(sid)
                    cols = np.rint((p.timestamps - grid0) / step).astype(np.int64)
                    ok = (cols >= 0) & (cols < capacity)
                    hist[row, cols[ok]] = p.values[ok]
                first_valid = np.flatnonzero(~np.isnan(hist).all(axis=0))
                hist = hist[:, first_valid[0] :] if first_valid.size else hist
                bank = Bank(
                    chunk, step, last, hist, capacity=capacity, make_ensemble=self.make_ensemble
                )
                bank.fit(now_ts, np.array([self.sensitivity(s) for s in chunk]))
                self._banks.append(bank)
                for row, sid in enumerate(chunk):
                    self._where[sid] = (bank, row)

    def refit(self, now: datetime, *, limit: int | None = None) -> int:
        """Refit the banks due at ``now`` (oldest fit first), at most ``limit`` of them
        (every due bank when ``None``); returns how many were refitted or dropped.

        Safe to call from another thread than ``observe``: each bank is fitted on a copy
        of its history outside the lock, brought up to date with the points the ticks
        added meanwhile, and swapped in under the lock.
        """
        with self._refitting:
            return self._refit_due(to_timestamp(now), limit)

    def _refit_due(self, now_ts: float, limit: int | None) -> int:
        done = 0
        tried: set[int] = set()  # a bank whose swap was refused waits for the next call
        while limit is None or done < limit:
            with self._lock:
                due = [
                    b
                    for b in self._banks
                    if now_ts - b.fitted_at >= self.settings.refit_interval and id(b) not in tried
                ]
                if not due:
                    break
                bank = min(due, key=lambda b: b.fitted_at)
                stale = [
                    sid
                    for sid in bank.ids
                    if now_ts - self._last_seen.get(sid, -math.inf) > self.settings.stale_after
                ]
                if stale:
                    self._drop(bank, stale)
                    done += 1
                    continue
                # A copy: the ring keeps taking columns (and wraps) while this fits.
                history, last_time = bank.history().copy(), bank.last_time
                bank.fitted_at = now_ts  # claimed: not chosen again while it fits
                tried.add(id(bank))
            fresh = self.make_ensemble()
            fresh.fit(history, bank.step)
            with self._lock:
                self._swap(bank, fresh, last_time)
            done += 1
        return done

    def _swap(self, bank: Bank, fresh: Ensemble, fitted_until: float) -> None:
        """Install ``fresh`` (fitted up to ``fitted_until``) as ``bank``'s model, after
        feeding it the columns the bank took since; the k-of-n window carries over."""
        if bank not in self._banks:
            return  # dropped while it was fitting
        behind = round((bank.last_time - fitted_until) / bank.step)
        if behind >= bank.filled:
            bank.fitted_at = -math.inf  # a gap longer than the history: fit again
            return
        if behind > 0:
            fresh.update(bank.history()[:, -behind:])
        fresh.sensitivity = np.array([self.sensitivity(s) for s in bank.ids])
        fresh.carry_persistence(bank.ensemble)
        bank.ensemble = fresh

    def _drop(self, bank: Bank, stale: list[str]) -> None:
        """Forget stale series; the rest of the bank moves back to the nursery and refits."""
        self._banks.remove(bank)
        gone = set(stale)
        hist = bank.history()
        times = bank.times(hist.shape[1])
        for row, sid in enumerate(bank.ids):
            del self._where[sid]
            if sid in gone:
                self._meta.pop(sid, None)
                self._last_seen.pop(sid, None)
                continue
            meta = self._meta[sid]
            self._nursery[sid] = _Pending(meta.metric, meta.labels, times.copy(), hist[row].copy())
        log.info("dropped %d stale series from a bank of %d", len(stale), len(bank))

    def _warming_up(self) -> dict[str, tuple[int, int]]:
        need = self.settings.min_points
        out = {
            sid: (int(np.count_nonzero(~np.isnan(p.values))), need)
            for sid, p in self._nursery.items()
        }
        for bank in self._banks:
            not_ready = np.flatnonzero(~bank.ensemble.ready)
            if not_ready.size:
                # A fitted row can still wait for a member that needs more history
                # (the change-point member: days, to tell a daily swing from a shift).
                counts = bank.valid_counts()
                needed = bank.ensemble.needed
                for row in not_ready:
                    out[bank.ids[row]] = (int(counts[row]), int(max(need, needed[row])))
        return out


def _with_joint(anomaly: Anomaly, joint: float) -> Anomaly:
    """The anomaly, confirmed by the workload's joint (multivariate) view: one level louder."""
    from dataclasses import replace

    note = f"(workload metrics jointly unusual, isolation-forest {joint:.2f})"
    return replace(
        anomaly,
        score=max(anomaly.score, joint),
        severity=Severity.CRITICAL,
        description=f"{anomaly.description or anomaly.metric} {note}",
    )
