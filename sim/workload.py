"""The workload model: demand with real seasonality, and how pods turn it into signals.

``DemandModel`` gives each workload's request rate (req/s) at a time: the shape of the
bundled NYC-taxi trace (daily and weekly seasonality; ``traces/README.md``), aligned on
weekday and time of day, plus AR(1) noise from its own random stream (so an agent's
actions never change the demand). ``traffic`` turns demand, ready pods and per-pod
capacity into request counts per status code, a latency histogram, CPU and memory.
Called by ``vigil.sim.twin`` once per step, vectorised over workloads.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

import numpy as np
import numpy.typing as npt

__all__ = [
    "BUCKETS",
    "DemandModel",
    "Traffic",
    "WorkloadSpec",
    "load_trace",
    "lognormal_cdf",
    "traffic",
]

F64 = npt.NDArray[np.float64]
# Prometheus client libraries' default histogram buckets (seconds).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_TRACE_STEP = 1800.0  # nyc_taxi.csv has one row per 30 minutes
_TRACE_MONDAY = datetime(2014, 7, 7, tzinfo=UTC)  # first Monday in the trace
_TRACE_WEEKS = 16  # July to late October 2014: ordinary weeks before NAB's labelled anomalies


@dataclass(frozen=True)
class WorkloadSpec:
    """One simulated Deployment and its service behaviour (units in field names)."""

    namespace: str
    name: str
    replicas: int
    base_rps: float
    capacity_rps: float
    latency_s: float
    cpu_request: float
    memory_request: float
    memory_limit: float
    cpu_limit: float = 0.0
    latency_sigma: float = 0.45
    error_rate: float = 0.001
    memory_base: float = 0.0
    memory_per_rps: float = 0.0
    startup_s: float = 45.0
    http: bool = True
    method: str = "GET"
    hpa: tuple[int, int, float] | None = None
    deps: tuple[str, ...] = ()
    slo_p99_s: float = 1.0
    image: str = ""
    container: str = ""
    trace_week: int = 0

    def __post_init__(self) -> None:
        if self.replicas < 1 or self.base_rps < 0 or self.capacity_rps <= 0:
            raise ValueError(f"workload {self.namespace}/{self.name}: bad replicas/rps/capacity")
        if self.memory_request > self.memory_limit:
            raise ValueError(f"workload {self.namespace}/{self.name}: memory request > limit")

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def load_trace() -> F64:
    """The bundled trace's values, in file order (30-minute buckets)."""
    text = resources.files("vigil.sim").joinpath("traces/nyc_taxi.csv").read_text()
    rows = list(csv.reader(text.splitlines()))
    return np.array([float(r[1]) for r in rows[1:]], dtype=np.float64)


class DemandModel:
    """Request rate per workload: trace shape × base rate × (1 + AR(1) noise)."""

    def __init__(
        self,
        specs: list[WorkloadSpec],
        *,
        start: float,
        seed: int,
        noise: float = 0.06,
        noise_memory_s: float = 600.0,
    ) -> None:
        trace = load_trace()
        monday_offset = (_TRACE_MONDAY - datetime(2014, 7, 1, tzinfo=UTC)).total_seconds()
        first = int(monday_offset / _TRACE_STEP)
        usable = trace[first : first + _TRACE_WEEKS * 7 * 48]
        # Web traffic never falls as low as taxi demand at 4 am: keep a 20 % floor.
        self._shape = 0.2 + 0.8 * usable / float(np.median(usable))
        self._period = float(self._shape.size) * _TRACE_STEP
        self._xp = np.arange(self._shape.size + 1, dtype=np.float64) * _TRACE_STEP
        self._fp = np.append(self._shape, self._shape[0])
        start_dt = datetime.fromtimestamp(start, tz=UTC)
        week_start = start - (start_dt.weekday() * 86400 + start % 86400)
        self._week_start = week_start
        self._offsets = np.array(
            [(s.trace_week % _TRACE_WEEKS) * 7 * 86400.0 for s in specs], dtype=np.float64
        )
        self._base = np.array([s.base_rps for s in specs], dtype=np.float64)
        self._noise_sigma = noise
        self._noise_memory = noise_memory_s
        self._state = np.zeros(len(specs))
        self._rng = np.random.default_rng([seed, 1])

    def shape(self, t: float) -> F64:
        """The seasonal multiplier per workload at unix time ``t`` (no noise)."""
        pos = np.mod(t - self._week_start + self._offsets, self._period)
        return np.interp(pos, self._xp, self._fp)

    def step(self, t: float, dt: float) -> F64:
        """Advance the noise by ``dt`` seconds and return the demand (req/s) at ``t``."""
        phi = math.exp(-dt / self._noise_memory)
        draw = self._rng.standard_normal(self._state.size)
        self._state = phi * self._state + math.sqrt(1.0 - phi * phi) * self._noise_sigma * draw
        return self._base * self.shape(t) * np.maximum(0.05, 1.0 + self._state)


def _erf(x: F64) -> F64:
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf, scipy is too heavy here.
    sign = np.sign(x)
    ax = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * ax)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1.0 - poly * np.exp(-ax * ax))


def lognormal_cdf(x: F64, median: F64, sigma: F64) -> F64:
    """P(latency <= x) for a log-normal with ``median`` and log-sd ``sigma`` (broadcasting)."""
    z = (np.log(x) - np.log(median)) / (sigma * math.sqrt(2.0))
    return 0.5 * (1.0 + _erf(z))


@dataclass
class Traffic:
    """One step's HTTP outcome per workload: counts per code, bucket counts, latency sum."""

    ok: F64
    server_errors: F64
    rejected: F64
    buckets: F64  # [workloads, len(BUCKETS)] cumulative counts, +Inf bucket = total
    latency_sum: F64
    served_rps_per_pod: F64
    p99: F64


def traffic(
    demand: F64,
    ready: F64,
    *,
    capacity: F64,
    latency: F64,
    sigma: F64,
    error_rate: F64,
    bad_fraction: F64,
    bad_latency_factor: float,
    bad_error_rate: float,
    latency_add: F64,
    dt: float,
) -> Traffic:
    """Queueing-flavoured model: utilisation ρ inflates the median latency as 1+ρ/2(1-ρ);
    demand above capacity is rejected with 503; a bad revision's share of pods serves a
    slower, error-prone mixture component."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(ready > 0, demand / (ready * capacity), np.inf)
    served_frac = np.where(rho > 1.0, 1.0 / rho, 1.0)
    served_frac = np.where(ready > 0, served_frac, 0.0)
    total = demand * dt
    served = total * served_frac
    rho_c = np.minimum(rho, 0.97)
    median = latency * (1.0 + 0.5 * rho_c / (1.0 - rho_c)) + latency_add
    bad_median = median * bad_latency_factor
    errors = served * np.clip(error_rate + bad_fraction * bad_error_rate, 0.0, 1.0)
    bounds = np.array(BUCKETS)[None, :]
    cdf = (1.0 - bad_fraction[:, None]) * lognormal_cdf(
        bounds, median[:, None], sigma[:, None]
    ) + bad_fraction[:, None] * lognormal_cdf(bounds, bad_median[:, None], sigma[:, None])
    rejected = total - served
    # Rejected requests fail fast: they land in the first bucket.
    buckets = served[:, None] * cdf + rejected[:, None]
    mean = np.exp(sigma * sigma / 2.0)
    latency_sum = served * mean * ((1.0 - bad_fraction) * median + bad_fraction * bad_median)
    latency_sum = latency_sum + rejected * 0.001
    with np.errstate(divide="ignore", invalid="ignore"):
        per_pod = np.where(ready > 0, np.minimum(demand / ready, capacity), 0.0)
        share = buckets / np.maximum(total, 1e-12)[:, None]
    # p99 as the upper bound of the first bucket holding 99 % (what histogram_quantile sees).
    first = np.sum(share < 0.99, axis=1)
    bounds_inf = np.append(np.array(BUCKETS), np.inf)
    p99 = np.where(total > 0, bounds_inf[np.minimum(first, len(BUCKETS))], 0.0)
    return Traffic(
        ok=served - errors,
        server_errors=errors,
        rejected=rejected,
        buckets=buckets,
        latency_sum=latency_sum,
        served_rps_per_pod=per_pod,
        p99=p99,
    )
