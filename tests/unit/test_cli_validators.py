"""CLI input checks: --url never echoes a password, float options say "not a number", --host says "invalid"."""

from __future__ import annotations

import base64
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from raftctl.commands import _common
from raftctl.commands._common import (
    BadAnswer,
    ServerUnreachable,
    finite_float,
    http_get_bytes,
    normalize_url,
    redact_url,
    valid_host,
)

SECRET = "s3cr3t-pw"


# ---- --url http://user:pw@host ---------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    f"http://admin:{SECRET}@127.0.0.1:99999",
    f"ftp://admin:{SECRET}@127.0.0.1",
    f"http://admin:{SECRET}@",
    f"http://admin:{SECRET}@127.0.0.1:8080/?x=1",
    f"http://admin:{SECRET}@127.0.0.1:0",
    f"http://admin:{SECRET} @127.0.0.1",
    f"http://admin:{SECRET}@127.0.0.1:8080#frag",
])
def test_invalid_urls_with_credentials_never_show_the_password(url):
    with pytest.raises(ValueError) as info:
        normalize_url(url)
    assert SECRET not in str(info.value)
    assert "***@" in str(info.value)


def test_a_valid_url_comes_back_without_its_credentials(monkeypatch):
    monkeypatch.setattr(_common, "_CREDENTIALS", {})
    assert normalize_url(f"http://admin:{SECRET}@127.0.0.1:8080/") == "http://127.0.0.1:8080"
    assert _common._CREDENTIALS["http://127.0.0.1:8080"] == ("admin", SECRET)
    monkeypatch.setenv("RAFTCTL_URL", f"https://ops:{SECRET}@example.org:9090/prefix")
    assert normalize_url(None) == "https://example.org:9090/prefix"


def test_redact_url():
    assert redact_url(f"http://a:{SECRET}@h:1/p") == "http://***@h:1/p"
    assert redact_url("http://h:1/p@x") == "http://h:1/p@x"  # an @ in the path is not userinfo
    assert redact_url("http://h:1") == "http://h:1"


def test_a_url_that_names_an_endpoint_is_refused_and_a_prefix_is_not():
    """`--url http://127.0.0.1:19200/api/summary` asked for /api/summary/api/summary and said 404."""
    for url in ("http://127.0.0.1:19200/api/summary", "http://h:1/p/api/metrics/history", "http://h:1/metrics/"):
        with pytest.raises(ValueError, match="names an endpoint"):
            normalize_url(url)
    assert normalize_url("http://h:1/raftctl/") == "http://h:1/raftctl"
    assert normalize_url("http://h:1/apiary") == "http://h:1/apiary"


def test_a_nodes_own_api_given_as_the_dashboard_says_what_it_is():
    """`summary --url` at a node's HTTP port (cluster up prints both): the node's 404 plus what to do."""
    import http.server
    import json
    import threading

    from raftctl.commands._common import BadAnswer

    class Node(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"error": f"no such endpoint {self.path!r}; try /api/status, /api/orders, /metrics"})
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Node)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(BadAnswer) as info:
            http_get_bytes(url, "/api/summary", timeout=2)
        assert "raftctl node's HTTP API, not a dashboard" in info.value.message
        assert f"--source raftctl:{url}" in info.value.message
    finally:
        server.shutdown()
        server.server_close()


def test_unreachable_server_message_hides_the_password(monkeypatch):
    monkeypatch.setattr(_common, "_CREDENTIALS", {})
    import socket

    with socket.socket() as sock:  # a port that was just free: connection refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = normalize_url(f"http://admin:{SECRET}@127.0.0.1:{port}")
    with pytest.raises(ServerUnreachable) as info:
        http_get_bytes(base, "/api/summary", timeout=2)
    assert SECRET not in info.value.message and f"127.0.0.1:{port}" in info.value.message
    with pytest.raises(ServerUnreachable) as info:  # a caller that kept the credentials in the URL
        http_get_bytes(f"http://admin:{SECRET}@127.0.0.1:{port}", "/api/summary", timeout=2)
    assert SECRET not in info.value.message and "admin" not in info.value.message


@pytest.fixture
def auth_server():
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            body = b'{"error": "nope", "status": 404}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def test_credentials_are_sent_as_basic_auth_and_error_messages_hide_them(auth_server, monkeypatch):
    monkeypatch.setattr(_common, "_CREDENTIALS", {})
    port, seen = auth_server
    base = normalize_url(f"http://admin:{SECRET}@127.0.0.1:{port}")
    with pytest.raises(BadAnswer) as info:
        http_get_bytes(base, "/api/summary", timeout=5)
    assert SECRET not in info.value.message and "HTTP 404: nope" in info.value.message
    assert seen == ["Basic " + base64.b64encode(f"admin:{SECRET}".encode()).decode()]


def test_summary_command_never_prints_the_password(capsys, monkeypatch):
    from raftctl.cli import run

    monkeypatch.setattr(_common, "_CREDENTIALS", {})
    for url in (f"http://admin:{SECRET}@127.0.0.1:1", f"http://admin:{SECRET}@127.0.0.1:notaport"):
        code = run(["summary", "--url", url])
        captured = capsys.readouterr()
        assert code != 0
        assert SECRET not in captured.err + captured.out, captured.err


# ---- float options: NaN is "not a number" ----------------------------------------------------------


def make_app():
    app = typer.Typer()

    @app.command()
    def main(
        interval: Annotated[float, typer.Option("--interval", callback=finite_float("--interval", 0.05, 3600))] = 1.0,
        rate: Annotated[float, typer.Option("--rate", callback=finite_float("--rate", 0, 100_000))] = 100.0,
        retention: Annotated[float | None, typer.Option("--retention", callback=finite_float("--retention", 1))] = None,
    ) -> None:
        typer.echo(f"interval={interval} rate={rate} retention={retention}")

    return app


@pytest.mark.parametrize("args,message", [
    (["--interval", "nan"], "not a number"),
    (["--interval", "NaN"], "not a number"),
    (["--rate", "NaN"], "not a number"),
    (["--rate", "-nan"], "not a number"),
    (["--interval", "inf"], "not a finite number"),
    (["--rate", "-Infinity"], "not a finite number"),
    (["--interval", "0.01"], "not between 0.05 and 3600"),
    (["--rate", "100001"], "not between 0 and 100000"),
    (["--retention", "0.5"], "less than 1"),
    (["--retention", "nan"], "not a number"),
])
def test_float_options_refuse_nan_infinity_and_out_of_range(args, message):
    result = CliRunner().invoke(make_app(), args)
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    if "nan" in args[1].lower():
        assert "less than" not in result.output and "between" not in result.output


def test_float_options_accept_good_values():
    result = CliRunner().invoke(make_app(), ["--interval", "0.5", "--rate", "0", "--retention", "60"])
    assert result.exit_code == 0, result.output
    assert "interval=0.5 rate=0.0 retention=60.0" in result.output


def test_finite_float_callback_directly():
    check = finite_float("--x", 0, 10)
    assert check(None) is None and check(5.0) == 5.0 and check(0.0) == 0.0 and check(10.0) == 10.0
    for bad, text in ((float("nan"), "not a number"), (float("inf"), "not a finite"), (11.0, "between")):
        with pytest.raises(typer.BadParameter, match=text):
            check(bad)
    assert finite_float("--y")(1e300) == 1e300  # no bounds: only NaN and infinities are refused


# ---- --host: an invalid address says so -----------------------------------------------------------


@pytest.mark.parametrize("host,expected", [
    ("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "0.0.0.0"), ("::1", "::1"), ("[::1]", "::1"), ("::", "::"),
    ("localhost", "localhost"), ("my-host.example.org", "my-host.example.org"), ("raft_ctl", "raft_ctl"),
])
def test_valid_hosts_pass(host, expected):
    assert valid_host(host) == expected


@pytest.mark.parametrize("host,message", [
    ("999.1.1.1", "not a valid IPv4 address"),
    ("256.0.0.1", "not a valid IPv4 address"),
    ("1.2.3", "not a valid IPv4 address"),
    ("127.1", "not a valid IPv4 address"),
    ("::gg", "not a valid IPv6 address"),
    ("exa mple", "not a valid IP address or host name"),
    ("-bad.example", "not a valid IP address or host name"),
    ("a" * 64 + ".org", "not a valid IP address or host name"),
    ("", "non-empty"),
])
def test_invalid_hosts_say_the_address_is_invalid(host, message):
    with pytest.raises(typer.BadParameter, match=message) as info:
        valid_host(host)
    assert "--port" not in str(info.value)


def test_dashboard_server_refuses_an_invalid_host_before_binding():
    from raftctl.dashboard.server import DashboardServer

    with pytest.raises(ValueError, match="not a valid IPv4 address"):
        DashboardServer(object(), host="999.1.1.1", port=0)


def test_serve_with_host_999_says_invalid_address_not_choose_another_port():
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from raftctl.cli import run; sys.exit(run())",
         "serve", "--host", "999.1.1.1", "--port", "0", "--nodes", "3"],
        check=False, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "not a valid IPv4 address" in result.stderr, result.stderr
    assert "choose another --port" not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("argv,message", [
    (["serve", "--interval", "nan"], "'--interval': nan is not a number"),
    (["serve", "--rate", "NaN"], "'--rate': nan is not a number"),
    (["serve", "--retention", "inf"], "'--retention': inf is not a finite number"),
    (["serve", "--host", "999.1.1.1"], "'999.1.1.1' is not a valid IPv4 address"),
    (["demo", "--host", "999.1.1.1"], "'999.1.1.1' is not a valid IPv4 address"),
    (["watch", "--interval", "nan"], "'--interval': nan is not a number"),
    (["chaos", "--duration", "nan"], "'--duration': nan is not a number"),
])
def test_the_real_commands_say_not_a_number_and_invalid_address(argv, message, capsys):
    from raftctl.cli import run as run_cli

    code = run_cli(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err, err
    assert "another --port" not in err and "less than or equal" not in err
