"""The dashboard light on the wire: history since a sequence, gzip, and ETag/304 on /api/summary."""

from __future__ import annotations

import gzip
import http.client

import orjson
import pytest

from raftctl import DashboardServer
from raftctl.dashboard import api as api_module
from raftctl.dashboard.api import DashboardApi, Request, accepts_gzip

from dashboard_fixtures import get, monitored_cluster, step

SEED = 1515


@pytest.fixture
def monitored():
    cluster, collector = monitored_cluster(SEED, warmup=10)
    return cluster, collector, DashboardApi(collector)


def call(api: DashboardApi, target: str, **headers: str):
    return api.handle(Request("GET", target, {k.lower().replace("_", "-"): v for k, v in headers.items()}))


def header(response, name: str) -> str | None:
    values = [value for key, value in response.headers if key.lower() == name.lower()]
    assert len(values) <= 1, (name, values)
    return values[0] if values else None


def samples_of(response) -> list[dict]:
    assert response.status == 200, response.body
    return orjson.loads(response.body)["samples"]


# -- since ------------------------------------------------------------------------------------


def test_since_returns_only_newer_samples(monitored):
    cluster, collector, api = monitored
    everything = samples_of(call(api, "/api/metrics/history?duration=300"))
    sequences = [s["sequence"] for s in everything]
    assert sequences == list(range(1, 11))
    newer = samples_of(call(api, "/api/metrics/history?duration=300&since=7"))
    assert [s["sequence"] for s in newer] == [8, 9, 10]
    assert newer == everything[7:]  # the same documents, not a reduced form
    assert samples_of(call(api, "/api/metrics/history?duration=300&since=10")) == []
    assert samples_of(call(api, "/api/metrics/history?duration=300&since=99999")) == []
    assert [s["sequence"] for s in samples_of(call(api, "/api/metrics/history?duration=300&since=0"))] == sequences
    # the page's loop: a new sample, then only it
    step(cluster, collector)
    assert [s["sequence"] for s in samples_of(call(api, "/api/metrics/history?duration=300&since=10"))] == [11]


def test_since_combines_with_duration(monitored):
    _, _, api = monitored
    # the last 3 s hold samples 8..10 (sim_time > newest - 3); since=8 keeps 9 and 10
    assert [s["sequence"] for s in samples_of(call(api, "/api/metrics/history?duration=3&since=8"))] == [9, 10]
    # an old since is bounded by the duration, not widened to the whole retention
    assert [s["sequence"] for s in samples_of(call(api, "/api/metrics/history?duration=3&since=1"))] == [8, 9, 10]


def test_since_far_back_falls_back_to_the_whole_window(monitored):
    """A since older than the short window the server tries first still gets every sample after it."""
    cluster, collector, api = monitored
    for _ in range(5):
        step(cluster, collector, seconds=7.0)  # sim time runs ahead of the 1 s interval
    newer = samples_of(call(api, "/api/metrics/history?duration=300&since=9"))
    assert [s["sequence"] for s in newer] == list(range(10, 16))


@pytest.mark.parametrize("value", ["", "-1", "+3", "1.0", "1e3", " 3", "3 ", "٣", "0x10", "abc", "9" * 65])
def test_bad_since_is_a_400(monitored, value):
    _, _, api = monitored
    response = call(api, "/api/metrics/history?since=" + value.replace(" ", "%20").replace("+", "%2B"))
    assert response.status == 400
    body = orjson.loads(response.body)
    assert body["status"] == 400 and "since" in body["error"]


def test_since_given_twice_is_a_400(monitored):
    _, _, api = monitored
    response = call(api, "/api/metrics/history?since=1&since=2")
    assert response.status == 400 and b"more than once" in response.body


def test_fields_keeps_only_the_named_sections(monitored):
    _, _, api = monitored
    full = samples_of(call(api, "/api/metrics/history?duration=300"))
    slim = samples_of(call(api, "/api/metrics/history?duration=300&fields=cluster,performance"))
    assert [sorted(s) for s in slim] == [["cluster", "performance", "sequence", "sim_time", "timestamp"]] * len(full)
    assert [{k: s[k] for k in slim[0]} for s in full] == slim
    for bad in ("", "bogus", "cluster,,nodes", "cluster,bogus"):
        response = call(api, "/api/metrics/history?fields=" + bad)
        assert response.status == 400 and b"fields" in response.body, bad
    # history keeps no per-shard data: "shards" was accepted and gave nothing
    response = call(api, "/api/metrics/history?fields=cluster,shards")
    assert response.status == 400 and b"shards" in response.body


# -- gzip -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip;q=0.000", False),
        ("*;q=0", False),
        ("*, gzip;q=0", False),
        ("gzip;q=0, *", False),
        ("identity", False),
        ("deflate, br", False),
        ("", False),
        (None, False),
        ("gzip;q=2", False),  # not a qvalue: treated as a refusal, never a crash
        ("gzip;q=abc", False),
    ],
)
def test_accept_encoding_parsing(value, expected):
    assert accepts_gzip(value) is expected


@pytest.mark.parametrize(
    "target",
    ["/api/summary", "/api/metrics/history?duration=300", "/api/node?node_id=node1", "/api/openapi.json", "/metrics"],
)
def test_gzip_when_accepted_identity_otherwise(monitored, target):
    _, _, api = monitored
    plain = call(api, target)
    assert plain.status == 200
    assert header(plain, "Content-Encoding") is None
    assert header(plain, "Vary") == "Accept-Encoding"
    packed = call(api, target, accept_encoding="gzip, deflate, br")
    assert packed.status == 200
    assert header(packed, "Content-Encoding") == "gzip"
    assert header(packed, "Vary") == "Accept-Encoding"
    assert header(packed, "Content-Type") == header(plain, "Content-Type")
    assert gzip.decompress(packed.body) == plain.body
    assert len(packed.body) < len(plain.body)
    refused = call(api, target, accept_encoding="gzip;q=0, identity")
    assert header(refused, "Content-Encoding") is None and refused.body == plain.body


def test_gzip_is_built_once_per_sample(monitored, monkeypatch):
    cluster, collector, api = monitored
    calls = []
    real = gzip.compress

    def counting(data, *args, **kwargs):
        calls.append(len(data))
        return real(data, *args, **kwargs)

    monkeypatch.setattr(api_module.gzip, "compress", counting)
    first = [call(api, "/api/summary", accept_encoding="gzip").body for _ in range(5)]
    assert len(calls) == 1 and len(set(first)) == 1
    step(cluster, collector)
    call(api, "/api/summary", accept_encoding="gzip")
    assert len(calls) == 2  # a new sample, a new document


def test_small_bodies_and_errors_stay_uncompressed(monitored):
    _, _, api = monitored
    error = call(api, "/api/metrics/history?since=x", accept_encoding="gzip")
    assert error.status == 400 and header(error, "Content-Encoding") is None
    assert len(error.body) < api_module.GZIP_MIN_BYTES
    orjson.loads(error.body)


def test_gzip_on_the_wire(monitored):
    """Through the real server: Content-Length is the compressed size and HEAD agrees with GET."""
    _, collector, _ = monitored
    with DashboardServer(collector, port=0) as server:
        status, headers, body = get(server.url, "/metrics", {"Accept-Encoding": "gzip"})
        assert status == 200 and headers["content-encoding"] == "gzip"
        assert int(headers["content-length"]) == len(body)
        assert gzip.decompress(body).decode().startswith("#")
        status, head_headers, head_body = get(server.url, "/metrics", {"Accept-Encoding": "gzip"}, method="HEAD")
        assert status == 200 and head_body == b"" and head_headers["content-length"] == headers["content-length"]


# -- ETag / 304 -------------------------------------------------------------------------------


def test_summary_etag_and_not_modified(monitored):
    cluster, collector, api = monitored
    first = call(api, "/api/summary")
    etag = header(first, "ETag")
    assert etag and etag.startswith('W/"') and etag.endswith('-10"')
    again = call(api, "/api/summary", if_none_match=etag)
    assert again.status == 304 and again.body == b""
    assert header(again, "ETag") == etag and header(again, "Content-Type") is None
    assert call(api, "/api/summary", if_none_match=f'"other", {etag}').status == 304
    assert call(api, "/api/summary", if_none_match=etag.removeprefix("W/")).status == 304  # weak comparison
    assert call(api, "/api/summary", if_none_match="*").status == 304
    assert call(api, "/api/summary", if_none_match='W/"stale-10"').status == 200
    step(cluster, collector)
    fresh = call(api, "/api/summary", if_none_match=etag)
    assert fresh.status == 200 and header(fresh, "ETag") != etag
    assert orjson.loads(fresh.body)["sequence"] == 11


def test_etag_differs_between_servers_over_the_same_sequence(monitored):
    """A page left open across a restart must not keep a 304 for sequence N of another run."""
    _, collector, api = monitored
    other = DashboardApi(collector)
    assert header(call(api, "/api/summary"), "ETag") != header(call(other, "/api/summary"), "ETag")


def test_not_modified_on_the_wire_keeps_the_connection(monitored):
    _, collector, _ = monitored
    with DashboardServer(collector, port=0) as server:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            conn.request("GET", "/api/summary")
            resp = conn.getresponse()
            resp.read()
            etag = resp.getheader("ETag")
            assert etag is not None
            conn.request("GET", "/api/summary", headers={"If-None-Match": etag})
            resp = conn.getresponse()
            assert resp.status == 304 and resp.read() == b""
            assert resp.getheader("Content-Length") is None
            # the same connection still answers: the 304 was framed without a body
            conn.request("GET", "/api/health")
            resp = conn.getresponse()
            assert resp.status == 200 and orjson.loads(resp.read())["status"]
        finally:
            conn.close()


def test_openapi_documents_since_fields_304_and_gzip(monitored):
    _, _, api = monitored
    document = orjson.loads(call(api, "/api/openapi.json").body)
    history = document["paths"]["/api/metrics/history"]["get"]
    assert {p["name"] for p in history["parameters"]} == {"duration", "since", "fields"}
    summary = document["paths"]["/api/summary"]["get"]
    assert "304" in summary["responses"] and "ETag" in summary["responses"]["200"]["headers"]
    assert "gzip" in document["info"]["description"]
