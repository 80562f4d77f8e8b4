"""The dashboard's HTTP/1.1 parser against RFC 9112, and query parameters held to the OpenAPI schema.

Every malformed request gets a 400 JSON error and then the connection is closed; requests pipelined
ahead of it are still answered; each refusal logs one line at most (rate limited), never a traceback.
"""

from __future__ import annotations

import logging
import socket

import orjson
import pytest
from dashboard_fixtures import get, monitored_cluster

from raftctl import DashboardServer
from raftctl.dashboard import server as server_module

SEED = 16
LOGGER = "raftctl.dashboard.server"


@pytest.fixture(scope="module")
def server():
    _, collector = monitored_cluster(SEED, warmup=2)
    with DashboardServer(collector, port=0) as srv:
        yield srv


def exchange(srv, data: bytes, timeout: float = 5.0) -> tuple[list[tuple[int, dict, bytes]], bool]:
    """Send raw bytes, read until the server closes -> ([(status, headers, body)], closed_by_server)."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        closed = False
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
    return split_responses(received), closed


def split_responses(data: bytes) -> list[tuple[int, dict, bytes]]:
    answers = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, f"truncated response head: {data[:200]!r}"
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers["content-length"])
        answers.append((int(lines[0].split(" ")[1]), headers, rest[:length]))
        data = rest[length:]
    return answers


def one_answer(srv, data: bytes) -> tuple[int, dict, bytes]:
    answers, _closed = exchange(srv, data)
    assert len(answers) == 1, answers
    return answers[0]


def assert_400_then_closed(srv, data: bytes, status: int = 400) -> str:
    answers, closed = exchange(srv, data)
    assert len(answers) == 1, f"{data[:120]!r} -> {answers}"
    code, headers, body = answers[0]
    assert code == status, (data[:120], body)
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    doc = orjson.loads(body)
    assert doc["status"] == status and doc["error"]
    assert closed, "the connection stayed open after a malformed request"
    return doc["error"]


def request(target: str = "/api/health", *headers: bytes, version: bytes = b"HTTP/1.1") -> bytes:
    lines = [b"GET " + target.encode("latin-1") + b" " + version, *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


HOST = b"Host: 127.0.0.1"


# ---- the reproducer from issue 16 ---------------------------------------------------------------


def test_issue_reproducer_superscript_two_content_length_gets_a_400_not_silence(server):
    # python3 -c "...s.sendall(b'GET /api/health HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n');print(s.recv(99))"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET /api/health HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n")
        first = sock.recv(99)
    assert first.startswith(b"HTTP/1.1 400 "), first
    # without a Host header too, but the framing error is the one named
    error = assert_400_then_closed(server, b"GET /api/health HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n")
    assert "Content-Length must be ASCII digits" in error


def test_a_valid_request_pipelined_ahead_of_a_bad_content_length_keeps_its_answer(server):
    data = request("/api/health", HOST) + request("/api/summary", HOST, b"Content-Length: \xb2")
    answers, closed = exchange(server, data)
    assert [status for status, _, _ in answers] == [200, 400]
    assert "ASCII digits" in orjson.loads(answers[1][2])["error"]
    assert closed


def test_pipelined_requests_before_a_malformed_one_are_answered_and_after_it_nothing(server):
    good = request("/api/health", HOST)
    bad = request("/api/health", HOST, b"X-Bad: a\x00b")
    answers, closed = exchange(server, good + good + bad + good)
    assert [status for status, _, _ in answers] == [200, 200, 400]
    assert answers[1][1].get("connection") != "close" and answers[2][1]["connection"] == "close"
    assert closed


# ---- Content-Length ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [b"\xb2", b"\xb9", b"\xb3", b"+5", b"-1", b"5 5", b"0x5", b"5.0", b"1_0",
                                   b"", b"\xd9\xa3", b"5,", b",5", b"5;x=1"])
def test_content_length_must_be_ascii_digits(server, value):
    error = assert_400_then_closed(server, request("/api/health", HOST, b"Content-Length: " + value))
    assert "Content-Length" in error


@pytest.mark.parametrize("lines", [
    (b"Content-Length: 5", b"Content-Length: 6"),
    (b"Content-Length: 5, 6",),
    (b"Content-Length: 0", b"Content-Length: 00001"),
])
def test_conflicting_content_lengths_are_refused(server, lines):
    error = assert_400_then_closed(server, request("/api/health", HOST, *lines) + b"hello")
    assert "conflicting" in error


@pytest.mark.parametrize("lines", [
    (b"Content-Length: 5", b"Content-Length: 5"),
    (b"Content-Length: 5, 5",),
    (b"Content-Length: 005",),
])
def test_equal_content_lengths_are_one_length_and_the_body_is_skipped(server, lines):
    data = request("/api/health", HOST, *lines).replace(b"GET", b"POST", 1) + b"hello" + request("/api/health", HOST)
    answers, _ = exchange(server, data + request("/api/health", HOST, b"Connection: close"))
    assert [status for status, _, _ in answers] == [405, 200, 200]


def test_huge_content_length_is_answered_then_closed_without_reading(server):
    answers, closed = exchange(server, request("/api/health", HOST, b"Content-Length: " + b"9" * 40) + b"x" * 100)
    assert [status for status, _, _ in answers] == [200] and answers[0][1]["connection"] == "close"
    assert closed


# ---- request targets -----------------------------------------------------------------------------


@pytest.mark.parametrize("target", [
    "http://127.0.0.1/api/health",
    "http://example.org:8080/api/health",
    "HTTP://EXAMPLE.ORG/api/health",
    "https://x/api/health",
])
def test_absolute_form_targets_are_accepted(server, target):
    status, _headers, body = one_answer(server, request(target, HOST, b"Connection: close"))
    assert status == 200, body
    assert orjson.loads(body)["status"] in ("HEALTHY", "DEGRADED")


def test_absolute_form_keeps_the_query_and_an_empty_path_is_the_root(server):
    status, _, body = one_answer(server, request("http://x/api/metrics/history?duration=5", HOST, b"Connection: close"))
    assert status == 200 and orjson.loads(body)["duration"] == 5
    status, headers, _ = one_answer(server, request("http://x", HOST, b"Connection: close"))
    assert status == 200 and headers["content-type"].startswith("text/html")
    status, _, body = one_answer(server, request("http://x?duration=abc", HOST, b"Connection: close"))
    assert status == 200  # "/" ignores the query


@pytest.mark.parametrize("target", ["ftp://x/api/health", "http:///api/health", "http://user:pw@x/api/health",
                                    "/api/he\x7falth", "/api/health\x01", "/api/\xe9"])
def test_bad_targets_are_400(server, target):
    assert_400_then_closed(server, request(target, HOST))


# ---- header fields -------------------------------------------------------------------------------


@pytest.mark.parametrize("line", [
    b"X-Test: a\x00b",
    b"X-Test: \x00",
    b"User-Agent: curl\x01",
    b"X-Test: a\x1bb",
    b"X-Test: a\x7fb",
    b"X-Test: a\rb",
    b"X-T\x00est: 1",
    b"X-Test : 1",
    b" X-Test: 1",
    b"\tX-Test: 1",
])
def test_control_characters_and_malformed_field_lines_are_refused(server, line):
    assert_400_then_closed(server, request("/api/health", HOST, line))


def test_tab_and_obs_text_in_a_value_are_allowed(server):
    status, _, _ = one_answer(server, request("/api/health", HOST, b"X-Test: a\tb \xe9", b"Connection: close"))
    assert status == 200


def test_http11_needs_exactly_one_host(server):
    assert "Host" in assert_400_then_closed(server, request("/api/health"))
    assert "Host" in assert_400_then_closed(server, request("/api/health", HOST, b"Host: other"))
    assert "Host" in assert_400_then_closed(server, request("/api/health", b"Host: a b"))
    assert one_answer(server, request("/api/health", b"Host:", b"Connection: close"))[0] == 200
    assert one_answer(server, request("/api/health", version=b"HTTP/1.0"))[0] == 200


def test_transfer_encoding_must_end_in_chunked(server):
    assert "chunked" in assert_400_then_closed(server, request("/api/health", HOST, b"Transfer-Encoding: gzip"))
    answers, closed = exchange(server, request("/api/health", HOST, b"Transfer-Encoding: gzip, chunked") + b"0\r\n\r\n")
    assert [status for status, _, _ in answers] == [200] and answers[0][1]["connection"] == "close" and closed


def test_connection_header_is_a_token_list(server):
    # "closed" is not "close": the connection stays open for a second request
    data = request("/api/health", HOST, b"Connection: closed") + request("/api/health", HOST, b"Connection: x, Close")
    answers, closed = exchange(server, data)
    assert [status for status, _, _ in answers] == [200, 200] and closed
    assert answers[0][1].get("connection") is None and answers[1][1]["connection"] == "close"


# ---- logging of refusals -------------------------------------------------------------------------


@pytest.fixture
def fresh_server():
    # its own server, so its log window starts empty
    _, collector = monitored_cluster(SEED, warmup=1)
    with DashboardServer(collector, port=0) as srv:
        yield srv


def test_each_refusal_logs_one_line_without_a_traceback(fresh_server, caplog):
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    bad = [request("/api/health", HOST, b"Content-Length: \xb2"), request("/api/health", HOST, b"X: \x00"),
           b"GARBAGE\r\n\r\n"]
    for data in bad:
        assert_400_then_closed(fresh_server, data)
    assert get(fresh_server.url, "/api/health")[0] == 200
    records = [r for r in caplog.records if r.name == LOGGER]
    warnings = [r.getMessage() for r in records if r.levelno >= logging.WARNING]
    assert len(warnings) == len(bad), warnings
    assert all("\n" not in line and "refused a request" in line for line in warnings), warnings
    assert all(r.exc_info is None for r in records)


def test_a_flood_of_bad_requests_is_rate_limited_in_the_log(fresh_server, caplog):
    caplog.set_level(logging.WARNING, logger=LOGGER)
    flood = 3 * server_module.LOG_LINES_PER_WINDOW
    for _ in range(flood):
        assert_400_then_closed(fresh_server, request("/api/health", HOST, b"X: \x01"))
    lines = [r for r in caplog.records if r.name == LOGGER]
    assert len(lines) == server_module.LOG_LINES_PER_WINDOW
    assert fresh_server.stats()["requests_refused"] == flood


# ---- query parameters held to the OpenAPI schema (issue 14 part 8) -------------------------------


@pytest.mark.parametrize("value", ["+8", "1_0", "%208", "8%20", "%EF%BC%98", "%D9%A3", "1e", ".5", "5.", "0b1",
                                   "%2B8", "8%0A"])
@pytest.mark.parametrize("endpoint", ["/api/metrics/history?", "/api/node?node_id=node1&"])
def test_duration_must_be_a_plain_ascii_number(server, endpoint, value):
    status, _, body = get(server.url, f"{endpoint}duration={value}")
    assert status == 400, (value, body)
    assert "duration" in orjson.loads(body)["error"]


@pytest.mark.parametrize("value,applied", [("8", 8), ("0.5", 0.5), ("1e1", 10), ("1E%2B1", 10), ("007", 7),
                                           ("2.5e-1", 0.25)])
def test_plain_numbers_are_still_accepted(server, value, applied):
    status, _, body = get(server.url, f"/api/metrics/history?duration={value}")
    assert status == 200 and orjson.loads(body)["duration"] == applied


@pytest.mark.parametrize("node_id", ["%C2%A0", "%20", "%09", "node1%20", "%E2%80%8B"])
def test_a_non_empty_unknown_node_id_is_404_not_required(server, node_id):
    status, _, body = get(server.url, f"/api/node?node_id={node_id}")
    assert status == 404, body
    assert "unknown node_id" in orjson.loads(body)["error"]


def test_openapi_says_what_the_parser_does(server):
    doc = orjson.loads(get(server.url, "/api/openapi.json")[2])
    params = {p["name"]: p for p in doc["paths"]["/api/node"]["get"]["parameters"]}
    assert params["node_id"]["schema"] == {"type": "string", "minLength": 1}
    assert params["duration"]["schema"]["type"] == "number"
    assert "ASCII digits" in params["duration"]["description"]
