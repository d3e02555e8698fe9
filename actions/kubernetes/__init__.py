"""The Kubernetes adapter: ``KubernetesCluster`` implements ``vigil.core.Cluster``.

Only this package imports the ``kubernetes`` client (import-linter), and only inside
functions (ruff TID253), so importing it costs nothing until a cluster is built.
docs/actions.md lists the actions, the API each uses and the RBAC each needs.
"""

from vigil.actions.kubernetes._errors import (
    ActionRejected,
    ApiServerUnavailable,
    ConflictPersisted,
    DisruptionBudgetBlocked,
    Forbidden,
    RateLimited,
    Unauthorized,
)
from vigil.actions.kubernetes.cluster import KubernetesCluster
from vigil.actions.kubernetes.settings import KubernetesSettings

__all__ = [
    "ActionRejected",
    "ApiServerUnavailable",
    "ConflictPersisted",
    "DisruptionBudgetBlocked",
    "Forbidden",
    "KubernetesCluster",
    "KubernetesSettings",
    "RateLimited",
    "Unauthorized",
]
