"""DashboardServer against a real simulated cluster: the seed's API, /metrics, lifecycle."""

from __future__ import annotations

import http.client
import socket

import orjson
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from dashboard_fixtures import get, monitored_cluster, step
from raftctl import Cluster, DashboardServer, MetricsCollector

SEED = 4242

CLUSTER_METRICS = ["cluster_size", "healthy_nodes", "leader_node", "health_status", "current_term", "consensus_aligned"]
PERFORMANCE_METRICS = ["total_orders", "total_trades", "throughput_ops", "avg_latency_ms"]
NODE_METRICS = ["state", "commit_index", "last_applied", "log_length", "peers_connected"]


@pytest.fixture
def served():
    cluster, collector = monitored_cluster(SEED)
    with DashboardServer(collector, port=0) as server:
        yield cluster, collector, server


def get_json(server, path, **kwargs):
    status, headers, body = get(server.url, path, **kwargs)
    assert headers["content-type"] == "application/json", (path, headers)
    return status, orjson.loads(body)


def lose_quorum(cluster, collector, seconds=4):
    for node_id in cluster.node_ids[:3]:
        cluster.crash(node_id)
    for _ in range(seconds):
        step(cluster, collector)


def recover(cluster, collector):
    for node_id in cluster.node_ids[:3]:
        cluster.restart(node_id)
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=20.0), f"no leader (seed={SEED})"
    for _ in range(3):
        step(cluster, collector)


def test_summary_has_every_metric_of_the_seed_reference(served):
    cluster, collector, server = served
    status, doc = get_json(server, "/api/summary")
    assert status == 200
    for name in CLUSTER_METRICS:
        assert name in doc["cluster"], name
    for name in PERFORMANCE_METRICS:
        assert name in doc["performance"], name
    assert sorted(doc["nodes"]) == sorted(cluster.node_ids)
    for node in doc["nodes"].values():
        for name in NODE_METRICS:
            assert name in node, name
    # The seed's Python example reads these exact keys.
    assert doc["cluster"]["health_status"] == "HEALTHY"
    assert doc["cluster"]["leader"] == cluster.leader_id
    assert doc["performance"]["throughput_ops"] > 0
    assert doc == collector.latest()


def test_health_goes_503_under_quorum_loss_and_back_to_200(served):
    cluster, collector, server = served
    status, body = get_json(server, "/api/health")
    assert status == 200
    assert body["status"] == "HEALTHY"
    assert body["leader"] == cluster.leader_id
    assert (body["healthy_nodes"], body["cluster_size"]) == (5, 5)
    assert isinstance(body["timestamp"], float)

    lose_quorum(cluster, collector)
    status, body = get_json(server, "/api/health")
    assert status == 503, f"seed={SEED}"
    assert body["status"] == "UNHEALTHY"
    assert body["healthy_nodes"] == 2
    assert body["leader"] is None

    recover(cluster, collector)
    status, body = get_json(server, "/api/health")
    assert status == 200, f"seed={SEED} body={body}"
    assert body["status"] in ("HEALTHY", "DEGRADED")


def test_health_is_200_when_degraded(served):
    cluster, collector, server = served
    cluster.crash(cluster.node_ids[-1] if cluster.leader_id != cluster.node_ids[-1] else cluster.node_ids[0])
    step(cluster, collector)
    status, body = get_json(server, "/api/health")
    assert (status, body["status"], body["healthy_nodes"]) == (200, "DEGRADED", 4)


def test_before_first_sample_health_and_summary_answer_503_json():
    cluster, _ = monitored_cluster(SEED, warmup=0)
    collector = MetricsCollector()
    collector.set_cluster(cluster)
    with DashboardServer(collector, port=0) as server:
        for path in ("/api/health", "/api/summary"):
            status, body = get_json(server, path)
            assert status == 503
            assert body == {"error": "no sample collected yet", "status": 503}
        status, body = get_json(server, "/api/metrics/history")
        assert (status, body["samples"]) == (200, [])
        status, _, text = get(server.url, "/metrics")
        assert status == 200 and b"raftctl_sample_available 0" in text


def test_history_window_default_and_clamp(served):
    cluster, collector, server = served
    for _ in range(70):
        step(cluster, collector)
    status, body = get_json(server, "/api/metrics/history")
    assert status == 200
    assert body["duration"] == 60 and body["interval"] == 1.0
    times = [sample["sim_time"] for sample in body["samples"]]
    assert times == sorted(times) and len(times) in (60, 61)
    assert times[-1] == collector.latest()["sim_time"]

    status, body = get_json(server, "/api/metrics/history?duration=2.5")
    assert [s["sim_time"] for s in body["samples"]] == times[-3:]

    # Above the retention (300 s) but not absurd: clamped, and the answer says so.
    status, body = get_json(server, "/api/metrics/history?duration=1000")
    assert status == 200 and body["duration"] == 300
    assert len(body["samples"]) == len(collector.history(300))


def test_short_retention_still_answers_the_usual_windows():
    # --retention 1: the README's duration=60 (and the page's default window) is clamped to the one
    # retained second, not refused; the limit is never below an hour, and the OpenAPI says the same
    cluster = Cluster(node_count=3, seed=SEED)
    collector = MetricsCollector(collection_interval=1.0, retention_period=1)
    collector.set_cluster(cluster)
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=10.0), f"no leader (seed={SEED})"
    for _ in range(3):
        step(cluster, collector)
    with DashboardServer(collector, port=0) as server:
        status, body = get_json(server, "/api/metrics/history?duration=60")
        assert status == 200 and body["duration"] == 1 and len(body["samples"]) == 1
        status, body = get_json(server, "/api/node?node_id=node1&duration=3600")
        assert status == 200 and len(body["history"]) == 1
        status, body = get_json(server, "/api/metrics/history?duration=3601")
        assert status == 400 and "at most 3600" in body["error"]
        status, spec = get_json(server, "/api/openapi.json")
        params = spec["paths"]["/api/metrics/history"]["get"]["parameters"]
        assert next(p for p in params if p["name"] == "duration")["schema"]["maximum"] == 3600


def test_node_endpoint(served):
    cluster, collector, server = served
    for node_id in cluster.node_ids:
        status, body = get_json(server, f"/api/node?node_id={node_id}&duration=3")
        assert status == 200
        assert body["node_id"] == node_id
        assert body["current"] == collector.latest()["nodes"][node_id]
        assert body["history"] == collector.node_history(node_id, 3) and len(body["history"]) >= 3
        assert all(entry["state"] in ("LEADER", "FOLLOWER", "CANDIDATE", "DOWN") for entry in body["history"])
    status, body = get_json(server, "/api/node?node_id=node1")
    assert status == 200 and len(body["history"]) == len(collector.node_history("node1", 60))


def test_alerts_fire_and_resolve(served):
    cluster, collector, server = served
    assert get_json(server, "/api/alerts") == (200, {"active": [], "resolved": []})
    lose_quorum(cluster, collector)
    status, body = get_json(server, "/api/alerts")
    assert status == 200
    firing = {alert["name"] for alert in body["active"]}
    assert "quorum_loss" in firing, f"seed={SEED} firing={firing}"
    assert all(alert["status"] == "firing" for alert in body["active"])
    summary = get_json(server, "/api/summary")[1]
    assert {a["name"] for a in summary["alerts"]} == firing

    recover(cluster, collector)
    status, body = get_json(server, "/api/alerts")
    assert "quorum_loss" not in {alert["name"] for alert in body["active"]}
    resolved = {alert["name"] for alert in body["resolved"]}
    assert "quorum_loss" in resolved
    assert all(alert["status"] == "resolved" for alert in body["resolved"])


def test_metrics_prometheus_text_parses(served):
    cluster, collector, server = served
    status, headers, body = get(server.url, "/metrics")
    assert status == 200
    assert headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = body.decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families and all(name.startswith(("raftctl_", "process_")) for name in families)
    for family in families.values():
        if family.type == "counter":
            assert all(sample.name.endswith("_total") for sample in family.samples), family.name
    assert "# HELP raftctl_cluster_nodes " in text and "# TYPE raftctl_orders_submitted_total counter" in text

    doc = collector.latest()
    assert families["raftctl_cluster_nodes"].samples[0].value == 5
    assert families["raftctl_cluster_healthy_nodes"].samples[0].value == doc["cluster"]["healthy_nodes"]
    orders = families["raftctl_orders_submitted"].samples[0]
    assert (orders.name, orders.value) == ("raftctl_orders_submitted_total", doc["performance"]["total_orders"])
    commit = {s.labels["node"]: s.value for s in families["raftctl_node_commit_index"].samples}
    assert commit == {node_id: node["commit_index"] for node_id, node in doc["nodes"].items()}
    leaders = [s.labels["node"] for s in families["raftctl_shard_leader"].samples if s.value == 1]
    assert leaders == [doc["cluster"]["leader"]]

    lose_quorum(cluster, collector)
    text = get(server.url, "/metrics")[2].decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    firing = {s.labels["alert"] for s in families["raftctl_alert_firing"].samples}
    assert "quorum_loss" in firing
    unhealthy = [s for s in families["raftctl_cluster_health_status"].samples if s.labels["status"] == "UNHEALTHY"]
    assert unhealthy[0].value == 1


def test_metrics_openmetrics_when_accept_asks(served):
    _, collector, server = served
    status, headers, body = get(
        server.url, "/metrics", headers={"Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"}
    )
    assert status == 200
    assert headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    text = body.decode()
    assert text.endswith("# EOF\n")
    families = {family.name: family for family in parse_openmetrics(text)}
    assert families["raftctl_orders_submitted"].type == "counter"
    assert families["raftctl_orders_submitted"].samples[0].value == collector.latest()["performance"]["total_orders"]
    # q=0 means "not acceptable": the classic format is served.
    _, headers, _ = get(server.url, "/metrics", headers={"Accept": "application/openmetrics-text;q=0"})
    assert headers["content-type"].startswith("text/plain; version=0.0.4")


def test_head_answers_like_get_without_body(served):
    _, _, server = served
    for path in ("/api/summary", "/api/health", "/metrics", "/", "/static/app.js", "/nope"):
        get_status, get_headers, get_body = get(server.url, path)
        head_status, head_headers, head_body = get(server.url, path, method="HEAD")
        assert head_status == get_status and head_body == b""
        assert head_headers["content-length"] == str(len(get_body))
        assert head_headers["content-type"] == get_headers["content-type"]


def test_api_is_not_cached_and_page_files_are_served(served):
    _, _, server = served
    for path in ("/api/summary", "/api/health", "/api/alerts", "/api/metrics/history", "/api/node?node_id=node2"):
        _, headers, _ = get(server.url, path)
        assert headers["cache-control"] == "no-store", path
    status, headers, body = get(server.url, "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert b'id="nodes-table"' in body and b'id="alerts"' in body and b'id="connection-status"' in body
    assert b'content="5"' in body and b"__RAFTCTL" not in body
    assert b"http://" not in body and b"https://" not in body  # nothing from a CDN
    assert get(server.url, "/static/app.js")[1]["content-type"] == "text/javascript; charset=utf-8"
    assert get(server.url, "/static/style.css")[1]["content-type"] == "text/css; charset=utf-8"


def test_refresh_seconds_option_is_injected_into_the_page():
    _, collector = monitored_cluster(SEED, warmup=1)
    with DashboardServer(collector, port=0, refresh_seconds=2.5) as server:
        assert b'name="raftctl-refresh-seconds" content="2.5"' in get(server.url, "/")[2]
    with pytest.raises(ValueError, match="refresh_seconds"):
        DashboardServer(collector, port=0, refresh_seconds=0)


class CountingCollector:
    """Wraps a collector and counts document reads, to see the per-version cache work."""

    def __init__(self, inner):
        self.inner = inner
        self.reads = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def latest(self):
        self.reads += 1
        return self.inner.latest()


def test_documents_are_built_once_per_sample_not_per_request():
    cluster, inner = monitored_cluster(SEED)
    collector = CountingCollector(inner)
    with DashboardServer(collector, port=0) as server:
        first = [get(server.url, path)[2] for path in ("/api/summary", "/api/health", "/metrics")]
        for _ in range(10):
            assert [get(server.url, path)[2] for path in ("/api/summary", "/api/health", "/metrics")] == first
        assert collector.reads == 1
        step(cluster, inner)
        assert get(server.url, "/api/summary")[2] == inner.latest_bytes() != first[0]
        assert collector.reads == 2


def test_keep_alive_serves_many_requests_on_one_connection(served):
    _, collector, server = served
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.connect()
        local = conn.sock.getsockname()
        for path in ("/api/summary", "/api/health", "/metrics", "/api/nope", "/api/summary"):
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            assert response.getheader("Connection") != "close"
            assert conn.sock is not None and conn.sock.getsockname() == local
        assert response.status == 200
    finally:
        conn.close()


def test_two_servers_side_by_side_and_stop_frees_the_port():
    _, collector_a = monitored_cluster(SEED, warmup=1)
    _, collector_b = monitored_cluster(SEED + 1, node_count=3, warmup=1)
    server_a = DashboardServer(collector_a, port=0).start()
    server_b = DashboardServer(collector_b, port=0).start()
    try:
        assert server_a.port != server_b.port
        assert get_json(server_a, "/api/health")[1]["cluster_size"] == 5
        assert get_json(server_b, "/api/health")[1]["cluster_size"] == 3
    finally:
        server_a.stop()
    assert get_json(server_b, "/api/health")[0] == 200
    port = server_b.port
    server_b.stop()
    server_b.stop()  # idempotent
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    again = DashboardServer(collector_b, port=port).start()
    try:
        assert again.url == f"http://127.0.0.1:{port}"
        assert get_json(again, "/api/health")[0] == 200
    finally:
        again.stop()


def test_port_in_use_is_a_clear_error(served):
    _, collector, server = served
    with pytest.raises(OSError, match=f"port {server.port} on 127.0.0.1 is already in use"):
        DashboardServer(collector, port=server.port).start()
    with pytest.raises(ValueError, match="port"):
        DashboardServer(collector, port=70000)


def test_stop_closes_idle_keep_alive_connections(served):
    _, _, server = served
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", "/api/health")
        conn.getresponse().read()
        server.stop()
        conn.sock.settimeout(5)
        assert conn.sock.recv(1) == b""  # the server side was closed, not left serving stale data
    finally:
        conn.close()


def test_events_timeline_shows_the_crash_election_and_alerts_and_only_what_is_new(served):
    cluster, collector, server = served
    status, doc = get_json(server, "/api/events")
    assert status == 200 and doc["events"] and doc["last"] == doc["events"][-1]["seq"]
    last = doc["last"]
    old_leader = cluster.leader_id
    cluster.crash(old_leader)
    for _ in range(3):
        step(cluster, collector)
    status, doc = get_json(server, f"/api/events?since={last}")
    assert status == 200 and all(e["seq"] > last for e in doc["events"])
    seen = [(e["kind"], e.get("fault") or e.get("leader") or e.get("name") or e.get("to")) for e in doc["events"]]
    assert ("fault", "crash") in seen, seen
    assert any(k == "leader" and who not in (None, old_leader) for k, who in seen), f"seed={SEED}: {seen}"
    assert ("alert", "node_down") in seen and ("node", "DOWN") in seen, seen
    assert get_json(server, f"/api/events?since={doc['last']}")[1]["events"] == []
    for bad in ("since=x", "since=-1", "since=1&since=2"):
        status, err = get_json(server, f"/api/events?{bad}")
        assert status == 400 and "since" in err["error"], (bad, err)
    # it says what since counts here: an event's seq, not a sample's sequence
    assert "an event seq" in get_json(server, "/api/events?since=x")[1]["error"]
