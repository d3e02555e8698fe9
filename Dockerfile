# vigil: the daemon image. Slim Python base, non-root, the demo runnable inside:
#   docker build -t vigil .
#   docker run --rm vigil vigil demo          # the simulated cluster, no servers needed
#   docker run --rm vigil                     # vigil run (needs a config: see docs/deploy.md)
# How this file was checked without a container engine: docs/deploy.md ("Checking the image").

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# .dockerignore keeps .git, .venv, tests and caches out of the build context
COPY . /src
RUN python -m venv /opt/vigil && /opt/vigil/bin/pip install --no-cache-dir /src

FROM python:3.11-slim
# a fixed uid/gid, so the Deployment's runAsUser and fsGroup can name it
RUN groupadd --system --gid 10001 vigil \
 && useradd --system --uid 10001 --gid vigil --home-dir /var/lib/vigil --shell /usr/sbin/nologin vigil \
 && mkdir -p /var/lib/vigil \
 && chown vigil:vigil /var/lib/vigil
COPY --from=build /opt/vigil /opt/vigil
ENV PATH=/opt/vigil/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    VIGIL_STORE__PATH=/var/lib/vigil/vigil.db
USER 10001:10001
WORKDIR /var/lib/vigil
EXPOSE 8080
CMD ["vigil", "run"]
