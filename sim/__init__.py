"""The digital twin: a simulated cluster (``Cluster``) and its workload metrics
(``MetricSource``) for ``vigil demo``, backtests and tests. Imports only ``vigil.core``."""
