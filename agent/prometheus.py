"""``PrometheusSource``: the ``MetricSource`` port over a real Prometheus HTTP API.

The composition root (``vigil.agent``) builds one from the ``prometheus`` config group
and hands it to the fetch stage, the NL layer and backtests. It is built on
``prometheus-api-client``: ``PrometheusConnect`` sets up the HTTP session (auth, TLS,
headers, connection pool); requests go through that session, and the answers are decoded
straight from the JSON bytes into numpy (``vigil.agent._prometheus_decode``) — the
library's DataFrame paths cost about twice the HTTP time on large answers.

Behaviour (details in ``docs/prometheus.md``):

* range queries are aligned to multiples of the step and returned on a regular grid,
  missing points (gaps, staleness) as NaN, never 0;
* ranges needing more than ``max_points_per_request`` points per series are split into
  chunks fetched in parallel (``max_workers``) and stitched;
* connection errors, timeouts, 429 and 5xx are retried with exponential backoff, then
  raise ``SourceUnavailable``; 4xx (bad PromQL) raise ``QueryError`` quoting the query
  and Prometheus' message; answers that are not the Prometheus API's raise
  ``SourceUnavailable`` saying what was wrong.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vigil.agent._prometheus_decode import (
    BadAnswer,
    FloatArray,
    Grid,
    IntArray,
    LabelKey,
    data_list,
    decode_instant,
    decode_matrix,
    error_detail,
    excerpt,
    format_ms,
    label_key,
    parse_json,
    paused_gc,
    retry_after_seconds,
    unwrap,
)
from vigil.agent._prometheus_options import (
    auth_headers,
    check_positive,
    check_url,
    client_cert_option,
    tls_verify,
)
from vigil.core import (
    ConfigError,
    PermanentError,
    QueryError,
    Sample,
    Series,
    SourceUnavailable,
    to_timestamp,
)

if TYPE_CHECKING:
    import requests

__all__ = ["PROMETHEUS_MAX_POINTS", "PrometheusSource"]

log = logging.getLogger(__name__)

#: Prometheus refuses a range query with more than 11,000 points per series.
PROMETHEUS_MAX_POINTS = 11_000
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Queries longer than this go in a POST body: proxies cap URL length around 8 KB.
_MAX_GET_QUERY = 4_000
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class PrometheusSource:
    """Metrics from a Prometheus server (or anything speaking its HTTP API: Thanos,
    Mimir, VictoriaMetrics). Thread-safe; one instance per server, closed with ``close``.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        backoff_max: float = 30.0,
        bearer_token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        verify_tls: bool = True,
        ca_file: str | Path | None = None,
        client_cert: str | Path | None = None,
        client_key: str | Path | None = None,
        headers: Mapping[str, str] | None = None,
        compression: bool = False,
        max_workers: int = 4,
        max_points_per_request: int = PROMETHEUS_MAX_POINTS,
        max_points: int = 1_000_000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Check the options and set up the HTTP session (no request is made yet).

        ``timeout`` (seconds) bounds each HTTP attempt and is passed to Prometheus so it
        stops evaluating too; ``retries`` more attempts follow a failed one after
        ``backoff`` × 2ⁿ seconds (at most ``backoff_max``; a ``Retry-After`` is honoured
        up to that cap). ``max_points`` per series bounds one ``query_range`` (a year at
        a 1 s step is almost certainly a mistake). ``compression`` asks for gzip answers:
        worth it only over slow links, since Prometheus gzips at roughly 15 MB/s on one
        core (2.2 s for a 37 MB answer) while a LAN moves the plain bytes in a fraction
        of that. ``sleep`` is injectable for tests.
        Raises ``ConfigError`` naming the option on a bad value.
        """
        self.url = check_url(url)
        check_positive("timeout", timeout)
        check_positive("backoff_max", backoff_max)
        if backoff < 0:
            raise ConfigError(f"prometheus.backoff must be >= 0 seconds, got {backoff}")
        if retries < 0:
            raise ConfigError(f"prometheus.retries must be >= 0, got {retries}")
        if max_workers < 1:
            raise ConfigError(f"prometheus.max_workers must be >= 1, got {max_workers}")
        if not 1 <= max_points_per_request <= PROMETHEUS_MAX_POINTS:
            raise ConfigError(
                f"prometheus.max_points_per_request must be in 1..{PROMETHEUS_MAX_POINTS} "
                f"(Prometheus' limit per series), got {max_points_per_request}"
            )
        if max_points < 1:
            raise ConfigError(f"prometheus.max_points must be >= 1, got {max_points}")
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.backoff_max = float(backoff_max)
        self.max_workers = int(max_workers)
        self.max_points_per_request = int(max_points_per_request)
        self.max_points = int(max_points)
        self._sleep = sleep
        self._headers = auth_headers(headers, bearer_token, username, password)
        if not compression and not any(k.lower() == "accept-encoding" for k in self._headers):
            self._headers["Accept-Encoding"] = "identity"
        auth = (username, password or "") if username is not None else None
        # Passed on every request: requests lets $REQUESTS_CA_BUNDLE override a session's
        # verify setting, which would silently ignore the configured ca_file.
        self._verify = verify = tls_verify(verify_tls, ca_file)
        self._cert = cert = client_cert_option(client_cert, client_key)
        if verify is False:
            log.warning("prometheus %s: TLS certificate verification is off", self.url)
        self._client = _connect(
            self.url,
            headers=self._headers,
            auth=auth,
            verify=verify,
            cert=cert,
            pool=self.max_workers,
        )
        self._session: requests.Session = self._client._session

    def __repr__(self) -> str:
        return f"PrometheusSource({self.url!r})"

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._session.close()

    def __enter__(self) -> PrometheusSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the port

    def query(self, promql: str, at: datetime | None = None) -> list[Sample]:
        """Instant query at ``at`` (default: Prometheus' now); a scalar gives one sample."""
        _check_query(promql)
        params = {"query": promql}
        if at is not None:
            params["time"] = format_ms(_ms(at, "at"))
        doc = self._get("/api/v1/query", params, promql)
        try:
            kind, result = unwrap(doc, ("vector", "scalar", "matrix", "string"))
            if kind in ("matrix", "string"):
                raise QueryError(
                    f"query {promql!r} returns a {kind}, not numbers: an instant query needs "
                    "an instant vector or scalar (drop the [range] selector, or use "
                    "query_range)",
                    query=promql,
                )
            rows = decode_instant(kind, result)
        except BadAnswer as exc:
            raise self._garbage("/api/v1/query", exc) from None
        samples = []
        for key, value, when in rows:
            metric, labels = _split_name(key, promql)
            samples.append(Sample(metric, labels, value, when))
        return sorted(samples, key=lambda s: s.id)

    def query_range(
        self, promql: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Series]:
        """Range query on the step grid: start and end floored to multiples of ``step``.

        Every returned series has one point per grid step from the aligned start to the
        aligned end; steps without a sample (gaps, stale series, series that begin or end
        inside the range) are NaN. Sorted by series id."""
        _check_query(promql)
        step_ms = round(step.total_seconds() * 1000)
        if step_ms < 1 or abs(step.total_seconds() * 1000 - step_ms) > 1e-6:
            raise QueryError(
                f"query_range {promql!r}: step must be a positive whole number of "
                f"milliseconds, got {step}",
                query=promql,
            )
        try:
            grid = Grid.aligned(_ms(start, "start"), _ms(end, "end"), step_ms)
        except ValueError as exc:
            raise QueryError(f"query_range {promql!r}: {exc}", query=promql) from None
        if grid.points > self.max_points:
            raise QueryError(
                f"query_range {promql!r}: {grid.points} points per series at step {step} "
                f"exceed prometheus.max_points={self.max_points}; use a larger step or a "
                "shorter range",
                query=promql,
            )
        chunks = grid.chunks(self.max_points_per_request)
        if len(chunks) == 1 or self.max_workers == 1:
            parts = [self._range_chunk(promql, c, grid) for c in chunks]
        else:
            pool = ThreadPoolExecutor(
                max_workers=min(self.max_workers, len(chunks)), thread_name_prefix="prom-chunk"
            )
            try:
                futures = [pool.submit(self._range_chunk, promql, c, grid) for c in chunks]
                parts = [f.result() for f in futures]
            finally:
                # On the first failure, chunks not yet started are dropped rather than
                # each retrying against a server that is down.
                pool.shutdown(wait=True, cancel_futures=True)
        return _stitch(parts, grid, promql)

    def series(self, selector: str, start: datetime, end: datetime) -> list[Mapping[str, str]]:
        """Label sets (``__name__`` included) of series matching ``selector`` in [start, end]."""
        _check_query(selector)
        start_ms, end_ms = _ms(start, "start"), _ms(end, "end")
        if end_ms < start_ms:
            raise QueryError(f"series {selector!r}: end is before start", query=selector)
        params = {"match[]": selector, "start": format_ms(start_ms), "end": format_ms(end_ms)}
        doc = self._get("/api/v1/series", params, selector)
        try:
            rows = data_list(doc)
            keys = sorted({label_key(row, f"data[{i}]") for i, row in enumerate(rows)})
        except BadAnswer as exc:
            raise self._garbage("/api/v1/series", exc) from None
        return [dict(key) for key in keys]

    def label_values(self, label: str, selector: str | None = None) -> list[str]:
        """Known values of ``label``, among series matching ``selector`` when given."""
        if not _LABEL_NAME.match(label):
            raise QueryError(
                f"label_values: {label!r} is not a label name (letters, digits and _, not "
                "starting with a digit)",
                query=label,
            )
        params = {}
        if selector is not None:
            _check_query(selector)
            params["match[]"] = selector
        path = f"/api/v1/label/{label}/values"
        doc = self._get(path, params, selector or label)
        try:
            values = data_list(doc)
            if not all(isinstance(v, str) for v in values):
                raise BadAnswer("label values must be strings")
        except BadAnswer as exc:
            raise self._garbage(path, exc) from None
        return sorted(values)

    # ------------------------------------------------------------------ internals

    def _range_chunk(
        self, promql: str, chunk: Grid, grid: Grid
    ) -> list[tuple[LabelKey, IntArray, FloatArray]]:
        params = {
            "query": promql,
            "start": format_ms(chunk.start_ms),
            "end": format_ms(chunk.end_ms),
            "step": format_ms(chunk.step_ms),
        }
        path = "/api/v1/query_range"
        body = self._call(path, params, promql)
        # Parsed, decoded and freed with the collector off: millions of short-lived lists.
        with paused_gc():
            doc = self._json(path, body)
            try:
                parts = list(decode_matrix(unwrap(doc, ("matrix",))[1], grid))
            except BadAnswer as exc:
                raise self._garbage(path, exc) from None
            finally:
                del doc  # freed here, while the collector is still off
        return parts

    def _get(self, path: str, params: dict[str, str], query: str) -> Any:
        """One API call with retries; the parsed JSON of its 2xx answer."""
        return self._json(path, self._call(path, params, query))

    def _json(self, path: str, body: bytes) -> Any:
        try:
            doc = parse_json(body)
        except ValueError:
            raise self._garbage(path, BadAnswer(f"the body is not JSON: {excerpt(body)}")) from None
        if isinstance(doc, dict) and doc.get("warnings"):
            # e.g. a Thanos store that did not answer: the data may be partial.
            log.warning("prometheus %s%s: %s", self.url, path, doc["warnings"])
        return doc

    def _call(self, path: str, params: dict[str, str], query: str) -> bytes:
        """One API call with retries; the body of a 2xx answer."""
        import requests

        url = self.url + path
        # Prometheus stops evaluating at its own timeout, freeing its CPU as well.
        params = {**params, "timeout": f"{self.timeout:g}s"} if "query" in params else params
        as_post = len(params.get("query", "")) > _MAX_GET_QUERY
        last = ""
        retry_after: float | None = None
        for attempt in range(self.retries + 1):
            wait = self._backoff(attempt)
            if retry_after is not None:
                # A server that says when to come back knows better than our backoff.
                wait = min(max(wait, retry_after), self.backoff_max)
                retry_after = None
            if attempt:
                log.warning(
                    "prometheus %s: attempt %d failed (%s); retrying in %.2fs",
                    url,
                    attempt,
                    last,
                    wait,
                )
                self._sleep(wait)
            try:
                resp = self._session.request(
                    "POST" if as_post else "GET",
                    url,
                    params=None if as_post else params,
                    data=params if as_post else None,
                    timeout=self.timeout,
                    verify=self._verify,
                    cert=self._cert,
                )
                body = resp.content
            except requests.exceptions.SSLError as exc:
                if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                    raise PermanentError(
                        f"Prometheus at {self.url}: TLS certificate verification failed "
                        f"({exc}); set prometheus.ca_file to the CA that signed it, or "
                        "verify_tls: false for a test server"
                    ) from exc
                last = f"TLS error: {exc}"
                continue
            except requests.exceptions.Timeout:
                last = f"no answer within {self.timeout:g}s (prometheus.timeout)"
                continue
            except requests.exceptions.ConnectionError as exc:
                last = f"connection failed: {_root_cause(exc)}"
                continue
            except (
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
            ) as exc:
                last = f"answer cut off or corrupt: {_root_cause(exc)}"
                continue
            except requests.exceptions.RequestException as exc:
                raise SourceUnavailable(
                    f"Prometheus at {self.url}: request to {path} failed: {exc}",
                    delay=self.backoff_max,
                ) from exc
            status = resp.status_code
            if 200 <= status < 300:
                return body
            detail = error_detail(body)
            if status in _RETRY_STATUS or status >= 500:
                last = f"HTTP {status}: {detail}"
                retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
                continue
            if 400 <= status < 500:
                raise QueryError(self._rejected(path, status, query, detail), query=query)
            last = f"unexpected HTTP {status}: {detail}"
        raise SourceUnavailable(
            f"Prometheus at {self.url} unavailable: {path} failed after {self.retries + 1} "
            f"attempt(s); last error: {last}",
            delay=self.backoff_max,
        )

    def _backoff(self, attempt: int) -> float:
        """Wait before ``attempt`` (0 = first try, no wait): backoff × 2^(attempt−1), capped."""
        if attempt == 0:
            return 0.0
        return float(min(self.backoff_max, self.backoff * 2 ** (attempt - 1)))

    def _rejected(self, path: str, status: int, query: str, detail: str) -> str:
        hint = {
            401: " (check prometheus.bearer_token or username/password)",
            403: " (the credentials lack permission to query)",
            404: " (is prometheus.url the API root, e.g. http://host:9090 without /api/v1?)",
        }.get(status, "")
        return (
            f"Prometheus at {self.url} rejected {path} for {query!r}: HTTP {status}{hint}: {detail}"
        )

    def _garbage(self, path: str, exc: BadAnswer) -> SourceUnavailable:
        return SourceUnavailable(
            f"Prometheus at {self.url}: {path} answered something that is not the Prometheus "
            f"HTTP API: {exc}. Is prometheus.url pointing at Prometheus (not its UI behind a "
            "login proxy)?",
            delay=self.backoff_max,
        )


# ---------------------------------------------------------------------- helpers


def _stitch(
    parts: Sequence[list[tuple[LabelKey, IntArray, FloatArray]]], grid: Grid, promql: str
) -> list[Series]:
    """Chunks → one NaN-filled grid per label set (a series may be absent from a chunk)."""
    size = grid.points
    merged: dict[LabelKey, FloatArray] = {}
    for part in parts:
        for key, idx, values in part:
            row = merged.get(key)
            if row is None:
                row = merged[key] = np.full(size, np.nan)
            row[idx] = values
    times = grid.timestamps()
    out = []
    for key, row in merged.items():
        metric, labels = _split_name(key, promql)
        out.append(Series(metric, labels, times, row))
    out.sort(key=lambda s: s.id)
    return out


def _split_name(key: LabelKey, promql: str) -> tuple[str, dict[str, str]]:
    """Metric name and the other labels; results without ``__name__`` (aggregations,
    functions) are named by the query itself, so their id stays meaningful."""
    labels = dict(key)
    name = labels.pop("__name__", "") or promql.strip()
    return name, labels


def _ms(when: datetime, name: str) -> int:
    try:
        return round(to_timestamp(when) * 1000)
    except ValueError as exc:
        raise QueryError(f"{name}: {exc}") from None


def _check_query(promql: str) -> None:
    if not isinstance(promql, str) or not promql.strip():
        raise QueryError(f"a PromQL query must be a non-empty string, got {promql!r}")


def _connect(
    url: str,
    *,
    headers: dict[str, str],
    auth: tuple[str, str] | None,
    verify: bool | str,
    cert: str | tuple[str, str] | None,
    pool: int,
) -> Any:
    """A ``PrometheusConnect`` whose session carries auth, TLS and a pool big enough for
    ``pool`` parallel fetches. Its own urllib3 retries are off: ``_call`` retries, so
    that every attempt is logged and the final error names the cause."""
    import requests
    from prometheus_api_client import PrometheusConnect
    from requests.adapters import HTTPAdapter, Retry

    session = requests.Session()
    session.verify = verify
    session.cert = cert
    session.auth = auth
    session.headers.update(headers)
    no_retry = Retry(total=0, read=False, redirect=False, raise_on_status=False)
    client = PrometheusConnect(url=url, headers=headers, session=session, retry=no_retry)
    adapter = HTTPAdapter(max_retries=no_retry, pool_connections=1, pool_maxsize=pool)
    session.mount(url, adapter)
    return client


def _root_cause(exc: BaseException) -> str:
    """The innermost cause's message: 'Connection refused' rather than urllib3's wrapping."""
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    inner = str(seen)
    return inner if inner and inner != str(exc) else str(exc)
