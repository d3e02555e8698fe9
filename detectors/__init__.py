"""Time-series models: anomaly detectors and load forecasters (numpy, statsmodels,
scikit-learn). Pure: no I/O; imports only ``vigil.core``."""
