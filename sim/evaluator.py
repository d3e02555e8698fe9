"""Evaluates a parsed PromQL expression over the twin's history, vectorised over time.

Every node evaluates to a ``Scalar`` (one value per evaluation time) or a ``Vector``
(label sets × evaluation times, NaN where a series has no value). Semantics follow
Prometheus: 5-minute lookback for instant selectors (ended series and NaN samples are
stale), ``rate``/``increase`` with counter-reset correction and Prometheus'
extrapolation, ``histogram_quantile`` with linear interpolation inside the bucket.
Called by ``vigil.sim.metrics.SimMetrics``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vigil.core import QueryError
from vigil.sim.history import SeriesStore
from vigil.sim.promql import Aggregate, Binary, Call, Expr, Negate, Number, Selector

__all__ = ["LOOKBACK_S", "Scalar", "Vector", "evaluate"]

F64 = npt.NDArray[np.float64]
LOOKBACK_S = 300.0
_CHUNK_CELLS = 2_000_000  # samples per vectorised range-function call (16 MB of floats)


@dataclass
class Scalar:
    values: F64


@dataclass
class Vector:
    labels: list[dict[str, str]]
    values: F64  # [series, times]


class _Evaluator:
    def __init__(self, store: SeriesStore, times: F64, query: str) -> None:
        self.store = store
        self.times = times
        self.query = query

    def fail(self, why: str) -> QueryError:
        return QueryError(f"cannot evaluate query {self.query!r}: {why}", query=self.query)

    # ------------------------------------------------------------------ dispatch
    def eval(self, node: Expr) -> Scalar | Vector:
        if isinstance(node, Number):
            return Scalar(np.full(self.times.size, node.value))
        if isinstance(node, Selector):
            if node.range_s is not None:
                raise self.fail("a range vector cannot be the result of a query")
            return self.instant(node)
        if isinstance(node, Negate):
            inner = self.eval(node.expr)
            if isinstance(inner, Scalar):
                return Scalar(-inner.values)
            return Vector([_drop_name(lb) for lb in inner.labels], -inner.values)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Aggregate):
            return self.aggregate(node)
        return self.binary(node)

    # ------------------------------------------------------------------ selectors
    def _rows(self, t: F64) -> npt.NDArray[np.int64]:
        return np.floor((t - self.store.start) / self.store.step + 1e-9).astype(np.int64)

    def instant(self, sel: Selector) -> Vector:
        store = self.store
        idx = store.select(sel.name, sel.matchers)
        rows = self._rows(self.times)
        labels, out = [], []
        for i in idx:
            meta = store.series[i]
            end = store.end_row(meta)
            newest = np.minimum(rows, end)
            ok = newest >= meta.first_row
            if meta.last_row is not None:
                ok &= rows <= end  # a series that ended is stale after its last scrape
            ok &= self.times - (store.start + newest * store.step) <= LOOKBACK_S
            if not ok.any():
                continue
            vals = np.full(self.times.size, np.nan)
            vals[ok] = store.data[newest[ok], meta.col]
            if np.isnan(vals).all():
                continue
            labels.append(dict(meta.labels))
            out.append(vals)
        return _vector(labels, out, self.times.size)

    def window(self, sel: Selector) -> tuple[list[tuple[dict[str, str], F64]], F64]:
        """Samples in (t - range, t] per matching series, shaped [times, window] (NaN
        outside the window or the series' life), and their sample times."""
        store = self.store
        assert sel.range_s is not None
        width = math.ceil(sel.range_s / store.step) + 1
        hi = self._rows(self.times)
        lo = self._rows(self.times - sel.range_s) + 1
        grid = lo[:, None] + np.arange(width)[None, :]
        in_window = grid <= hi[:, None]
        found = []
        for i in store.select(sel.name, sel.matchers):
            meta = store.series[i]
            ok = in_window & (grid >= meta.first_row) & (grid <= store.end_row(meta))
            if not ok.any():
                continue
            vals = np.full(grid.shape, np.nan)
            vals[ok] = store.data[grid[ok], meta.col]
            found.append((dict(meta.labels), vals))
        return found, store.start + grid.astype(np.float64) * store.step

    def range_function(self, func: str, sel: Selector) -> Vector:
        """A range function (``rate``, ``*_over_time`` …) over every matching series at
        once: one vectorised call per chunk of series instead of one per series."""
        assert sel.range_s is not None
        found, times = self.window(sel)
        labels: list[dict[str, str]] = []
        rows: list[F64] = []
        per_chunk = max(1, _CHUNK_CELLS // max(times.size, 1))
        for lo in range(0, len(found), per_chunk):
            part = found[lo : lo + per_chunk]
            vals = np.stack([v for _, v in part])
            stamps = np.broadcast_to(times, vals.shape)
            res = _range_function(func, vals, stamps, self.times, sel.range_s)
            for (lb, _), row in zip(part, res, strict=True):
                if not np.isnan(row).all():
                    labels.append(_drop_name(lb))
                    rows.append(row)
        return _vector(labels, rows, self.times.size)

    # ------------------------------------------------------------------ functions
    def call(self, node: Call) -> Scalar | Vector:
        f = node.func
        if f == "histogram_quantile":
            q = self.scalar_arg(node.args[0], f)
            vec = self.vector_arg(node.args[1], f)
            return _histogram_quantile(q, vec)
        if node.args and isinstance(node.args[0], Selector) and node.args[0].range_s is not None:
            sel = node.args[0]
            assert sel.range_s is not None
            if f not in ("deriv", "predict_linear"):
                return self.range_function(f, sel)
            found, times = self.window(sel)
            horizon = self.scalar_arg(node.args[1], f) if f == "predict_linear" else None
            labels, rows = [], []
            for lb, vals in found:
                res = _linear(vals, times, self.times, horizon)
                if not np.isnan(res).all():
                    labels.append(_drop_name(lb))
                    rows.append(res)
            return _vector(labels, rows, self.times.size)
        vec = self.vector_arg(node.args[0], f)
        with np.errstate(all="ignore"):
            if f in ("clamp_min", "clamp_max"):
                bound = self.scalar_arg(node.args[1], f)
                op = np.maximum if f == "clamp_min" else np.minimum
                out = op(vec.values, bound[None, :])
            else:
                fn = {
                    "abs": np.abs,
                    "ceil": np.ceil,
                    "floor": np.floor,
                    "sqrt": np.sqrt,
                    "exp": np.exp,
                    "ln": np.log,
                    "log2": np.log2,
                    "log10": np.log10,
                }[f]
                out = fn(vec.values)
        return Vector([_drop_name(lb) for lb in vec.labels], out)

    def scalar_arg(self, node: Expr, func: str) -> F64:
        val = self.eval(node)
        if not isinstance(val, Scalar):
            raise self.fail(f"{func}() needs a number here, not an instant vector")
        return val.values

    def vector_arg(self, node: Expr, func: str) -> Vector:
        val = self.eval(node)
        if not isinstance(val, Vector):
            raise self.fail(f"{func}() needs an instant vector here, not a number")
        return val

    # ------------------------------------------------------------------ aggregation
    def aggregate(self, node: Aggregate) -> Vector:
        vec = self.vector_arg(node.expr, node.op)
        groups: dict[tuple[tuple[str, str], ...], list[int]] = {}
        for i, lb in enumerate(vec.labels):
            if node.without:
                key = tuple(
                    sorted(
                        (k, v) for k, v in lb.items() if k not in node.labels and k != "__name__"
                    )
                )
            else:
                key = tuple(sorted((k, lb[k]) for k in node.labels if lb.get(k, "") != ""))
            groups.setdefault(key, []).append(i)
        if node.op in ("topk", "bottomk"):
            assert node.param is not None
            k = self.scalar_arg(node.param, node.op)
            return _topk(vec, list(groups.values()), k, node.op == "bottomk")
        labels, out = [], []
        with np.errstate(all="ignore"):
            for key, members in groups.items():
                block = vec.values[members]
                valid = ~np.isnan(block)
                count = valid.sum(axis=0)
                if node.op == "sum":
                    res = np.where(valid, block, 0.0).sum(axis=0)
                elif node.op == "avg":
                    res = np.where(valid, block, 0.0).sum(axis=0) / count
                elif node.op == "max":
                    res = np.where(valid, block, -np.inf).max(axis=0)
                elif node.op == "min":
                    res = np.where(valid, block, np.inf).min(axis=0)
                else:  # count
                    res = count.astype(np.float64)
                res = np.where(count > 0, res, np.nan)
                labels.append(dict(key))
                out.append(res)
        return _vector(labels, out, self.times.size)

    # ------------------------------------------------------------------ binary
    def binary(self, node: Binary) -> Scalar | Vector:
        lhs, rhs = self.eval(node.lhs), self.eval(node.rhs)
        op = node.op
        comparison = op in ("==", "!=", ">", "<", ">=", "<=")
        if (
            comparison
            and not node.return_bool
            and isinstance(lhs, Scalar)
            and isinstance(rhs, Scalar)
        ):
            raise self.fail("comparisons between two numbers need the 'bool' modifier")
        if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
            return Scalar(_apply(op, lhs.values, rhs.values))
        if (node.on is not None or node.ignoring is not None) and not (
            isinstance(lhs, Vector) and isinstance(rhs, Vector)
        ):
            raise self.fail("on()/ignoring() apply only between two vectors")
        if isinstance(lhs, Vector) and isinstance(rhs, Scalar):
            return _vector_op(
                op, lhs, rhs.values[None, :], comparison, node.return_bool, keep_lhs=True
            )
        if isinstance(lhs, Scalar) and isinstance(rhs, Vector):
            return _vector_op(
                op, rhs, lhs.values[None, :], comparison, node.return_bool, keep_lhs=False
            )
        assert isinstance(lhs, Vector) and isinstance(rhs, Vector)
        return self.vector_vector(node, lhs, rhs, comparison)

    def vector_vector(self, node: Binary, lhs: Vector, rhs: Vector, comparison: bool) -> Vector:
        def signature(lb: dict[str, str]) -> tuple[tuple[str, str], ...]:
            if node.on is not None:
                return tuple(sorted((k, lb.get(k, "")) for k in node.on))
            skip = set(node.ignoring or ()) | {"__name__"}
            return tuple(sorted((k, v) for k, v in lb.items() if k not in skip))

        right: dict[tuple[tuple[str, str], ...], int] = {}
        for j, lb in enumerate(rhs.labels):
            sig = signature(lb)
            if sig in right:
                raise self.fail(
                    "many-to-many matching: several right-hand series share the labels "
                    f"{dict(sig)}; aggregate them first or use on()/ignoring()"
                )
            right[sig] = j
        seen: set[tuple[tuple[str, str], ...]] = set()
        labels, out = [], []
        for i, lb in enumerate(lhs.labels):
            sig = signature(lb)
            match = right.get(sig)
            if match is None:
                continue
            if sig in seen:
                raise self.fail(
                    f"several left-hand series share the matching labels {dict(sig)} "
                    "(group_left is not supported)"
                )
            seen.add(sig)
            a, b = lhs.values[i], rhs.values[match]
            res = _apply(node.op, a, b)
            if comparison and not node.return_bool:
                res = np.where(res == 1.0, a, np.nan)
            result = dict(lb)
            if node.on is not None:
                result = {k: v for k, v in lb.items() if k in node.on}
            elif node.ignoring:
                result = {k: v for k, v in lb.items() if k not in node.ignoring}
            if not comparison or node.return_bool:
                result = _drop_name(result)
            labels.append(result)
            out.append(res)
        return _vector(labels, out, self.times.size)


def _apply(op: str, a: F64, b: F64) -> F64:
    with np.errstate(all="ignore"):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return a / b
        if op == "%":
            return np.fmod(a, b)
        if op == "^":
            return np.power(a, b)
        cmp = {
            "==": np.equal,
            "!=": np.not_equal,
            ">": np.greater,
            "<": np.less,
            ">=": np.greater_equal,
            "<=": np.less_equal,
        }[op]
        res = cmp(a, b).astype(np.float64)
        return np.where(np.isnan(a) | np.isnan(b), np.nan, res)


def _vector_op(
    op: str, vec: Vector, scalar: F64, comparison: bool, return_bool: bool, *, keep_lhs: bool
) -> Vector:
    a = vec.values
    res = _apply(op, a, scalar) if keep_lhs else _apply(op, scalar, a)
    if comparison and not return_bool:
        return Vector([dict(lb) for lb in vec.labels], np.where(res == 1.0, a, np.nan))
    return Vector([_drop_name(lb) for lb in vec.labels], res)


def _drop_name(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k != "__name__"}


def _vector(labels: list[dict[str, str]], rows: list[F64], n: int) -> Vector:
    if not rows:
        return Vector([], np.empty((0, n)))
    return Vector(labels, np.vstack(rows))


def _first_last(
    valid: npt.NDArray[np.bool_],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    width = valid.shape[-1]
    first = np.argmax(valid, axis=-1)
    last = width - 1 - np.argmax(valid[..., ::-1], axis=-1)
    return first, last


def _take(arr: F64, idx: npt.NDArray[np.int64]) -> F64:
    return np.take_along_axis(arr, idx[..., None], axis=-1)[..., 0]


def _range_function(func: str, vals: F64, times: F64, evals: F64, range_s: float) -> F64:
    """Prometheus' range functions over [series, times, window] samples (NaN = none)."""
    valid = ~np.isnan(vals)
    count = valid.sum(axis=-1)
    with np.errstate(all="ignore"):
        if func.endswith("_over_time"):
            filled = np.where(valid, vals, 0.0)
            if func == "avg_over_time":
                res = filled.sum(axis=-1) / count
            elif func == "sum_over_time":
                res = filled.sum(axis=-1)
            elif func == "count_over_time":
                res = count.astype(np.float64)
            elif func == "max_over_time":
                res = np.where(valid, vals, -np.inf).max(axis=-1)
            elif func == "min_over_time":
                res = np.where(valid, vals, np.inf).min(axis=-1)
            else:  # last_over_time
                res = _take(vals, _first_last(valid)[1])
            return np.where(count > 0, res, np.nan)
        first, last = _first_last(valid)
        v_last, t_last = _take(vals, last), _take(times, last)
        if func == "irate":
            prev_valid = valid.copy()
            np.put_along_axis(prev_valid, last[..., None], False, axis=-1)
            before_last = _first_last(prev_valid)[1]
            v_prev, t_prev = _take(vals, before_last), _take(times, before_last)
            step_up = np.where(v_last < v_prev, v_last, v_last - v_prev)
            res = step_up / (t_last - t_prev)
            return np.where(count >= 2, res, np.nan)
        v_first, t_first = _take(vals, first), _take(times, first)
        counter = func in ("rate", "increase")
        delta = v_last - v_first
        if counter:
            earlier = vals[..., :-1]
            drops = vals[..., 1:] < earlier
            delta = delta + np.where(drops, earlier, 0.0).sum(axis=-1)
        range_start = (evals - range_s)[None, :]
        range_end = evals[None, :]
        sampled = t_last - t_first
        avg_gap = sampled / (count - 1)
        to_start = t_first - range_start
        to_end = range_end - t_last
        if counter:
            to_zero = np.where((delta > 0) & (v_first >= 0), sampled * (v_first / delta), np.inf)
            to_start = np.minimum(to_start, to_zero)
        threshold = avg_gap * 1.1
        span = (
            sampled
            + np.where(to_start < threshold, to_start, avg_gap / 2)
            + np.where(to_end < threshold, to_end, avg_gap / 2)
        )
        res = delta * (span / sampled)
        if func == "rate":
            res = res / range_s
        return np.where(count >= 2, res, np.nan)


def _linear(vals: F64, times: F64, evals: F64, horizon: F64 | None) -> F64:
    """Least-squares line through the window's samples, x relative to the evaluation
    time (as Prometheus): the slope (``deriv``) or its value ``horizon`` s ahead."""
    valid = ~np.isnan(vals)
    n = valid.sum(axis=-1).astype(np.float64)
    x = np.where(valid, times - evals[:, None], 0.0)
    y = np.where(valid, vals, 0.0)
    with np.errstate(all="ignore"):
        sx, sy = x.sum(axis=-1), y.sum(axis=-1)
        sxy, sxx = (x * y).sum(axis=-1), (x * x).sum(axis=-1)
        slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
        intercept = (sy - slope * sx) / n
        res = slope if horizon is None else intercept + slope * horizon
    return np.where(n >= 2, res, np.nan)


def _histogram_quantile(q: F64, vec: Vector) -> Vector:
    groups: dict[tuple[tuple[str, str], ...], list[tuple[float, int]]] = {}
    for i, lb in enumerate(vec.labels):
        if "le" not in lb:
            continue
        try:
            bound = float(lb["le"])
        except ValueError:
            continue
        key = tuple(sorted((k, v) for k, v in lb.items() if k not in ("le", "__name__")))
        groups.setdefault(key, []).append((bound, i))
    labels, out = [], []
    n = vec.values.shape[1]
    for key, members in groups.items():
        members.sort()
        bounds = np.array([b for b, _ in members])
        counts = vec.values[[i for _, i in members]]  # [buckets, times]
        counts = np.fmax.accumulate(counts, axis=0)  # Prometheus enforces monotonicity
        res = np.full(n, np.nan)
        total = counts[-1]
        ok = (bounds.size >= 2) & np.isinf(bounds[-1]) & ~np.isnan(counts).any(axis=0) & (total > 0)
        with np.errstate(all="ignore"):
            rank = q * total
            b = np.argmax(counts >= rank[None, :], axis=0)
            upper = bounds[b]
            lower = np.where(b > 0, bounds[np.maximum(b - 1, 0)], 0.0)
            below = np.where(b > 0, counts[np.maximum(b - 1, 0), np.arange(n)], 0.0)
            inside = counts[b, np.arange(n)] - below
            interp = lower + (upper - lower) * (rank - below) / inside
            last_finite = bounds[-2] if bounds.size >= 2 else np.nan
            interp = np.where(b == bounds.size - 1, last_finite, interp)
            interp = np.where((b == 0) & (bounds[0] <= 0), bounds[0], interp)
        res = np.where(ok, interp, np.nan)
        res = np.where(ok & (q < 0), -np.inf, res)
        res = np.where(ok & (q > 1), np.inf, res)
        labels.append(dict(key))
        out.append(res)
    return _vector(labels, out, n)


def _topk(vec: Vector, groups: list[list[int]], k: F64, bottom: bool) -> Vector:
    keep = np.zeros(vec.values.shape, dtype=bool)
    kk = np.floor(k).astype(np.int64)
    for members in groups:
        block = vec.values[members]
        key = np.where(np.isnan(block), np.inf, block if bottom else -block)
        order = np.argsort(key, axis=0, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(
            rank, order, np.arange(len(members))[:, None].repeat(block.shape[1], 1), axis=0
        )
        keep[members] = (rank < kk[None, :]) & ~np.isnan(block)
    values = np.where(keep, vec.values, np.nan)
    rows = [i for i in range(values.shape[0]) if keep[i].any()]
    return Vector(
        [dict(vec.labels[i]) for i in rows],
        values[rows] if rows else np.empty((0, values.shape[1])),
    )


def evaluate(store: SeriesStore, expr: Expr, times: F64, query: str) -> Scalar | Vector:
    """Evaluate ``expr`` at each of ``times`` (unix seconds)."""
    return _Evaluator(store, times, query).eval(expr)
