"""One tick of the agent: stages run in order over a shared ``TickContext``.

fetch → detect/forecast → findings → playbooks → guardrails → act → verify → notify.
Each stage is timed and its failure recorded in the store's tick row; the tick goes
on with the next stage (a stage that needs an earlier stage's output sees it empty).
This is the one top-level boundary where any exception is caught: it is recorded,
never swallowed silently. The clock is injected, so tests and the twin never sleep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from vigil.core import (
    Anomaly,
    Clock,
    Finding,
    Forecast,
    PermanentError,
    Plan,
    RetryableError,
    Series,
    TickLog,
)

__all__ = ["Loop", "Stage", "TickContext", "TickOutcome"]

log = logging.getLogger(__name__)


@dataclass
class TickContext:
    """What one tick has learnt so far; stages read earlier stages' results from it."""

    tick_id: int
    now: datetime
    series: list[Series] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    forecasts: list[Forecast] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)
    warming_up: dict[str, tuple[int, int]] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


class Stage(Protocol):
    """A step of the tick. Raise ``RetryableError``/``PermanentError`` to report failure."""

    name: str

    def run(self, ctx: TickContext) -> None: ...


@dataclass(frozen=True)
class TickOutcome:
    tick_id: int
    started_at: datetime
    durations: dict[str, float]
    errors: tuple[str, ...]
    context: TickContext

    @property
    def ok(self) -> bool:
        return not self.errors


class Loop:
    """Runs the stages once per ``tick()``; the scheduler decides when."""

    def __init__(self, store: TickLog, clock: Clock, stages: Sequence[Stage]) -> None:
        names = [s.name for s in stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        self._store = store
        self._clock = clock
        self._stages = tuple(stages)

    @property
    def stages(self) -> tuple[Stage, ...]:
        return self._stages

    def tick(self) -> TickOutcome:
        now = self._clock.now()
        tick_id = self._store.start_tick(now)
        ctx = TickContext(tick_id=tick_id, now=now)
        durations: dict[str, float] = {}
        errors: list[str] = []
        for stage in self._stages:
            began = time.perf_counter()
            try:
                stage.run(ctx)
            except RetryableError as exc:
                errors.append(f"{stage.name}: {exc} (retrying next tick)")
                log.warning("tick %d: stage %s failed, will retry: %s", tick_id, stage.name, exc)
            except PermanentError as exc:
                errors.append(f"{stage.name}: {exc}")
                log.error("tick %d: stage %s failed: %s", tick_id, stage.name, exc)
            except Exception as exc:  # the loop boundary: record, never crash the daemon
                errors.append(f"{stage.name}: unexpected {type(exc).__name__}: {exc}")
                log.exception("tick %d: stage %s crashed", tick_id, stage.name)
            finally:
                durations[stage.name] = time.perf_counter() - began
        self._store.finish_tick(tick_id, self._clock.now(), durations, errors)
        return TickOutcome(tick_id, now, durations, tuple(errors), ctx)
