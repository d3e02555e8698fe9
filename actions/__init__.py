"""Effects on the world: the Kubernetes adapter (``Cluster``), the action catalogue and
the notifiers (Slack, webhook). Imports only ``vigil.core``."""
