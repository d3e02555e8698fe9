"""A streaming short-horizon demand forecaster with learned, burst-aware upper bands.

Called by ``vigil.detectors.scaling.PredictiveScaler`` once per new demand point (the
agent's tick, or the replay). It keeps a few cheap predictors of the next points —
last value, last value moved by the daily shape, a smoothed level — and scores each
by its own rolling-origin errors as the data arrive (every forecast is checked
against the point it predicted, so nothing is fitted on the future). Per horizon it
uses the predictor with the lowest recent mean absolute error, and its upper band is
the empirical quantile of that predictor's recent errors: bursty series get wide
bands, calm ones narrow, and the band adapts as a series changes character. Above
that quantile the band extends towards a tail quantile, extrapolated from the errors'
median and quantile (robust to rare spikes), but only through the pod-sized slices
of demand that the errors say are likely enough to be needed (``unit``,
``slice_probability``): headroom is bought where it pays, not where a long thin tail
would make it cost a pod for each rare miss.
"""

from __future__ import annotations

import math

import numpy as np

from vigil.core import WarmingUp

__all__ = ["OnlineDemandForecaster"]

DAY_S = 86400.0
PREDICTORS = ("naive", "daily", "level", "cycle")
# the cycle detector looks at the last CYCLE_WINDOW points every CYCLE_EVERY points
CYCLE_WINDOW = 1024
CYCLE_EVERY = 32
# Errors are measured relative to the demand's local size (an hour's half-life), floored
# at 5 % of its long-run size so an idle stretch cannot make the band vanish.
LOCAL_HALF_LIFE_S = 3600.0
LOCAL_FLOOR = 0.05
# A point moves the local size at most as if it were LOCAL_CLIP x the local size: an
# isolated spike must not widen the band for the hour after it, while a sustained rise
# still doubles the local size within about six points.
LOCAL_CLIP = 3.0
# A slice of demand counts as likely only on the evidence of at least this many errors
# (the fast window holds 72: one or two of them cannot show a 2 % chance).
MIN_SLICE_ERRORS = 3


class OnlineDemandForecaster:
    """Next-points forecasts with an upper quantile, updated one observation at a time.

    ``lookahead_s`` sets how many future points are forecast once the sampling step is
    known; ``error_window`` is the number of recent errors kept per (predictor,
    horizon) for scoring and for the slow band, ``fast_window`` the most recent ones
    for the fast band (the band is the wider of the two, so a burst widens it at once).

    ``tail_quantile`` (optional, >= ``quantile``) is the highest quantile the band may
    reach, extrapolated from the errors' median and ``quantile`` as an exponential tail.
    With ``unit`` (demand one pod serves as planned) and ``slice_probability``, the band
    rises above the mean one pod-sized slice at a time, and only while the errors put
    at least ``slice_probability`` of the next point's demand in that slice.
    """

    def __init__(
        self,
        *,
        lookahead_s: float = 120.0,
        quantile: float = 0.9,
        error_window: int = 864,
        fast_window: int = 72,
        min_points: int = 12,
        max_horizon: int = 64,
        subject: str = "demand",
        tail_quantile: float | None = None,
        unit: float | None = None,
        slice_probability: float = 0.0,
    ) -> None:
        if lookahead_s < 0:
            raise ValueError(f"lookahead_s must be >= 0 seconds, got {lookahead_s}")
        if not 0.5 < quantile < 1:
            raise ValueError(f"quantile must be in (0.5, 1), got {quantile}")
        if error_window < min_points or min_points < 2:
            raise ValueError("need 2 <= min_points <= error_window")
        if tail_quantile is not None and not quantile <= tail_quantile < 1:
            raise ValueError(
                f"tail_quantile must be in [quantile ({quantile}), 1), got {tail_quantile}"
            )
        if unit is not None and not unit > 0:
            raise ValueError(f"unit must be > 0 (demand one pod serves), got {unit}")
        if not 0 <= slice_probability < 1:
            raise ValueError(f"slice_probability must be in [0, 1), got {slice_probability}")
        self.lookahead_s = lookahead_s
        self.quantile = quantile
        self.error_window = error_window
        self.fast_window = min(fast_window, error_window)
        self.min_points = min_points
        self.max_horizon = max_horizon
        self.subject = subject
        # exponential-tail extrapolation: Q(tail) = Q(q) + c * (Q(q) - Q(0.5))
        self._tail_factor = (
            0.0
            if tail_quantile is None
            else math.log((1 - quantile) / (1 - tail_quantile)) / math.log(0.5 / (1 - quantile))
        )
        self.unit = unit
        self.slice_probability = slice_probability
        self.step = 0.0
        self.horizon = 0
        self._first_times: list[float] = []
        self._last_t = -math.inf
        self._values: list[float] = []
        self._offset = 0  # index of _values[0] in the whole stream
        self._level = math.nan
        self._scale = math.nan
        self._local = math.nan
        self._upper = np.empty(0)
        self._mean = np.empty(0)
        self._chosen: list[str] = []
        self._cycle = 0
        self._stale = False
        self._latest = np.empty(0)

    def _start(self) -> None:
        """Fix step and horizon from the first points, then allocate the error rings."""
        self.step = float(np.median(np.diff(np.array(self._first_times))))
        need = math.ceil(self.lookahead_s / self.step) + 1
        self.horizon = int(min(max(need, 1), self.max_horizon))
        n_pred, h = len(PREDICTORS), self.horizon
        self._errors = np.zeros((n_pred, h, self.error_window))
        self._abs_sum = np.zeros((n_pred, h))
        self._resolved = np.zeros(h, dtype=np.int64)
        self._made = np.full((h + 1, n_pred, h), np.nan)  # forecasts by origin index

    @property
    def count(self) -> int:
        return self._offset + len(self._values)

    @property
    def last_value(self) -> float:
        return self._values[-1] if self._values else math.nan

    def observe(self, timestamp: float, value: float) -> None:
        """Take the next point (timestamps increasing); scores the forecasts it resolves."""
        if not math.isfinite(value):
            return  # a gap: keep the last state rather than learn from a hole
        if timestamp <= self._last_t:
            raise ValueError(
                f"{self.subject}: point at {timestamp} is not after the last one "
                f"({self._last_t}); feed points in time order"
            )
        self._last_t = timestamp
        self._values.append(value)
        if math.isnan(self._level):
            self._level, self._scale, self._local = value, abs(value), abs(value)
        else:
            self._level += 0.3 * (value - self._level)
            # a slow mean of |value| expresses errors relative to the series' size
            self._scale += 0.01 * (abs(value) - self._scale)
            if self.step > 0:
                # the local size (half-life LOCAL_HALF_LIFE_S): errors are relative to it,
                # so an idle stretch gets a narrow band and a burst a wide one at once
                alpha = 1.0 - 0.5 ** (self.step / LOCAL_HALF_LIFE_S)
                clipped = (
                    min(abs(value), LOCAL_CLIP * self._local) if self._local > 0 else abs(value)
                )
                self._local += alpha * (clipped - self._local)
            else:
                self._local = abs(value)
        if not self.horizon:
            self._first_times.append(timestamp)
            if len(self._first_times) < 4:
                return
            self._start()
        index = self.count - 1
        self._resolve(index, value)
        self._forecast_from(index)
        keep = 8 * self._period_or(0) + self.horizon + 2
        if len(self._values) > max(2 * keep, 4096):
            drop = len(self._values) - max(keep, 2048)
            del self._values[:drop]
            self._offset += drop

    def _period_or(self, default: int) -> int:
        period = round(DAY_S / self.step) if self.step > 0 else 0
        return period if period >= 2 else default

    def _error_scale(self) -> float:
        return max(self._local, LOCAL_FLOOR * self._scale, 1e-9)

    def _resolve(self, index: int, value: float) -> None:
        """Score every horizon's forecast that lands on this point, in one numpy pass
        (a Python loop over horizons was most of the agent's scaling time)."""
        scale = self._error_scale()
        h_count = self.horizon
        hs = np.arange(1, h_count + 1)
        origins = index - hs
        ok = origins >= 0
        if not ok.any():
            return
        hs, origins = hs[ok], origins[ok]
        made = self._made[origins % (h_count + 1), :, hs - 1]  # (horizons, predictors)
        ok = ~np.isnan(made[:, 0])
        if not ok.any():
            return
        col, made = hs[ok] - 1, made[ok]
        err = (value - made) / scale
        err = np.where(np.isnan(err), err[:, :1], err)  # a missing predictor scores as naive
        slots = self._resolved[col] % self.error_window
        old = self._errors[:, col, slots]  # (predictors, horizons)
        full = self._resolved[col] >= self.error_window
        self._abs_sum[:, col] += np.abs(err.T) - np.where(full, np.abs(old), 0.0)
        self._errors[:, col, slots] = err.T
        self._resolved[col] += 1

    def _predictions(self, index: int) -> np.ndarray:
        """Predictor × horizon forecasts from the point at ``index``."""
        h_count = self.horizon
        out = np.full((len(PREDICTORS), h_count), np.nan)
        local = index - self._offset
        last = self._values[local]
        out[0, :] = last
        out[2, :] = self._level
        out[1, :] = self._seasonal(local, self._period_or(0), 7)
        if index % CYCLE_EVERY == 0:
            self._cycle = self._detect_cycle(local)
        out[3, :] = self._seasonal(local, self._cycle, 3)
        return out

    def _seasonal(self, local: int, period: int, max_cycles: int) -> np.ndarray:
        """Last value moved as the series moved ``period`` points earlier (mean of cycles)."""
        h_count = self.horizon
        cycles = min(max_cycles, local // period) if period > h_count else 0
        if cycles < 1:
            return np.full(h_count, np.nan)
        vals = np.asarray(self._values[local - cycles * period : local + 1])
        shift = np.zeros(h_count)
        for k in range(1, cycles + 1):
            base = len(vals) - 1 - k * period  # the last point, k cycles ago
            shift += vals[base + 1 : base + 1 + h_count] - vals[base]
        moved: np.ndarray = np.maximum(0.0, vals[-1] + shift / cycles)
        return moved

    def _detect_cycle(self, local: int) -> int:
        """The dominant repeat length (points) of the recent past, or 0 without one.

        Batch jobs and cron-driven load repeat on periods that are not a day; the lag of
        the highest autocorrelation after it first turns negative, if above 0.5.
        """
        window = np.asarray(self._values[max(0, local + 1 - CYCLE_WINDOW) : local + 1])
        n = window.size
        if n < 64:
            return 0
        x = window - window.mean()
        power = np.abs(np.fft.rfft(x, 2 * n)) ** 2
        acf = np.fft.irfft(power)[: n // 3]
        if acf[0] <= 0:
            return 0
        acf = acf / acf[0]
        negative = np.flatnonzero(acf < 0)
        if not negative.size:
            return 0
        start = int(negative[0])
        if start >= acf.size - 1:
            return 0
        lag = start + int(np.argmax(acf[start:]))
        return lag if acf[lag] > 0.5 else 0

    def _forecast_from(self, index: int) -> None:
        preds = self._predictions(index)
        self._made[index % (self.horizon + 1)] = preds
        self._latest = preds
        self._stale = True  # bands are computed when asked for (warm-up never asks)

    def _bands(self) -> None:
        preds = self._latest
        h_count = self.horizon
        self._stale = False
        scale = self._error_scale()
        n = np.minimum(self._resolved, self.error_window)
        mae = self._abs_sum / np.maximum(n, 1)
        mae = np.where(np.isnan(preds), np.inf, mae)
        best = np.argmin(mae, axis=0)
        self._mean = preds[best, np.arange(h_count)]
        self._upper = np.full(h_count, np.nan)
        self._chosen = [PREDICTORS[b] for b in best.tolist()]
        for h in range(h_count):
            count = int(n[h])
            if count < self.min_points:
                continue
            b = int(best[h])
            ring = self._errors[b, h]
            errs = ring[:count] if count < self.error_window else ring
            slot = int(self._resolved[h] % self.error_window)
            recent_idx = (slot - 1 - np.arange(min(self.fast_window, count))) % self.error_window
            recent = ring[recent_idx]
            band = max(self._tail_band(errs), self._tail_band(recent), 0.0)
            self._upper[h] = self._sliced(
                self._mean[h], self._mean[h] + band * scale, scale, (errs, recent)
            )

    def _tail_band(self, errors: np.ndarray) -> float:
        """The ``quantile`` of ``errors``, extended to ``tail_quantile`` when one is set."""
        if not self._tail_factor:
            return float(np.quantile(errors, self.quantile))
        median, upper = np.quantile(errors, [0.5, self.quantile]).tolist()
        return float(upper + self._tail_factor * max(upper - median, 0.0))

    def _sliced(
        self, mean: float, upper: float, scale: float, samples: tuple[np.ndarray, ...]
    ) -> float:
        """``upper`` lowered to the last pod-sized slice above ``mean`` still worth a pod.

        The errors (slow and fast windows, the wider answer wins) give the next point's
        demand as ``mean + error * scale``; slice k is the demand pod k serves. Pods are
        added from the mean up while each slice holds at least ``slice_probability``.
        """
        unit = self.unit
        if unit is None or not self.slice_probability or upper <= mean:
            return upper
        first = max(math.ceil(mean / unit - 1e-9), 0)  # pods the mean itself needs
        slices = math.ceil(upper / unit - 1e-9) - first
        if slices <= 0:
            return upper
        pods = first
        for errors in samples:
            demand = mean + errors * scale
            idx = np.ceil(demand / unit - 1e-9).astype(np.int64) - first - 1
            idx = idx[(idx >= 0) & (idx < slices)]
            mass = np.bincount(idx, minlength=slices) / errors.size
            thin = np.flatnonzero(
                mass < max(self.slice_probability, MIN_SLICE_ERRORS / errors.size)
            )
            pods = max(pods, first + (int(thin[0]) if thin.size else slices))
        return min(upper, max(pods * unit, mean))

    def forecast(self, h: int) -> tuple[float, float, str]:
        """``(mean, upper, predictor)`` for the point ``h`` steps after the last one.

        Raises ``WarmingUp`` until enough forecasts have been checked to set a band.
        """
        if self.horizon and not 1 <= h <= self.horizon:
            raise ValueError(f"h must be in 1..{self.horizon}, got {h}")
        if self._stale:
            self._bands()
        if not self.horizon or math.isnan(self._upper[h - 1]):
            need = self.min_points + max(self.horizon, 1) + 4
            raise WarmingUp(self.subject, have=self.count, need=need)
        return float(self._mean[h - 1]), float(self._upper[h - 1]), self._chosen[h - 1]
