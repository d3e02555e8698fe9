"""Runs ``Loop.tick`` on a schedule with APScheduler 3.x until SIGTERM/SIGINT.

One tick at a time (``max_instances=1``), missed runs coalesced into one, and a stop
request lets the running tick finish before the process exits. Called by ``vigil run``,
which also schedules background ``Job``s beside the tick (the detection refit job).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

__all__ = ["Job", "Runner", "scheduler_job_defaults"]

log = logging.getLogger(__name__)


def scheduler_job_defaults(interval: float) -> dict[str, Any]:
    """No overlap, coalesce missed runs, and a late run is still run within one interval."""
    return {"coalesce": True, "max_instances": 1, "misfire_grace_time": max(1, int(interval))}


@dataclass(frozen=True)
class Job:
    """Work scheduled beside the tick every ``interval`` seconds, first after one interval;
    one run at a time, missed runs coalesced."""

    name: str
    run: Callable[[], object]
    interval: float

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError(f"job {self.name}: interval must be > 0 seconds, got {self.interval}")


class Runner:
    """Owns the scheduler thread; ``run()`` blocks until ``stop()`` or a signal."""

    def __init__(
        self,
        tick: Callable[[], object],
        interval: float,
        *,
        on_tick_error: Callable[[BaseException], None] | None = None,
        jobs: Sequence[Job] = (),
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        names = [j.name for j in jobs]
        if "tick" in names or len(set(names)) != len(names):
            raise ValueError(f"job names must be unique and not 'tick', got {names}")
        self._jobs = tuple(jobs)
        self._tick = tick
        self._interval = interval
        self._stop = threading.Event()
        self._on_error = on_tick_error
        self.ticks = 0

    def _job(self) -> None:
        try:
            self._tick()
        except BaseException as exc:  # the loop already records stage errors; this is a bug
            log.exception("tick crashed outside its stages")
            if self._on_error is not None:
                self._on_error(exc)
        finally:
            self.ticks += 1

    @staticmethod
    def _background(job: Job) -> Callable[[], None]:
        def run() -> None:
            try:
                job.run()
            except Exception:  # a job's own boundary: the next run tries again
                log.exception("job %s failed; it runs again in %.0f s", job.name, job.interval)

        return run

    def stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        if signum is not None:
            log.info(
                "received %s: finishing the current tick, then exiting", signal.Signals(signum).name
            )
        self._stop.set()

    def run(self, *, install_signals: bool = True, max_ticks: int | None = None) -> int:
        """Tick now and every ``interval`` seconds; return the number of ticks run."""
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        if install_signals:
            signal.signal(signal.SIGTERM, self.stop)
            signal.signal(signal.SIGINT, self.stop)
        scheduler = BackgroundScheduler(
            timezone=UTC, job_defaults=scheduler_job_defaults(self._interval)
        )
        scheduler.add_job(
            self._job,
            IntervalTrigger(seconds=self._interval, timezone=UTC),
            id="tick",
            next_run_time=datetime.now(UTC),
        )
        for job in self._jobs:
            scheduler.add_job(
                self._background(job),
                IntervalTrigger(seconds=job.interval, timezone=UTC),
                id=job.name,
                next_run_time=datetime.now(UTC) + timedelta(seconds=job.interval),
                **scheduler_job_defaults(job.interval),
            )
        scheduler.start()
        try:
            while not self._stop.wait(0.2):
                if max_ticks is not None and self.ticks >= max_ticks:
                    break
        finally:
            scheduler.shutdown(wait=True)  # lets a running tick finish
        log.info("stopped after %d ticks", self.ticks)
        return self.ticks
