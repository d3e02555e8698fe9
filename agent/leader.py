"""Leader election on a ``coordination.k8s.io/v1`` Lease, so two replicas never both act.

``vigil run`` (with ``leader.enabled``) makes a ``LeaderElector`` and runs it in a
thread (``LeaderElector.start``); the tick is gated on ``is_leader()``, while the HTTP
server keeps serving health and metrics on every replica.

The protocol is client-go's: the holder renews ``spec.renewTime`` every ``renew_every``
seconds; another replica takes the Lease only once the record it last saw has not
changed for ``lease_duration`` seconds *by its own clock* (so clock skew between nodes
does not matter), writing with the ``resourceVersion`` it read. The API server refuses
a write based on a stale read with 409, so when two replicas race for an expired
Lease exactly one wins. A leader that could not renew for ``renew_deadline`` seconds
(shorter than ``lease_duration``) stops calling itself leader before anyone else may
take over. ``release`` clears the holder on shutdown, so a successor need not wait.

Times come from an injected ``Clock``; tests drive expiry without sleeping. The
Kubernetes client is imported lazily (only here and in ``vigil.actions.kubernetes``).
RBAC: ``get``, ``create``, ``update`` on ``leases`` in the Lease's namespace
(``deploy/rbac.yaml``, Role ``vigil-leader``).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from vigil.core import Clock, ConfigError, NotFoundError, PermanentError, RetryableError, VigilError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "KubeLease",
    "LeaderElector",
    "LeaseConflict",
    "LeaseRecord",
    "LeaseStore",
    "kube_api_client",
    "pod_identity",
]

log = logging.getLogger(__name__)


class LeaseConflict(VigilError):
    """The Lease changed since it was read (HTTP 409): another replica wrote first."""


@dataclass(frozen=True)
class LeaseRecord:
    """The parts of a Lease the election reads and writes."""

    holder: str
    duration: float
    acquired: datetime | None
    renewed: datetime | None
    transitions: int = 0
    resource_version: str = ""


class LeaseStore(Protocol):
    """Where the Lease lives (``KubeLease`` on the API server)."""

    def get(self) -> LeaseRecord | None: ...

    def create(self, record: LeaseRecord) -> LeaseRecord: ...

    def update(self, record: LeaseRecord) -> LeaseRecord:
        """Write ``record`` if the Lease still has ``record.resource_version``."""
        ...


def _micro(when: datetime | None) -> str | None:
    # MicroTime: the API server wants exactly six fractional digits
    return None if when is None else when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


class KubeLease:
    """A Lease object on the API server, through the ``kubernetes`` client's transport.

    Requests go through ``ApiClient.param_serialize``/``call_api`` with JSON bodies
    rather than the typed ``CoordinationV1Api``: the typed models re-serialise times with
    ``isoformat()``, which drops the six fractional digits the API server's MicroTime
    requires whenever the microseconds are zero.
    """

    def __init__(self, api_client: Any, namespace: str, name: str) -> None:
        self._api = api_client
        self.namespace = namespace
        self.name = name
        self._collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"

    def _request(self, what: str, method: str, path: str, body: Any = None) -> LeaseRecord:
        from urllib3.exceptions import HTTPError

        where = f"lease {self.namespace}/{self.name}: {what}"
        try:
            request = self._api.param_serialize(
                method,
                path,
                body=body,
                header_params={"Content-Type": "application/json", "Accept": "application/json"},
                auth_settings=["BearerToken"],
            )
            response = self._api.call_api(*request)
            response.read()
        except HTTPError as exc:
            raise RetryableError(
                f"{where}: API server not reachable ({type(exc).__name__})", delay=2.0
            ) from exc
        status = int(response.status)
        try:
            doc = json.loads(response.data) if response.data else {}
        except ValueError:
            doc = {}
        if 200 <= status < 300:
            return self._record(doc)
        reason = str(doc.get("message") or doc.get("reason") or "no reason")[:300]
        if status == 409:
            raise LeaseConflict(f"{where}: changed by another replica (409)")
        if status == 404:
            raise NotFoundError(f"{where}: not found (is namespace {self.namespace} there?)")
        if status in (401, 403):
            raise PermanentError(
                f"{where}: forbidden ({status}); the ServiceAccount needs get, create and "
                f"update on leases in {self.namespace} (deploy/rbac.yaml, Role vigil-leader)"
            )
        if status == 429 or status >= 500:
            raise RetryableError(f"{where}: API server answered {status}: {reason}", delay=2.0)
        raise PermanentError(f"{where}: API server refused the request ({status}): {reason}")

    def _record(self, doc: Any) -> LeaseRecord:
        spec = doc.get("spec") or {}
        return LeaseRecord(
            holder=spec.get("holderIdentity") or "",
            duration=float(spec.get("leaseDurationSeconds") or 0),
            acquired=_parse(spec.get("acquireTime")),
            renewed=_parse(spec.get("renewTime")),
            transitions=int(spec.get("leaseTransitions") or 0),
            resource_version=str(doc["metadata"]["resourceVersion"]),
        )

    def _body(self, record: LeaseRecord) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if record.resource_version:
            meta["resourceVersion"] = record.resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": {
                "holderIdentity": record.holder or None,
                "leaseDurationSeconds": max(1, round(record.duration)),
                "acquireTime": _micro(record.acquired),
                "renewTime": _micro(record.renewed),
                "leaseTransitions": record.transitions,
            },
        }

    def get(self) -> LeaseRecord | None:
        try:
            return self._request("get", "GET", f"{self._collection}/{self.name}")
        except NotFoundError:
            return None

    def create(self, record: LeaseRecord) -> LeaseRecord:
        body = self._body(replace(record, resource_version=""))
        return self._request("create", "POST", self._collection, body)

    def update(self, record: LeaseRecord) -> LeaseRecord:
        if not record.resource_version:
            raise ValueError("a Lease update needs the resourceVersion it was read at")
        return self._request("update", "PUT", f"{self._collection}/{self.name}", self._body(record))


def kube_api_client(
    *, in_cluster: bool = False, kubeconfig: str | None = None, context: str | None = None
) -> Any:
    """An ``ApiClient`` with the pod's ServiceAccount (``in_cluster``) or a kubeconfig."""
    from kubernetes import config
    from kubernetes.client import ApiClient, Configuration

    cfg = Configuration()
    try:
        if in_cluster:
            config.load_incluster_config(client_configuration=cfg)
        else:
            config.load_kube_config(
                config_file=kubeconfig, context=context, client_configuration=cfg,
                persist_config=False,
            )  # fmt: skip
    except (config.ConfigException, OSError, ValueError, TypeError) as exc:
        source = "the in-cluster ServiceAccount" if in_cluster else f"kubeconfig {kubeconfig}"
        raise ConfigError(f"leader election: cannot load {source}: {exc}") from exc
    return ApiClient(cfg)


def pod_identity() -> str:
    """This replica's name in the election: ``$POD_NAME`` (downward API), else the host name."""
    import os
    import socket

    return os.environ.get("POD_NAME") or socket.gethostname()


class LeaderElector:
    """One replica's view of the election; ``step()`` is one acquire-or-renew attempt."""

    def __init__(
        self,
        lease: LeaseStore,
        identity: str,
        clock: Clock,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float | None = None,
        renew_every: float = 5.0,
    ) -> None:
        if not identity.strip():
            raise ValueError("leader election needs a non-empty identity (e.g. the pod name)")
        deadline = lease_duration * 2 / 3 if renew_deadline is None else renew_deadline
        if not 0 < renew_every < deadline <= lease_duration:
            raise ValueError(
                "leader election needs 0 < renew_every < renew_deadline <= lease_duration "
                f"(got {renew_every}, {deadline}, {lease_duration} seconds)"
            )
        self.lease = lease
        self.identity = identity
        self.clock = clock
        self.lease_duration = lease_duration
        self.renew_deadline = deadline
        self.renew_every = renew_every
        self._seen: LeaseRecord | None = None
        self._seen_at: datetime | None = None
        self._renewed_at: datetime | None = None
        self._lock = threading.Lock()

    def is_leader(self) -> bool:
        """True while this replica renewed within ``renew_deadline`` (by its clock)."""
        renewed = self._renewed_at
        if renewed is None:
            return False
        return self.clock.now() < renewed + timedelta(seconds=self.renew_deadline)

    def _observe(self, record: LeaseRecord | None, now: datetime) -> None:
        key = None if record is None else (record.holder, record.renewed, record.resource_version)
        seen = self._seen
        old = None if seen is None else (seen.holder, seen.renewed, seen.resource_version)
        if key != old or self._seen_at is None:
            self._seen_at = now
        self._seen = record

    def _expired(self, record: LeaseRecord, now: datetime) -> bool:
        if not record.holder:
            return True
        assert self._seen_at is not None
        duration = record.duration or self.lease_duration
        return now >= self._seen_at + timedelta(seconds=duration)

    def step(self) -> bool:
        """Acquire or renew once; returns whether this replica leads now."""
        with self._lock:
            return self._step()

    def _step(self) -> bool:
        now = self.clock.now()
        try:
            current = self.lease.get()
            if current is None:
                mine = LeaseRecord(self.identity, self.lease_duration, now, now, 0)
                self._won(self.lease.create(mine), now, "created")
                return True
            self._observe(current, now)
            if current.holder == self.identity:
                renewed = replace(current, renewed=now, duration=self.lease_duration)
                self._won(self.lease.update(renewed), now, "")
                return True
            if not self._expired(current, now):
                self._renewed_at = None
                return False
            taken = replace(
                current,
                holder=self.identity,
                duration=self.lease_duration,
                acquired=now,
                renewed=now,
                transitions=current.transitions + 1,
            )
            self._won(
                self.lease.update(taken), now, f"taken over from {current.holder or 'nobody'}"
            )
            return True
        except LeaseConflict as exc:
            log.info("%s: lost the race for the lease: %s", self.identity, exc)
            self._renewed_at = None  # whoever wrote first leads; we are not sure we do
            return False
        except (RetryableError, PermanentError) as exc:
            log.warning("%s: lease step failed: %s", self.identity, exc)
            return self.is_leader()

    def _won(self, record: LeaseRecord, now: datetime, how: str) -> None:
        was = self.is_leader()
        self._renewed_at = now
        self._seen = record
        self._seen_at = now
        if how or not was:
            log.info("%s: leading (%s)", self.identity, how or "renewed after a gap")

    def release(self) -> bool:
        """Give the Lease up (on shutdown) so another replica may take it at once."""
        with self._lock:
            if self._seen is None or self._seen.holder != self.identity:
                self._renewed_at = None
                return False
            try:
                current = self.lease.get()
                if current is None or current.holder != self.identity:
                    return False
                self.lease.update(replace(current, holder="", duration=1.0))
                return True
            except (LeaseConflict, RetryableError, PermanentError) as exc:
                log.warning("%s: could not release the lease: %s", self.identity, exc)
                return False
            finally:
                self._renewed_at = None

    def run(
        self,
        stop: threading.Event,
        *,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        """Step every ``renew_every`` seconds until ``stop``; then release."""
        leading = False
        while not stop.is_set():
            now_leading = self.step()
            if now_leading != leading and on_change is not None:
                on_change(now_leading)
            leading = now_leading
            # a follower polls at the same pace; a leader renews well before its deadline
            stop.wait(self.renew_every)
        self.release()
        if leading and on_change is not None:
            on_change(False)

    def start(
        self, stop: threading.Event, *, on_change: Callable[[bool], None] | None = None
    ) -> threading.Thread:
        """``run`` in a daemon thread named ``vigil-leader``."""
        thread = threading.Thread(
            target=self.run, args=(stop,), kwargs={"on_change": on_change},
            name="vigil-leader", daemon=True,
        )  # fmt: skip
        thread.start()
        return thread
