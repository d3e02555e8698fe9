"""What the NL layer needs from the world: read-only views, as small ``Protocol``s.

``StoreReader`` is the one thing asked of the agent's store: run one parameterised,
read-only SQL statement (the agent's ``SqliteStore.run_sql`` opens its connection with
``query_only``); ``ClusterReader`` is the read half of ``vigil.core.Cluster``. Metrics come
through ``vigil.core.MetricSource`` unchanged. The engine, the chat and the LLM tools hold
only these, so nothing in ``vigil.nlq`` can reach a write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from vigil.core import HpaInfo, NodeInfo, PodInfo, WorkloadInfo

__all__ = ["ClusterReader", "StoreReader"]


@runtime_checkable
class StoreReader(Protocol):
    """Read-only SQL over the store's tables (see docs/store.md for the schema)."""

    def run_sql(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]:
        """Rows of one ``SELECT`` with ``?`` parameters; must refuse anything that writes."""
        ...


@runtime_checkable
class ClusterReader(Protocol):
    """The reads of ``vigil.core.Cluster``; no mutating method is reachable from here."""

    def list_namespaces(self) -> list[str]: ...

    def list_workloads(self, namespace: str | None = None) -> list[WorkloadInfo]: ...

    def list_pods(
        self, namespace: str | None = None, selector: Mapping[str, str] | None = None
    ) -> list[PodInfo]: ...

    def list_nodes(self) -> list[NodeInfo]: ...

    def list_hpas(self, namespace: str | None = None) -> list[HpaInfo]: ...
