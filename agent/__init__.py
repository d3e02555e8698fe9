"""The composition root: configuration, the SQLite store, the Prometheus source, the loop,
the daemon and the CLI. The only package that imports the others (heavy ones lazily)."""
