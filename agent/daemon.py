"""What ``vigil run`` starts beside the loop: notifiers, the notify stage, the delivery
thread, the HTTP server and leader election — built from the ``Config``.

The CLI's ``run`` command (``vigil.agent.cli``) calls, in order::

    clock = SystemClock(); metrics = Metrics(outbox_depth=store.outbox_depth, clock=clock)
    links = approval_links(cfg.server, public_url=…, ttl=…)
    stage, worker = build_notify(cfg, store, clock, routes=…, links=links, metrics=metrics)
    loop = build_loop(cfg, source=…, store=store, clock=clock, extra_stages=[…, stage])
    services = DaemonServices(cfg, store, clock, metrics, worker=worker, links=links)
    services.start()                      # HTTP thread, delivery thread, leader thread
    Runner(services.gated(loop.tick), cfg.agent.interval).run()
    services.stop()                       # releases the lease, stops the threads

Only the leader ticks (``gated``); every replica serves health and metrics.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from vigil.agent.approval_links import ApprovalLinks
from vigil.agent.delivery import DeliveryWorker
from vigil.agent.notifying import NotifyStage
from vigil.agent.routing import Route, Router
from vigil.agent.server import AgentServer

if TYPE_CHECKING:
    from vigil.agent.config import Config
    from vigil.agent.daemon_settings import NotifySettings, ServerSettings
    from vigil.agent.leader import LeaderElector
    from vigil.agent.loop import TickOutcome
    from vigil.agent.metrics import Metrics
    from vigil.agent.store import SqliteStore
    from vigil.core import Clock, Notifier

__all__ = ["DaemonServices", "approval_links", "build_notifiers", "build_notify"]

log = logging.getLogger(__name__)


def build_notifiers(notify: NotifySettings, *, clock: Clock) -> dict[str, Notifier]:
    """One ``Notifier`` per configured channel, named ``slack``, ``webhook`` and ``file``."""
    from vigil.actions.filesink import FileSink
    from vigil.actions.webhook import WebhookNotifier

    out: dict[str, Notifier] = {}
    slack = notify.slack
    if slack.token is not None:
        from vigil.actions.slack import SlackNotifier

        if not slack.channel:
            from vigil.core import ConfigError

            raise ConfigError("notify.slack.channel is required with notify.slack.token")
        out["slack"] = SlackNotifier(
            slack.token.get_secret_value(), slack.channel, base_url=slack.base_url,
            timeout=notify.timeout, clock=clock,
        )  # fmt: skip
    elif slack.webhook_url is not None:
        from vigil.actions.slack import SlackWebhookNotifier

        out["slack"] = SlackWebhookNotifier(
            slack.webhook_url.get_secret_value(), timeout=notify.timeout, clock=clock
        )
    if notify.webhook.url:
        secret = notify.webhook.secret.get_secret_value() if notify.webhook.secret else None
        out["webhook"] = WebhookNotifier(
            notify.webhook.url, secret=secret, timeout=notify.timeout, clock=clock
        )
    if notify.file is not None:
        out["file"] = FileSink(notify.file)
    return out


def approval_links(
    server: ServerSettings, *, public_url: str | None, ttl: float = 3600.0
) -> ApprovalLinks | None:
    """Link minting when ``server.approval_secret`` and a public URL are set, else ``None``."""
    if server.approval_secret is None or not public_url:
        return None
    return ApprovalLinks(server.approval_secret.get_secret_value(), public_url, ttl=ttl)


def build_notify(
    config: Config,
    store: SqliteStore,
    clock: Clock,
    *,
    routes: Sequence[Route] = (),
    links: ApprovalLinks | None = None,
    notifiers: dict[str, Notifier] | None = None,
    metrics: Metrics | None = None,
    base_delay: float = 5.0,
    max_delay: float = 600.0,
) -> tuple[NotifyStage, DeliveryWorker]:
    """The tick's ``notify`` stage and the delivery worker it (and a thread) drains with."""
    channels = build_notifiers(config.notify, clock=clock) if notifiers is None else notifiers
    worker = DeliveryWorker(
        store, channels, clock,
        rate_limit_per_minute=config.notify.rate_limit_per_minute,
        max_attempts=config.notify.max_attempts,
        base_delay=base_delay, max_delay=max_delay,
        observer=metrics.count_delivery if metrics is not None else None,
    )  # fmt: skip
    router = Router(routes, list(channels))
    stage = NotifyStage(store, router, worker=worker, links=links,
                        cluster=config.agent.cluster_name)  # fmt: skip
    return stage, worker


class DaemonServices:
    """Starts and stops the HTTP server, the delivery thread and leader election."""

    def __init__(
        self,
        config: Config,
        store: SqliteStore,
        clock: Clock,
        metrics: Metrics,
        *,
        worker: DeliveryWorker | None = None,
        links: ApprovalLinks | None = None,
        elector: LeaderElector | None = None,
        api_client: Any = None,
        port: int | None = None,
        poll_interval: float = 1.0,
        request_timeout: float = 10.0,
        ready_max_age: float | None = None,
        identity: str | None = None,
        renew_deadline: float | None = None,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.worker = worker
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        if elector is None and config.leader.enabled:
            elector = _elector(config, clock, api_client, identity, renew_deadline)
        self.elector = elector
        s = config.server
        self.server = AgentServer(
            store, metrics, clock, host=s.host, port=s.port if port is None else port,
            alertmanager_token=s.alertmanager_token.get_secret_value()
            if s.alertmanager_token else None,
            links=links, max_body_bytes=s.max_body_bytes,
            ready_max_age=ready_max_age or max(300.0, 5 * config.agent.interval),
            is_leader=self.is_leader, request_timeout=request_timeout,
        )  # fmt: skip
        self._poll = poll_interval
        self.port = 0

    def is_leader(self) -> bool:
        return self.elector is None or self.elector.is_leader()

    def start(self) -> int:
        """Start every thread; returns the HTTP port bound."""
        self.port = self.server.start()
        if self.worker is not None:
            self._threads.append(self.worker.start(self._stop, poll=self._poll))
        if self.elector is not None:
            self.metrics.leader.set(0)
            self._threads.append(self.elector.start(self._stop, on_change=self.metrics.leader.set))
        else:
            self.metrics.leader.set(1)
        return self.port

    def gated(self, tick: Callable[[], TickOutcome]) -> Callable[[], TickOutcome | None]:
        """``tick`` run only while this replica leads, its outcome fed to the metrics."""

        def run() -> TickOutcome | None:
            if not self.is_leader():
                log.debug("not the leader: skipping this tick")
                return None
            outcome = tick()
            self.metrics.observe_tick(outcome)
            return outcome

        return run

    def stop(self) -> None:
        """Stop the threads (the elector releases the lease), then the server."""
        self._stop.set()
        if self.worker is not None:
            self.worker.wake()
        for thread in self._threads:
            thread.join(10)
        self.server.stop()


def _elector(
    config: Config,
    clock: Clock,
    api_client: Any,
    identity: str | None,
    renew_deadline: float | None,
) -> LeaderElector:
    from vigil.agent.leader import KubeLease, LeaderElector, kube_api_client, pod_identity

    k = config.kubernetes
    client = api_client or kube_api_client(
        in_cluster=k.in_cluster,
        kubeconfig=str(k.kubeconfig.expanduser()) if k.kubeconfig else None,
        context=k.context,
    )
    lead = config.leader
    return LeaderElector(
        KubeLease(client, lead.namespace, lead.name), identity or pod_identity(), clock,
        lease_duration=lead.lease_duration, renew_every=lead.renew_every,
        renew_deadline=renew_deadline,
    )  # fmt: skip
