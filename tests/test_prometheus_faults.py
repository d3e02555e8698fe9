"""``PrometheusSource`` when things go wrong: nobody listening, 5xx, garbage, timeouts,
4xx; and what it sends: auth headers, TLS and client certificates.

The far end is a real HTTP(S) server on 127.0.0.1 answering canned responses, or a
port nobody listens on. Backoff waits go through an injected ``sleep`` that records
them, so retries cost no time.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from promfixture import free_port

from vigil.agent.prometheus import PrometheusSource
from vigil.core import (
    ConfigError,
    PermanentError,
    QueryError,
    RetryableError,
    SourceUnavailable,
)

pytestmark = pytest.mark.timeout(30)

T = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MATRIX_OK = {
    "status": "success",
    "data": {
        "resultType": "matrix",
        "result": [{"metric": {"__name__": "up"}, "values": [[T.timestamp(), "1"]]}],
    },
}


@dataclass
class Canned:
    """Answers in order (the last one repeats) and the requests that came in."""

    answers: list[tuple[int, dict[str, str], bytes]]
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    url: str = ""

    def answer(self, status: int, body: bytes | dict[str, object], **headers: str) -> Canned:
        raw = json.dumps(body).encode() if isinstance(body, dict) else body
        self.answers.append((status, headers, raw))
        return self


def _handler(canned: Canned) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            canned.seen.append((self.command, self.path, dict(self.headers)))
            n = min(len(canned.seen), len(canned.answers)) - 1
            status, headers, body = canned.answers[n]
            self.send_response(status)
            # "cut" promises more bytes than it sends, then drops the connection.
            cut = headers.get("cut") == "yes"
            self.send_header("Content-Length", str(len(body) * (3 if cut else 1)))
            self.close_connection = cut
            for key, val in headers.items():
                if key != "cut":
                    self.send_header(key.replace("_", "-"), val)
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _reply

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def _serve(canned: Canned, tls: ssl.SSLContext | None = None) -> Iterator[Canned]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(canned))
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls is not None else "http"
    canned.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield canned
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def canned() -> Iterator[Canned]:
    yield from _serve(Canned([]))


class Sleeps(list[float]):
    """An injected ``sleep`` that only records how long it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make(url: str, sleeps: Sleeps | None = None, **options: object) -> PrometheusSource:
    opts: dict[str, object] = {"timeout": 5, "retries": 3, "backoff": 0.5, **options}
    return PrometheusSource(url, sleep=sleeps if sleeps is not None else Sleeps(), **opts)  # type: ignore[arg-type]


def query_range(src: PrometheusSource, promql: str = "up") -> object:
    return src.query_range(promql, T, T + timedelta(hours=1), timedelta(minutes=1))


# ---------------------------------------------------------------- unavailable


def test_nobody_listening_is_source_unavailable_after_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    sleeps = Sleeps()
    with make(url, sleeps) as src, pytest.raises(SourceUnavailable) as err:
        query_range(src)
    message = str(err.value)
    assert url in message
    assert "4 attempt(s)" in message
    assert "connection failed" in message and "refused" in message.lower()
    assert sleeps == [0.5, 1.0, 2.0]  # exponential backoff between the 4 attempts
    assert isinstance(err.value, RetryableError)
    assert err.value.delay > 0


def test_backoff_is_capped() -> None:
    sleeps = Sleeps()
    url = f"http://127.0.0.1:{free_port()}"
    with (
        make(url, sleeps, retries=5, backoff=1.0, backoff_max=3.0) as src,
        pytest.raises(SourceUnavailable),
    ):
        src.label_values("job")
    assert sleeps == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_5xx_is_retried_then_source_unavailable(canned: Canned) -> None:
    canned.answer(500, {"status": "error", "errorType": "internal", "error": "disk on fire"})
    sleeps = Sleeps()
    with make(canned.url, sleeps, retries=2) as src, pytest.raises(SourceUnavailable) as err:
        query_range(src)
    assert len(canned.seen) == 3
    assert sleeps == [0.5, 1.0]
    message = str(err.value)
    assert canned.url in message
    assert "HTTP 500: internal: disk on fire" in message


def test_failing_chunked_query_stops_fetching_the_other_chunks(canned: Canned) -> None:
    canned.answer(503, b"overloaded")
    with (
        make(canned.url, retries=1, max_points_per_request=5, max_workers=2) as src,
        pytest.raises(SourceUnavailable, match="HTTP 503"),
    ):
        query_range(src)  # 61 points: 13 chunks of at most 5
    # Without cancelling, all 13 chunks × 2 attempts would be tried (26 requests).
    assert len(canned.seen) <= 8


def test_5xx_then_success_recovers(canned: Canned) -> None:
    canned.answer(502, b"<html>Bad Gateway</html>").answer(200, MATRIX_OK)
    with make(canned.url) as src:
        (series,) = query_range(src)  # type: ignore[misc]
    assert series.metric == "up"
    assert series.valid_count() == 1
    assert len(canned.seen) == 2


def test_connection_dropped_mid_answer_is_retried(canned: Canned) -> None:
    canned.answer(200, MATRIX_OK, cut="yes").answer(200, MATRIX_OK)
    sleeps = Sleeps()
    with make(canned.url, sleeps) as src:
        (series,) = query_range(src)  # type: ignore[misc]
    assert series.valid_count() == 1
    assert len(canned.seen) == 2 and sleeps == [0.5]


def test_connection_dropped_every_time_names_the_cause(canned: Canned) -> None:
    canned.answer(200, MATRIX_OK, cut="yes")
    with make(canned.url, retries=1) as src, pytest.raises(SourceUnavailable) as err:
        query_range(src)
    assert "answer cut off or corrupt" in str(err.value)
    assert "IncompleteRead" in str(err.value)


def test_partial_answer_warnings_are_logged(
    canned: Canned, caplog: pytest.LogCaptureFixture
) -> None:
    canned.answer(200, {**MATRIX_OK, "warnings": ["store 10.0.0.7:10901 did not answer"]})
    with make(canned.url) as src:
        (series,) = query_range(src)  # type: ignore[misc]
    assert series.valid_count() == 1
    assert "store 10.0.0.7:10901 did not answer" in caplog.text


def test_retry_after_is_honoured_up_to_the_cap(canned: Canned) -> None:
    canned.answer(429, b"slow down", Retry_After="7").answer(200, MATRIX_OK)
    sleeps = Sleeps()
    with make(canned.url, sleeps, backoff=0.5, backoff_max=5.0) as src:
        query_range(src)
    assert sleeps == [5.0]  # asked for 7 s, capped at backoff_max


def test_timeout_is_source_unavailable() -> None:
    # A socket that accepts connections (backlog) but never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with (
            make(url, timeout=0.2, retries=1) as src,
            pytest.raises(SourceUnavailable, match=r"no answer within 0.2s"),
        ):
            query_range(src)


# ---------------------------------------------------------------- garbage


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"<html><body>Please log in</body></html>", "not JSON: '<html><body>Please log in"),
        (b"", "not JSON: (empty body)"),
        (b"[1, 2, 3]", "the JSON is list"),
        (json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}),
         "resultType is 'vector'"),
        (json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"__name__": "up"}, "values": [[T.timestamp(), "one"]]}]}}),
         "result[0]: a sample value is not a number"),
        (json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"__name__": "up"}, "values": [[T.timestamp() + 17, "1"]]}]}}),
         "result[0]: points must be [time, \"value\"] pairs on the requested grid (time "
         "1795176017.0 is not on the step grid)"),
        (json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"__name__": "up"}, "values": [[T.timestamp(), "1"],
             [T.timestamp() + 180, "1"], [T.timestamp() + 120, "1"], [T.timestamp() + 240, "1"]
             ]}]}}),
         "times are not strictly increasing"),
        (json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"__name__": "up"}, "values": [[T.timestamp() - 60, "1"]]}]}}),
         "result[0]: points are outside the requested range (start 1795176000, end "
         "1795179600, step 60s)"),
        (json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"job": 3}, "values": []}]}}),
         "result[0]: label 'job'=3 is not a string pair"),
    ],
)  # fmt: skip
def test_garbage_is_a_clear_error(canned: Canned, body: str | bytes, what: str) -> None:
    canned.answer(200, body.encode() if isinstance(body, str) else body)
    sleeps = Sleeps()
    with make(canned.url, sleeps) as src, pytest.raises(SourceUnavailable) as err:
        query_range(src)
    message = str(err.value)
    assert what in message
    assert canned.url in message and "/api/v1/query_range" in message
    assert "not the Prometheus HTTP API" in message
    assert len(canned.seen) == 1 and sleeps == []  # the same garbage again would not help


def test_garbage_label_values(canned: Canned) -> None:
    canned.answer(200, {"status": "success", "data": {"instance": "a"}})
    with make(canned.url) as src, pytest.raises(SourceUnavailable, match="'data' is dict"):
        src.label_values("instance")


# ---------------------------------------------------------------- rejected


def test_4xx_is_a_query_error_without_retry(canned: Canned) -> None:
    canned.answer(
        422,
        {"status": "error", "errorType": "execution", "error": "too many samples"},
    )
    sleeps = Sleeps()
    with make(canned.url, sleeps) as src, pytest.raises(QueryError) as err:
        query_range(src, "sum(rate(http_requests_total[5m]))")
    assert isinstance(err.value, PermanentError)
    assert "'sum(rate(http_requests_total[5m]))'" in str(err.value)
    assert "HTTP 422" in str(err.value) and "execution: too many samples" in str(err.value)
    assert len(canned.seen) == 1 and sleeps == []


def test_401_says_to_check_credentials(canned: Canned) -> None:
    canned.answer(401, b"Unauthorized")
    with (
        make(canned.url) as src,
        pytest.raises(QueryError, match=r"check prometheus\.bearer_token"),
    ):
        src.query("up")


def test_bad_arguments_are_query_errors(canned: Canned) -> None:
    with make(canned.url) as src:
        with pytest.raises(QueryError, match="before its start"):
            src.query_range("up", T, T - timedelta(hours=1), timedelta(minutes=1))
        with pytest.raises(QueryError, match="whole number of milliseconds"):
            src.query_range("up", T, T, timedelta(microseconds=1500))
        with pytest.raises(QueryError, match="timezone-aware"):
            src.query_range("up", T.replace(tzinfo=None), T, timedelta(minutes=1))
        with pytest.raises(QueryError, match="not a label name"):
            src.label_values("../../admin")
        with pytest.raises(QueryError, match="non-empty string"):
            src.query("  ")
    assert canned.seen == []  # refused before asking


# ---------------------------------------------------------------- what is sent


def test_requests_carry_the_aligned_range_and_a_server_timeout(canned: Canned) -> None:
    canned.answer(200, MATRIX_OK)
    with make(canned.url, timeout=12.5) as src:
        src.query_range("up", T + timedelta(seconds=17), T + timedelta(minutes=9, seconds=5),
                        timedelta(minutes=3))  # fmt: skip
    method, path, headers = canned.seen[0]
    assert method == "GET"
    start = int(T.timestamp())
    assert f"start={start}&" in path and f"end={start + 540}&" in path and "step=180&" in path
    assert "timeout=12.5s" in path
    assert headers["Accept-Encoding"] == "identity"


def test_long_queries_are_posted(canned: Canned) -> None:
    canned.answer(200, MATRIX_OK)
    long_query = "up" + " or up" * 1000
    with make(canned.url) as src:
        query_range(src, long_query)
    assert canned.seen[0][0] == "POST"


def test_bearer_token_reaches_the_server(canned: Canned) -> None:
    canned.answer(200, {"status": "success", "data": ["a"]})
    with make(canned.url, bearer_token="s3cret-token", headers={"X-Scope-OrgID": "t1"}) as src:
        assert src.label_values("instance") == ["a"]
    headers = canned.seen[0][2]
    assert headers["Authorization"] == "Bearer s3cret-token"
    assert headers["X-Scope-OrgID"] == "t1"


def test_basic_auth_reaches_the_server(canned: Canned) -> None:
    canned.answer(200, {"status": "success", "data": []})
    with make(canned.url, username="vigil", password="pa:ss") as src:
        src.label_values("instance")
    expected = base64.b64encode(b"vigil:pa:ss").decode()
    assert canned.seen[0][2]["Authorization"] == f"Basic {expected}"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bearer_token": "t", "username": "u"}, "either bearer_token or username"),
        ({"password": "p"}, "password is set but prometheus.username is not"),
        ({"headers": {"authorization": "x"}, "bearer_token": "t"}, "keep one"),
        ({"ca_file": "/nonexistent/ca.pem"}, "ca_file '/nonexistent/ca.pem' is not a readable"),
        ({"client_key": "/tmp/k.pem"}, "client_key is set but client_cert is not"),
        ({"max_points_per_request": 20_000}, "Prometheus' limit per series"),
        ({"timeout": 0}, "timeout must be > 0"),
        ({"retries": -1}, "retries must be >= 0"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PrometheusSource("http://127.0.0.1:9090", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url", ["127.0.0.1:9090", "ftp://prom", "http://prom:9090/api/v1", "http://prom/api/v1/"]
)
def test_bad_url_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match=r"prometheus\.url"):
        PrometheusSource(url)


# ---------------------------------------------------------------- TLS


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", f"/CN={name}", "-addext",
         "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("pki")
    server_cert, server_key = _self_signed(directory, "server")
    client_cert, client_key = _self_signed(directory, "client")
    return {"server_cert": server_cert, "server_key": server_key,
            "client_cert": client_cert, "client_key": client_key}  # fmt: skip


@pytest.fixture
def tls_canned(pki: dict[str, Path]) -> Iterator[Canned]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["server_cert"], pki["server_key"])
    # Mutual TLS: only a client presenting the client certificate gets in.
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(pki["client_cert"])
    yield from _serve(Canned([]).answer(200, MATRIX_OK), tls=ctx)


def test_unknown_server_certificate_is_permanent(tls_canned: Canned) -> None:
    sleeps = Sleeps()
    with make(tls_canned.url, sleeps) as src, pytest.raises(PermanentError) as err:
        query_range(src)
    assert "certificate verification failed" in str(err.value)
    assert "prometheus.ca_file" in str(err.value)
    assert sleeps == []


def test_ca_file_and_client_certificate(
    tls_canned: Canned, pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests would let this override a session's CA setting; ca_file must win.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    with make(
        tls_canned.url,
        ca_file=pki["server_cert"],
        client_cert=pki["client_cert"],
        client_key=pki["client_key"],
    ) as src:
        (series,) = query_range(src)  # type: ignore[misc]
    assert series.metric == "up"


def test_without_client_certificate_mtls_server_refuses(
    tls_canned: Canned, pki: dict[str, Path]
) -> None:
    with (
        make(tls_canned.url, retries=1, ca_file=pki["server_cert"]) as src,
        pytest.raises(SourceUnavailable, match="after 2 attempt"),
    ):
        query_range(src)
