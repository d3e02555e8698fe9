"""Builds the agent's parts from a ``Config``: store, metric source, detection, loop.

The composition root's one place that knows which implementation serves which port.
``vigil run`` uses Prometheus; ``vigil demo`` swaps in the twin and reuses the rest.
Heavy modules are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vigil.agent.loop import Loop, Stage
from vigil.agent.stages import (
    AnomalyEngine,
    DetectStage,
    FetchStage,
    PruneStage,
    RefitJob,
    RefitStage,
    SensitivityStage,
    ShadowStage,
)
from vigil.core import Clock, Cluster, FindingStore, MetricSource, Severity

if TYPE_CHECKING:
    from vigil.agent.config import Config
    from vigil.agent.prometheus import PrometheusSource
    from vigil.agent.scaling_stage import ScalingStage, ScalingStore
    from vigil.agent.store import SqliteStore
    from vigil.detectors.engine import DetectionEngine

__all__ = [
    "build_loop",
    "challenger_engine",
    "detect_stage",
    "detection_engine",
    "fetch_stage",
    "open_store",
    "prometheus_source",
    "refit_job",
    "scaling_stage",
]


def detection_engine(config: Config) -> DetectionEngine | None:
    """The detection engine for the ``detection`` group, or ``None`` when disabled."""
    if not config.detection.enabled:
        return None
    from vigil.detectors.engine import DetectionEngine

    return DetectionEngine(config.detection)


def challenger_engine(config: Config) -> DetectionEngine | None:
    """The shadow-mode engine for ``detection.shadow``, or ``None`` when none is set."""
    settings = config.detection.challenger_settings()
    if not config.detection.enabled or settings is None:
        return None
    from vigil.detectors.engine import DetectionEngine

    return DetectionEngine(settings)


def refit_job(engines: Sequence[AnomalyEngine | None], clock: Clock) -> RefitJob:
    """``vigil run``'s refit job over the given engines (``None`` entries skipped)."""
    return RefitJob([e for e in engines if e is not None], clock)


def open_store(
    config: Config, *, readonly: bool = False, path: Path | None = None, clock: Clock | None = None
) -> SqliteStore:
    """The SQLite store named by ``store.path`` (or ``path``)."""
    from vigil.agent.store import SqliteStore

    return SqliteStore.open(
        path or config.store.path,
        readonly=readonly,
        busy_timeout=config.store.busy_timeout,
        clock=clock,
    )


def prometheus_source(config: Config) -> PrometheusSource:
    """A ``PrometheusSource`` with the ``prometheus`` group's options."""
    from vigil.agent.prometheus import PrometheusSource

    p = config.prometheus
    return PrometheusSource(
        p.url,
        timeout=p.timeout,
        retries=p.retries,
        backoff=p.backoff,
        backoff_max=p.backoff_max,
        max_workers=p.max_workers,
        bearer_token=p.bearer_token.get_secret_value() if p.bearer_token else None,
        username=p.username,
        password=p.password.get_secret_value() if p.password else None,
        verify_tls=p.verify_tls,
        ca_file=p.ca_file,
        client_cert=p.client_cert,
        client_key=p.client_key,
        headers=p.headers,
        compression=p.compression,
        max_points_per_request=p.max_points_per_request,
        max_points=p.max_points,
    )


def fetch_stage(config: Config, source: MetricSource) -> FetchStage:
    """The fetch stage for the ``detection.queries`` over the ``prometheus`` look-back."""
    return FetchStage(
        source,
        config.detection.queries,
        lookback=config.prometheus.lookback,
        step=config.prometheus.step,
    )


def detect_stage(config: Config, engine: AnomalyEngine, store: FindingStore) -> DetectStage:
    """The detect stage with the ``detection`` group's severity and resolution settings."""
    return DetectStage(
        engine,
        store,
        min_severity=Severity(config.detection.min_severity),
        resolve_after=config.detection.resolve_after,
    )


def scaling_stage(
    config: Config, source: MetricSource, cluster: Cluster | None, store: ScalingStore
) -> ScalingStage | None:
    """The predictive scaling stage for the ``scaling`` group, or ``None`` when it is off
    or lists no workload. Without a cluster it still stores forecasts, and decides nothing."""
    group = config.scaling
    if not group.enabled or not group.workloads:
        return None
    from vigil.agent.scaling_stage import ScalingStage

    return ScalingStage(
        group,
        source,
        cluster,
        store,
        interval=config.agent.interval,
        step=config.prometheus.step,
        max_step_down_percent=config.guardrails.max_unavailable_percent,
    )


def build_loop(
    config: Config,
    *,
    source: MetricSource,
    store: SqliteStore,
    clock: Clock,
    engine: AnomalyEngine | None = None,
    extra_stages: Sequence[Stage] = (),
    challenger: AnomalyEngine | None = None,
    refit_in_tick: bool = True,
    cluster: Cluster | None = None,
) -> Loop:
    """The tick as configured: fetch → feedback → detect (when an engine is given) →
    scaling (when enabled with workloads) → extra stages (playbooks, notify) → shadow
    (with a ``challenger``) → refit → prune.

    ``challenger`` defaults to ``challenger_engine(config)`` (``detection.shadow``), so
    ``vigil demo`` runs shadow mode too; give it when something else needs it (the
    refit job). ``refit_in_tick=False`` leaves refits to a ``refit_job`` scheduled
    beside the tick (``vigil run``); the demo and backtest refit inside their ticks.
    ``cluster`` lets the scaling stage read workloads and HPAs (without it, it only
    stores forecasts).
    """
    from vigil.detectors.shadow import settings_fingerprint

    stages: list[Stage] = [fetch_stage(config, source)]
    detecting = engine is not None and config.detection.enabled
    if challenger is None and detecting:
        challenger = challenger_engine(config)
    engines = [e for e in (engine, challenger) if e is not None] if detecting else []
    if engine is not None and detecting:
        stages.append(SensitivityStage(store, engines))
        stages.append(detect_stage(config, engine, store))
    scaling = scaling_stage(config, source, cluster, store)
    if scaling is not None:
        stages.append(scaling)
    stages.extend(extra_stages)
    if challenger is not None and detecting:
        stages.append(
            ShadowStage(
                challenger,
                store,
                champion_config=settings_fingerprint(config.detection.model_settings()),
                challenger_config=settings_fingerprint(
                    config.detection.challenger_settings() or config.detection.model_settings()
                ),
                min_severity=Severity(config.detection.min_severity),
            )
        )
    if refit_in_tick and engines:
        stages.append(RefitStage(engines, limit=config.detection.max_refits_per_tick))
    stages.append(PruneStage(store, retention=config.store.retention_days * 86_400.0))
    return Loop(store, clock, stages)
