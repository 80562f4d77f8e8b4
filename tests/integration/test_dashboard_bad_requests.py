"""Bad requests get a 4xx JSON error and the server keeps serving."""

from __future__ import annotations

import http.client
import socket
import time

import orjson
import pytest

from dashboard_fixtures import get, monitored_cluster, raw_exchange
from raftctl import DashboardServer

SEED = 77


@pytest.fixture(scope="module")
def server():
    _, collector = monitored_cluster(SEED, warmup=3)
    with DashboardServer(collector, port=0) as srv:
        yield srv


@pytest.fixture(autouse=True)
def still_serving(server):
    yield
    status, _, _ = get(server.url, "/api/health")
    assert status == 200, "the server stopped serving after a bad request"


def assert_json_error(status, headers, body, expected):
    assert status == expected, body
    assert headers["content-type"] == "application/json"
    doc = orjson.loads(body)
    assert set(doc) == {"error", "status"} and doc["status"] == expected and doc["error"]
    return doc["error"]


def parse_raw(answer: bytes):
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


BAD_DURATIONS = [
    ("abc", "number"),
    ("-1", "greater than 0"),
    ("0", "greater than 0"),
    ("-0", "greater than 0"),
    ("nan", "finite"),
    ("NaN", "finite"),
    ("inf", "finite"),
    ("-Infinity", "finite"),
    ("1e400", "finite"),
    ("3601", "at most 3600"),  # retention 300 s: ten retentions, never less than an hour
    ("1e12", "at most"),
    ("", "empty"),
    ("0x10", "number"),
    ("60s", "number"),
    ("1" * 100, "too long"),
]


@pytest.mark.parametrize("endpoint", ["/api/metrics/history?", "/api/node?node_id=node1&"])
@pytest.mark.parametrize("value,message", BAD_DURATIONS)
def test_bad_duration_is_400(server, endpoint, value, message):
    error = assert_json_error(*get(server.url, f"{endpoint}duration={value}"), 400)
    assert message in error


def test_duration_twice_and_malformed_query_are_400(server):
    assert "more than once" in assert_json_error(*get(server.url, "/api/metrics/history?duration=5&duration=6"), 400)
    assert_json_error(*get(server.url, "/api/metrics/history?duration=%ff"), 400)
    flood = "&".join(f"p{i}=1" for i in range(200))
    assert_json_error(*get(server.url, f"/api/metrics/history?{flood}"), 400)


def test_node_id_missing_empty_or_unknown(server):
    assert "node_id is required" in assert_json_error(*get(server.url, "/api/node"), 400)
    assert_json_error(*get(server.url, "/api/node?node_id="), 400)
    assert_json_error(*get(server.url, "/api/node?duration=5"), 400)
    assert_json_error(*get(server.url, "/api/node?node_id=node1&node_id=node2"), 400)
    error = assert_json_error(*get(server.url, "/api/node?node_id=node9"), 404)
    assert "node9" in error and "node1" in error
    error = assert_json_error(*get(server.url, "/api/node?node_id=" + "x" * 5000), 404)
    assert len(error) < 300
    assert_json_error(*get(server.url, "/api/node?node_id=%3Cscript%3E"), 404)


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/health/", "/API/HEALTH", "/nope", "/api/summary.json", "/metrics/x"])
def test_unknown_path_is_404(server, path):
    assert_json_error(*get(server.url, path), 404)


TRAVERSALS = [
    "/static/../server.py",
    "/static/../../pyproject.toml",
    "/static/..%2fserver.py",
    "/static/%2e%2e/server.py",
    "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
    "/static/%252e%252e%252fserver.py",
    "/static/..\\server.py",
    "/static/..%5cserver.py",
    "/static/....//server.py",
    "/static/",
    "/static/.",
    "/static/.hidden",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/static/index.html/..",
    "/static/app.js%00.html",
    "/static/app.js/",
    "/static/../../../../../../etc/passwd",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_under_static_never_serves_other_files(server, path):
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("latin-1")
    status, headers, body = parse_raw(raw_exchange(server.url, request))
    assert status in (400, 404)
    assert_json_error(status, headers, body, status)
    assert b"import" not in body and b"root:" not in body


def test_a_fragment_in_the_target_is_ignored_by_every_route_alike(server):
    """Clients never send one, but a target with ``#...`` is routed as its path: the API and the
    static files alike (the static route read it back with the fragment and answered 404)."""
    for path in ("/api/health#frag", "/static/app.js#frag", "/static/style.css#x?y"):
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("latin-1")
        status, _headers, body = parse_raw(raw_exchange(server.url, request))
        assert status == 200, (path, status, body[:200])


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"])
def test_other_methods_get_405_with_allow(server, method):
    status, headers, body = get(server.url, "/api/summary", method=method)
    assert_json_error(status, headers, body, 405)
    assert headers["allow"] == "GET, HEAD"


def test_post_with_body_answers_405_and_the_connection_stays_usable(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("POST", "/api/health", body=b'{"x": 1}', headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 405 and response.getheader("Allow") == "GET, HEAD"
        response.read()
        conn.request("GET", "/api/health")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_huge_body_is_refused_without_reading_it(server):
    head = b"POST /api/summary HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"
    status, headers, body = parse_raw(raw_exchange(server.url, head + b"x" * 1000))
    assert_json_error(status, headers, body, 405)
    assert headers["connection"] == "close"


def test_over_long_url_is_414(server):
    status, headers, body = parse_raw(raw_exchange(server.url, b"GET /api/summary?" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n"))
    assert_json_error(status, headers, body, 414)


def test_over_long_headers_are_431(server):
    one_big = b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    assert_json_error(*parse_raw(raw_exchange(server.url, one_big)), 431)
    many = b"GET /api/health HTTP/1.1\r\n" + b"".join(b"X-H%d: 1\r\n" % i for i in range(150)) + b"\r\n"
    assert_json_error(*parse_raw(raw_exchange(server.url, many)), 431)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /api/health\r\n\r\n",
        b"GET /api/health HTTP/2.0\r\n\r\n",
        b"GET /api/health HTTP/1.1 extra\r\n\r\n",
        b"G(T /api/health HTTP/1.1\r\n\r\n",
        b"GET api/health HTTP/1.1\r\n\r\n",
        b"GET http://x/api/health HTTP/1.1\r\n\r\n",
        b"GET /api/health HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /api/health HTTP/1.1\r\n bad: fold\r\n\r\n",
        b"\xff\xfe\x00\x01\r\n\r\n",
    ],
)
def test_malformed_requests_are_400(server, request_bytes):
    assert_json_error(*parse_raw(raw_exchange(server.url, request_bytes)), 400)


def test_silent_and_slow_clients_do_not_block_others(server):
    host, port = "127.0.0.1", server.port
    silent = [socket.create_connection((host, port)) for _ in range(20)]
    partial = socket.create_connection((host, port))
    partial.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")  # never finishes its headers
    try:
        started = time.monotonic()
        for _ in range(5):
            assert get(server.url, "/api/summary", timeout=3)[0] == 200
        assert time.monotonic() - started < 3.0
    finally:
        for sock in silent + [partial]:
            sock.close()


def test_unexpected_error_is_a_json_500_and_serving_continues():
    cluster, collector = monitored_cluster(SEED, warmup=1)

    def broken(duration):
        raise RuntimeError("boom")

    collector.history = broken
    with DashboardServer(collector, port=0) as srv:
        error = assert_json_error(*get(srv.url, "/api/metrics/history"), 500)
        assert "boom" not in error  # internals are logged, not sent to clients
        assert get(srv.url, "/api/summary")[0] == 200


def test_bad_constructor_arguments_are_value_errors():
    _, collector = monitored_cluster(SEED, warmup=0)
    with pytest.raises(ValueError, match="collector"):
        DashboardServer(None)
    with pytest.raises(ValueError, match="port"):
        DashboardServer(collector, port=-1)
    with pytest.raises(ValueError, match="port"):
        DashboardServer(collector, port="8080")
    with pytest.raises(ValueError, match="host"):
        DashboardServer(collector, host="")
    with pytest.raises(ValueError, match="refresh_seconds"):
        DashboardServer(collector, refresh_seconds=float("nan"))


def test_a_since_beyond_any_sequence_is_a_400_not_a_200():
    from raftctl.dashboard.api import ApiError, parse_since

    assert parse_since([str(2**63 - 1)]) == 2**63 - 1
    with pytest.raises(ApiError) as err:
        parse_since(["107687461338192248832"])
    assert err.value.status == 400 and "at most" in str(err.value)
