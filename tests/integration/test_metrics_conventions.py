"""/metrics by the Prometheus conventions, and the shipped rules checked by promtool.

Needs Debian's `prometheus` package for promtool (scripts/test.sh installs it). The
convention checker below is itself checked against a body with planted defects, and the
promtool unit tests against rules with planted defects.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from dashboard_fixtures import get, step
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from raftctl import Cluster, DashboardServer, MetricsCollector, Workload, __version__
from raftctl.dashboard import prometheus

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "prometheus"
RUNBOOKS = ROOT / "docs" / "runbooks"
SEED = 20240
# families that describe one Raft group: every series of them carries a shard label
PER_GROUP = ("raftctl_shard_", "raftctl_node_term", "raftctl_node_commit_index", "raftctl_node_last_applied",
             "raftctl_node_log_entries", "raftctl_node_replication_lag_entries", "raftctl_node_last_contact_seconds",
             "raftctl_node_state", "raftctl_commit_apply_lag_entries")
HISTOGRAM: dict[str, Any] = {"le": [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
             "counts": [0, 3, 40, 90, 97, 98, 99, 99, 99, 100, 100, 100, 100], "count": 101, "sum": 7.25}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found on PATH: run scripts/test.sh (it installs Debian's prometheus)",
                    pytrace=False)
    return path


def run_promtool(*args: str, stdin: bytes | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], input=stdin, capture_output=True, cwd=cwd,
                          timeout=60, check=False)


def convention_problems(body: str) -> list[str]:
    """What in a 0.0.4 /metrics body breaks the conventions raftctl promises (README, prometheus.py)."""
    problems = []
    # prometheus_client's parser adds _total to counter samples itself, so read those lines raw
    counters = {line.split()[2] for line in body.splitlines() if line.startswith("# TYPE ") and
                line.split()[3:] == ["counter"]}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            sample_name = re.split(r"[{ ]", line, maxsplit=1)[0]
            if sample_name in counters and not sample_name.endswith("_total"):
                problems.append(f"{sample_name}: counter sample without _total")
    for family in text_string_to_metric_families(body):
        name = family.name
        if not name.startswith(("raftctl_", "process_")):
            problems.append(f"{name}: no raftctl_ prefix")
        if re.search(r"_(ms|millis|milliseconds|ops|percent)(_|$)", name):
            problems.append(f"{name}: not a base unit")
        if family.type == "gauge" and name.endswith("_total"):
            problems.append(f"{name}: gauge named like a counter")
        for sample in family.samples:
            if "alertname" in sample.labels:
                problems.append(f"{name}: label alertname (collides with Prometheus' ALERTS)")
            if name.startswith(PER_GROUP) and "shard" not in sample.labels:
                problems.append(f"{name}: per-group series without a shard label")
            if "latency" in name and sample.value == 0 and not sample.name.endswith(("_bucket", "_count", "_sum")):
                problems.append(f"{name}: a latency of exactly 0")
    return problems


def families_of(body: str, openmetrics: bool = False) -> dict[str, Any]:
    parse = parse_openmetrics if openmetrics else text_string_to_metric_families
    return {family.name: family for family in parse(body)}


def base_doc(**perf: Any) -> dict:
    # the histogram sits at the sample's top level (raftctl/core/sample.py); the others in performance
    top = {"latency_histogram": perf.pop("latency_histogram")} if "latency_histogram" in perf else {}
    return {
        **top,
        "timestamp": 1_700_000_000.5, "sim_time": 10.0,
        "cluster": {"cluster_size": 3, "healthy_nodes": 3, "leader_node": "node1", "leader": "node1",
                    "health_status": "HEALTHY", "current_term": 2, "consensus_aligned": True, "has_quorum": True,
                    "leader_changes": 1},
        "performance": {"total_orders": 10, "total_trades": 4, "throughput_ops": 5.0, "avg_latency_ms": 4.0,
                        "p50_latency_ms": 3.0, "p99_latency_ms": 9.5, "commit_apply_lag": 0, **perf},
        "nodes": {f"node{i}": {"state": "LEADER" if i == 1 else "FOLLOWER", "commit_index": 10, "last_applied": 10,
                               "log_length": 11, "peers_connected": 2, "term": 2, "up": True,
                               "replication_lag": 0, "last_contact_ms": None if i == 1 else 12.0}
                  for i in (1, 2, 3)},
        "alerts": [],
        "collector": {"collection_interval": 1.0, "samples_retained": 3, "collection_ms": 0.25,
                      "sink_events_dropped": 0},
    }


# --------------------------------------------------------------------------- live bodies

@pytest.fixture(scope="module")
def live_bodies():
    """/metrics of a real server: unsharded healthy, unsharded in quorum loss, 4 shards with one leaderless."""
    bodies: dict[str, str] = {}
    cluster = Cluster(node_count=5, seed=SEED)
    Workload(cluster, rate=100, seed=SEED)
    collector = MetricsCollector(collection_interval=1.0, retention_period=60)
    collector.set_cluster(cluster)
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=10.0), f"seed={SEED}"
    server = DashboardServer(collector=collector, host="127.0.0.1", port=0).start()
    try:
        for _ in range(3):
            step(cluster, collector)
        bodies["healthy"] = get(server.url, "/metrics")[2].decode()
        bodies["healthy_om"] = get(server.url, "/metrics",
                                   headers={"Accept": "application/openmetrics-text; version=1.0.0"})[2].decode()
        for node_id in cluster.node_ids[:3]:
            cluster.crash(node_id)
        for _ in range(4):
            step(cluster, collector)
        assert {a["name"] for a in collector.latest()["alerts"]} >= {"quorum_loss", "cluster_unhealthy"}
        bodies["quorum_loss"] = get(server.url, "/metrics")[2].decode()
    finally:
        server.stop()

    sharded = Cluster(node_count=3, seed=SEED, shards=4)
    Workload(sharded, rate=100, seed=SEED)
    collector = MetricsCollector(collection_interval=1.0, retention_period=60)
    collector.set_cluster(sharded)
    assert sharded.run_until(lambda: None not in sharded.shard_leaders().values(), timeout=10.0), f"seed={SEED}"
    server = DashboardServer(collector=collector, host="127.0.0.1", port=0).start()
    try:
        for _ in range(3):
            step(sharded, collector)
        sharded.crash(sharded.shard_leaders()[1])
        sharded.run_for(0.05)
        collector.collect()
        sharded.run_for(3.0)
        collector.collect()
        bodies["sharded"] = get(server.url, "/metrics")[2].decode()
    finally:
        server.stop()
    return bodies


@pytest.mark.parametrize("case", ["healthy", "quorum_loss", "sharded"])
def test_promtool_check_metrics_is_clean_on_live_bodies(live_bodies, case):
    result = run_promtool("check", "metrics", stdin=live_bodies[case].encode())
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
        case, result.stdout.decode(), result.stderr.decode())


@pytest.mark.parametrize("case", ["healthy", "quorum_loss", "sharded"])
def test_live_bodies_follow_the_conventions(live_bodies, case):
    assert convention_problems(live_bodies[case]) == []


def test_convention_checker_and_promtool_catch_planted_defects():
    planted = """\
# HELP raftctl_latency_ms Latency in ms
# TYPE raftctl_latency_ms gauge
raftctl_latency_ms 0
# HELP raftctl_orders Orders
# TYPE raftctl_orders counter
raftctl_orders 3
# HELP raftctl_alert_firing Firing
# TYPE raftctl_alert_firing gauge
raftctl_alert_firing{alertname="quorum_loss"} 1
# HELP raftctl_shard_term Term
# TYPE raftctl_shard_term gauge
raftctl_shard_term 3
"""
    problems = convention_problems(planted)
    assert any("not a base unit" in p for p in problems)
    assert any("alertname" in p for p in problems)
    assert any("without a shard label" in p for p in problems)
    assert any("latency of exactly 0" in p for p in problems)
    assert any("counter sample without _total" in p for p in problems)
    result = run_promtool("check", "metrics", stdin=b"# HELP raftctl_orders x\n# TYPE raftctl_orders counter\n"
                                                    b"raftctl_orders 3\n")
    assert result.returncode != 0 and b"_total" in result.stdout + result.stderr


def test_every_per_group_series_has_a_shard_label_and_shards_are_all_there(live_bodies):
    fams = families_of(live_bodies["sharded"])
    for name in ("raftctl_shard_has_leader", "raftctl_shard_term", "raftctl_shard_consensus_aligned",
                 "raftctl_shard_committed_orders_per_second", "raftctl_shard_proposals_pending",
                 "raftctl_commit_apply_lag_entries"):  # the last had shard 0's only
        assert {s.labels["shard"] for s in fams[name].samples} == {"0", "1", "2", "3"}, name
    leaderless = {s.labels["shard"] for s in fams["raftctl_shard_has_leader"].samples if s.value == 0}
    assert "1" not in leaderless  # re-elected within the 3 s
    healthy = families_of(live_bodies["healthy"])
    assert {s.labels["shard"] for s in healthy["raftctl_shard_has_leader"].samples} == {"0"}
    assert {s.labels["shard"] for s in healthy["raftctl_node_state"].samples} == {"0"}


def test_alerts_are_series_with_label_alert_and_never_alertname(live_bodies):
    fams = families_of(live_bodies["quorum_loss"])
    firing = {(s.labels["alert"], s.labels["severity"]) for s in fams["raftctl_alert_firing"].samples}
    assert ("quorum_loss", "critical") in firing and ("cluster_unhealthy", "critical") in firing
    for body in live_bodies.values():
        assert "alertname" not in body
    # an alert's own labels cannot smuggle the reserved names back in
    doc = base_doc()
    doc["alerts"] = [{"name": "quorum_loss", "severity": "critical", "status": "firing",
                      "labels": {"alertname": "x", "severity": "info", "shard": "2", "bad-name": "y"}}]
    sample = families_of(prometheus.render_prometheus(doc).decode())["raftctl_alert_firing"].samples[0]
    assert sample.labels == {"alert": "quorum_loss", "severity": "critical", "shard": "2"}


def test_build_info_and_process_metrics(live_bodies):
    fams = families_of(live_bodies["healthy"])
    assert [(s.name, s.labels, s.value) for s in fams["raftctl_build_info"].samples] == [
        ("raftctl_build_info", {"version": __version__}, 1.0)]
    om = families_of(live_bodies["healthy_om"], openmetrics=True)
    assert om["raftctl_build"].type == "info"
    for name in ("process_virtual_memory_bytes", "process_resident_memory_bytes", "process_start_time_seconds",
                 "process_open_fds", "process_max_fds"):
        assert fams[name].type == "gauge" and fams[name].samples[0].value > 0, name
    assert fams["process_cpu_seconds"].type == "counter"
    assert fams["process_cpu_seconds"].samples[0].name == "process_cpu_seconds_total"


def test_process_metrics_agree_with_client_python():
    from prometheus_client import CollectorRegistry, ProcessCollector

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    theirs = {s.name: s.value for m in registry.collect() for s in m.samples}
    ours = prometheus.read_process_stats()
    # both add the start tick to /proc/stat's btime, a whole second the kernel derives from the
    # clock minus the uptime: on a VM whose clock is being slewed it steps by 1 s between two
    # reads (CI saw ...72.98 against ...73.98), so the two agree to within that step
    assert ours["process_start_time_seconds"] == pytest.approx(theirs["process_start_time_seconds"], abs=1.02)
    assert ours["process_max_fds"] == theirs["process_max_fds"]
    assert abs(ours["process_open_fds"] - theirs["process_open_fds"]) <= 2
    assert ours["process_cpu_seconds"] == pytest.approx(theirs["process_cpu_seconds_total"], abs=0.5)
    assert ours["process_virtual_memory_bytes"] == pytest.approx(theirs["process_virtual_memory_bytes"], rel=0.1)
    assert ours["process_resident_memory_bytes"] == pytest.approx(theirs["process_resident_memory_bytes"], rel=0.1)


def test_process_metrics_without_proc_are_left_out(tmp_path):
    assert prometheus.read_process_stats(proc=str(tmp_path)) == {}
    body = prometheus.render_prometheus(base_doc(), process=None).decode()
    assert "process_" not in body


# --------------------------------------------------------------------------- synthetic documents

def test_latency_histogram_renders_cumulative_buckets_in_both_formats():
    doc = base_doc(latency_histogram=HISTOGRAM)
    for render, openmetrics in ((prometheus.render_prometheus, False), (prometheus.render_openmetrics, True)):
        body = render(doc, process=None).decode()
        hist = families_of(body, openmetrics)["raftctl_consensus_latency_seconds"]
        assert hist.type == "histogram"
        buckets = [(s.labels["le"], s.value) for s in hist.samples if s.name.endswith("_bucket")]
        assert buckets[-1] == ("+Inf", 101)
        assert [le for le, _ in buckets[:-1]] == [repr(b) for b in HISTOGRAM["le"]]
        assert [v for _, v in buckets[:-1]] == HISTOGRAM["counts"]
        values = {s.name: s.value for s in hist.samples if not s.name.endswith("_bucket")}
        assert values == {"raftctl_consensus_latency_seconds_count": 101, "raftctl_consensus_latency_seconds_sum": 7.25}
    result = run_promtool("check", "metrics", stdin=prometheus.render_prometheus(doc, process=None))
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout.decode()


@pytest.mark.parametrize("bad", [
    {"le": [0.1, 0.05], "counts": [1, 2], "count": 2, "sum": 0.1},      # bounds not increasing
    {"le": [0.1, 0.5], "counts": [3, 2], "count": 3, "sum": 0.1},       # not cumulative
    {"le": [0.1, 0.5], "counts": [1, 5], "count": 3, "sum": 0.1},       # a bucket above count
    {"le": [0.1, 0.5], "counts": [1], "count": 3, "sum": 0.1},          # lengths differ
    {"le": [0.1], "counts": [1], "count": None, "sum": 0.1},            # count unknown
    "not a histogram",
])
def test_malformed_histogram_is_left_out_not_half_rendered(bad):
    body = prometheus.render_prometheus(base_doc(latency_histogram=bad), process=None).decode()
    assert "\nraftctl_consensus_latency_seconds_" not in body
    assert run_promtool("check", "metrics", stdin=body.encode()).returncode == 0


def test_no_fake_zero_latency_while_nothing_commits():
    doc = base_doc(avg_latency_ms=None, p50_latency_ms=None, p99_latency_ms=None)
    doc["shards"] = [{"shard": 0, "leader": None, "term": 3, "commit_index": 0, "last_applied": 0,
                      "health_status": "UNHEALTHY", "consensus_aligned": True, "throughput_ops": 0.0,
                      "avg_latency_ms": None},
                     {"shard": 1, "leader": "node2", "term": 3, "commit_index": 7, "last_applied": 7,
                      "health_status": "HEALTHY", "consensus_aligned": True, "throughput_ops": 2.0,
                      "avg_latency_ms": float("nan")}]
    for render, openmetrics in ((prometheus.render_prometheus, False), (prometheus.render_openmetrics, True)):
        fams = families_of(render(doc, process=None).decode(), openmetrics)
        for name in ("raftctl_consensus_latency_avg_seconds", "raftctl_consensus_latency_p50_seconds",
                     "raftctl_consensus_latency_p99_seconds", "raftctl_shard_consensus_latency_avg_seconds"):
            assert name not in fams, name
        # the leaderless shard has no commit index series (a gap, not a drop to 0)
        assert {s.labels["shard"] for s in fams["raftctl_shard_commit_index"].samples} == {"1"}
    fams = families_of(prometheus.render_prometheus(base_doc(), process=None).decode())
    assert fams["raftctl_consensus_latency_p99_seconds"].samples[0].value == 0.0095


def test_proposals_pending_and_failed_where_the_source_knows_them():
    fams = families_of(prometheus.render_prometheus(base_doc(proposals_pending=7, proposals_failed=2),
                                                    process=None).decode())
    assert fams["raftctl_proposals_pending"].type == "gauge"
    assert fams["raftctl_proposals_pending"].samples[0].value == 7
    assert fams["raftctl_proposals_failed"].samples[0].name == "raftctl_proposals_failed_total"
    assert fams["raftctl_proposals_failed"].samples[0].value == 2
    body = prometheus.render_prometheus(base_doc(proposals_pending=None), process=None).decode()
    assert "raftctl_proposals_" not in body


def test_seconds_are_base_units_without_float_noise():
    doc = base_doc(avg_latency_ms=5.486)
    doc["nodes"]["node2"]["last_contact_ms"] = 1500.0
    fams = families_of(prometheus.render_prometheus(doc, process=None).decode())
    assert fams["raftctl_consensus_latency_avg_seconds"].samples[0].value == 0.005486
    contact = {s.labels["node"]: s.value for s in fams["raftctl_node_last_contact_seconds"].samples}
    assert contact == {"node2": 1.5, "node3": 0.012}  # none for the leader
    assert fams["raftctl_collector_collection_duration_seconds"].samples[0].value == 0.00025
    assert not any(math.isnan(s.value) for f in fams.values() for s in f.samples)


# --------------------------------------------------------------------------- shipped rules

def rule_files() -> list[Path]:
    return sorted(DEPLOY.glob("*.yml"))


def alert_rules() -> list[dict]:
    out = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            out += [rule for rule in group["rules"] if "alert" in rule]
    return out


def test_promtool_check_rules_is_clean():
    result = run_promtool("check", "rules", *[str(p) for p in rule_files()])
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert b"SUCCESS" in result.stdout


def test_promtool_test_rules_passes():
    tests = sorted(str(p) for p in (DEPLOY / "tests").glob("*.yml"))
    assert tests
    result = run_promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


@pytest.mark.parametrize("mutation", [
    # a NoLeader without `for` pages on a one-sample leaderless blip
    ('leader_election_failure"} == 1))\n        for: 2s', 'leader_election_failure"} == 1))'),
    # NoLeader raised by a monitor that cannot see a majority
    ("(raftctl_shard_has_leader == 0\n            unless on (job, instance) (raftctl_cluster_nodes_reached "
     "< floor(raftctl_cluster_nodes / 2) + 1))", "(raftctl_shard_has_leader == 0)"),
    # NoLeader resolved when the monitor goes blind while raftctl's own alert holds
    ('\n            and on (job, instance) (raftctl_alert_firing{alert="leader_election_failure"} == 1))',
     "\n            and on (job, instance) (vector(0) == 1))"),
    # term divergence counted over down nodes too
    ("(raftctl_node_term and on (job, instance, node) (raftctl_node_up == 1))", "(raftctl_node_term)"),
    # target down for any job
    ('up{job=~".*raftctl.*"} == 0', "up == 0"),
    # staleness measured from evaluation time instead of scrape time
    ("(timestamp(raftctl_last_sample_timestamp_seconds) - raftctl_last_sample_timestamp_seconds)",
     "(time() - raftctl_last_sample_timestamp_seconds)"),
    # a stale leader paged on a one-sample blip (a woken leader steps down within a heartbeat)
    ('expr: raftctl_node_state{state="STALE_LEADER"} == 1\n        for: 2s',
     'expr: raftctl_node_state{state="STALE_LEADER"} == 1'),
    # isolation: exactly quorum-1 peers counted as cut off
    ("< ignoring (node) group_left", "<= ignoring (node) group_left"),
    # isolation claimed for a node that does not answer (its 0 peers are no report)
    ("\n            and on (job, instance, node) (raftctl_node_up == 1)", ""),
    # a stale leader paged twice
    ('\n            unless on (job, instance, node) (raftctl_node_state{state="STALE_LEADER"} == 1)', ""),
    # monitor reach paged next to a quorum lost on evidence
    ("\n            unless on (job, instance) (raftctl_cluster_has_quorum == 0)", ""),
    # a sink backlog paged on the first retry (a delivery that gets through next time)
    ("expr: raftctl_collector_sink_pending > 0\n        for: 5m", "expr: raftctl_collector_sink_pending > 0"),
    # a majority computed without floor (2 of 4 counted as enough)
    ("raftctl_cluster_nodes_reached < floor(raftctl_cluster_nodes / 2) + 1",
     "raftctl_cluster_nodes_reached < raftctl_cluster_nodes / 2"),
])
def test_promtool_unit_tests_catch_planted_rule_defects(tmp_path, mutation):
    old, new = mutation
    copy = tmp_path / "prometheus"
    shutil.copytree(DEPLOY, copy)
    found = False
    for path in copy.glob("*.yml"):
        text = path.read_text()
        if old in text:
            path.write_text(text.replace(old, new))
            found = True
    assert found, old
    result = run_promtool("test", "rules", *[str(p) for p in sorted((copy / "tests").glob("*.yml"))])
    assert result.returncode != 0, f"the unit tests did not notice: {new}"


def test_every_alert_has_summary_description_and_an_existing_runbook():
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        annotations = rule.get("annotations") or {}
        assert set(annotations) >= {"summary", "description", "runbook_url"}, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        runbook = ROOT / annotations["runbook_url"]
        assert runbook.is_file(), annotations["runbook_url"]
        text = runbook.read_text()
        for heading in ("## What it means", "## What to check", "## What not to do"):
            assert heading in text, (runbook.name, heading)
    pages = {p.stem for p in RUNBOOKS.glob("*.md")} - {"README"}
    assert pages == set(names)
    # the quorum pages say it plainly
    for name in ("RaftctlQuorumLost", "RaftctlNoLeader", "RaftctlClusterUnhealthy"):
        assert "Never wipe a surviving node's data" in (RUNBOOKS / f"{name}.md").read_text()


def test_rules_cover_every_raftctl_alert_and_health_reason():
    from raftctl.core.alerts import ALERT_RULES

    exprs = " ".join(rule["expr"] for rule in alert_rules())
    covered = {
        "cluster_unhealthy": 'status="UNHEALTHY"', "leader_election_failure": "raftctl_shard_has_leader == 0",
        "consensus_misalignment": "raftctl_shard_consensus_aligned == 0",
        "quorum_loss": "raftctl_cluster_has_quorum == 0", "high_latency": "consensus_latency_seconds:mean1m > 0.5",
        "low_healthy_nodes": "raftctl_cluster_healthy_nodes <= floor(raftctl_cluster_nodes / 2) + 1",
        "term_divergence": "term:spread > 2",
        "node_down": "raftctl_node_up == 0", "node_lagging": "raftctl_node_replication_lag_entries > 100",
        "stale_leader": 'raftctl_node_state{state="STALE_LEADER"} == 1',
        "node_isolated": "raftctl_node_connected_peers",
        "commit_stalled": "changes(raftctl_shard_commit_index[1m]) == 0",
        "committed_entries_lost": 'raftctl_alert_firing{alert="committed_entries_lost"}',
    }
    assert set(covered) == set(ALERT_RULES)
    for name, fragment in covered.items():
        assert fragment in exprs, name
    for fragment in ('status="DEGRADED"', "raftctl_node_up == 0", "raftctl_node_replication_lag_entries > 100",
                     "raftctl_node_last_contact_seconds > 1", "leader_changes", 'up{job=~".*raftctl.*"}',
                     "raftctl_last_sample_timestamp_seconds"):
        assert fragment in exprs, fragment


def test_live_histogram_counts_the_committed_orders(live_bodies):
    fams = families_of(live_bodies["healthy"])
    hist = {(s.name, s.labels.get("le")): s.value for s in fams["raftctl_consensus_latency_seconds"].samples}
    count = hist[("raftctl_consensus_latency_seconds_count", None)]
    assert count > 100  # 3 s at 100 orders/s
    assert hist[("raftctl_consensus_latency_seconds_bucket", "+Inf")] == count
    assert 0 < hist[("raftctl_consensus_latency_seconds_sum", None)] / count < 1.0
    submitted = fams["raftctl_orders_submitted"].samples[0].value
    assert count <= submitted


# --------------------------------------------------------------------------- README and dashboard

def readme_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index("## With Prometheus, Alertmanager and Grafana"):]


def test_readme_configs_pass_promtool_and_amtool(tmp_path):
    blocks = re.findall(r"```yaml\n(.*?)```", readme_section(), re.DOTALL)
    assert len(blocks) >= 2
    prom = tmp_path / "prometheus.yml"
    prom.write_text(blocks[0].replace("/path/to/raftctl", str(ROOT)))
    result = run_promtool("check", "config", str(prom))
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert b"2 rule files found" in result.stdout
    # the comment's count is the file's: a rule added or dropped updates the README too
    said = int(re.search(r"raftctl-alerts\.yml +# (\d+) alerts", blocks[0]).group(1))
    assert said == (ROOT / "deploy/prometheus/raftctl-alerts.yml").read_text().count("- alert: ")
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.fail("amtool not found on PATH: run scripts/test.sh (it installs prometheus-alertmanager)",
                    pytrace=False)
    am = tmp_path / "alertmanager.yml"
    am.write_text(blocks[1])
    result = subprocess.run([amtool, "check-config", str(am)], capture_output=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_readme_migration_table_matches_the_live_names(live_bodies):
    names = set()
    for body in live_bodies.values():
        for line in body.splitlines():
            if line and not line.startswith("#"):
                names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    rows = re.findall(r"^\| `(raftctl_[^`]+)`[^|]*\| (.+) \|$", readme_section(), re.MULTILINE)
    assert len(rows) >= 15
    for before, now in rows:
        old = re.findall(r"raftctl_[a-z0-9_]+", before)[0]
        if "same names" not in now and old not in re.findall(r"raftctl_[a-z0-9_]+", now):  # not a label change
            assert old not in names and old + "_total" not in names, f"{old} is still exported"
        for token in re.findall(r"raftctl_[a-z0-9_]+", now):
            if not token.endswith("_"):  # raftctl_node_{term,...}: an expansion, checked by name below
                assert token in names, f"README says {token}, /metrics has no such series"
    for token in re.findall(r"`(raftctl_[a-z0-9_]+)`", readme_section().split("\nNew: ")[1]):
        if not token.endswith("_"):
            assert token in names, token


def test_dashboard_uses_the_datasource_variable_and_shows_what_the_issue_asks():
    board = json.loads((ROOT / "deploy" / "grafana" / "raftctl.json").read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert {"job", "instance", "shard"} <= set(variables)
    panels = [p for p in board["panels"] if p["type"] != "row"]
    exprs = []
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            exprs.append(target["expr"])
    joined = " ".join(exprs)
    for needle in ("raftctl_cluster_health_status", "raftctl_shard_leader", "raftctl_shard_term",
                   "raftctl_cluster_leader_changes_total", "raftctl_node_commit_index", "raftctl_node_last_applied",
                   "raftctl_node_replication_lag_entries", "rate(raftctl_committed_orders_total",
                   "histogram_quantile(0.99, sum by (job, instance, le) (rate(raftctl_consensus_latency_seconds_bucket"):
        assert needle in joined, needle
    annotations = [a for a in board["annotations"]["list"] if a.get("expr")]
    assert any("ALERTS{" in a["expr"] for a in annotations)
    assert all(a["datasource"]["uid"] == "${datasource}" for a in annotations)


# --------------------------------------------------------------------------- what nodes report (issue 11)

def test_monitor_reach_down_reasons_and_stale_leader_series():
    doc = base_doc()
    doc["cluster"]["cluster_size"] = 4
    doc["cluster"]["nodes_reached"] = 2
    doc["nodes"]["node2"].update(state="STALE_LEADER", term=1, leader_id="node2")
    doc["nodes"]["node3"].update(state="DOWN", up=False, peers_connected=0, term=0, replication_lag=None,
                                 last_contact_ms=None, down_reason="timeout")
    doc["nodes"]["node4"] = {**doc["nodes"]["node3"], "down_reason": "refused"}
    body = prometheus.render_prometheus(doc, process=None).decode()
    assert convention_problems(body) == []
    result = run_promtool("check", "metrics", stdin=body.encode())
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout.decode()
    fams = families_of(body)
    assert [s.value for s in fams["raftctl_cluster_nodes_reached"].samples] == [2]
    reasons = {(s.labels["node"], s.labels["reason"]): s.value for s in fams["raftctl_node_down_reason"].samples}
    assert reasons == {("node3", "timeout"): 1, ("node3", "refused"): 0, ("node3", "error"): 0,
                       ("node4", "timeout"): 0, ("node4", "refused"): 1, ("node4", "error"): 0}
    # a node that does not answer reports no peers: no series, not a fake 0 an isolation rule would read
    assert {s.labels["node"] for s in fams["raftctl_node_connected_peers"].samples} == {"node1", "node2"}
    stale = {s.labels["node"]: s.value for s in fams["raftctl_node_state"].samples
             if s.labels["state"] == "STALE_LEADER"}
    assert stale == {"node1": 0, "node2": 1, "node3": 0, "node4": 0}
    # the stale node leads nothing
    assert {s.labels["node"]: s.value for s in fams["raftctl_node_leader_shards"].samples}["node2"] == 0
    # an older document without these fields: no series, no fake values
    old = prometheus.render_prometheus(base_doc(), process=None).decode()
    assert "raftctl_cluster_nodes_reached" not in old and "raftctl_node_down_reason" not in old


def test_live_quorum_loss_body_names_why_nodes_are_down(live_bodies):
    fams = families_of(live_bodies["quorum_loss"])
    down = {s.labels["node"] for s in fams["raftctl_node_up"].samples if s.value == 0}
    assert len(down) == 3
    reasons = {s.labels["node"]: s.labels["reason"] for s in fams["raftctl_node_down_reason"].samples if s.value == 1}
    assert set(reasons) == down and set(reasons.values()) <= {"timeout", "refused", "error"}
    reached = fams["raftctl_cluster_nodes_reached"].samples[0].value
    assert reached == 2


# --------------------------------------------------------------------------- the committed count

class _EtcdLikeSource:
    """Three members, member1 leading; the cluster commits 66 proposals a second while the
    source's client measures one probe read per poll (as the etcd source does)."""

    name = "etcd-like"

    def __init__(self) -> None:
        self.now = 0.0
        self.committed = 0

    def members(self) -> list[str]:
        return ["m1", "m2", "m3"]

    def close(self) -> None:
        pass

    def poll(self, since: Any = None) -> Any:
        from raftctl.core.source import ClientView, NodeAnswer, Poll

        self.now += 1.0
        self.committed += 66
        answers = {}
        for nid in self.members():
            report = {"state": "LEADER" if nid == "m1" else "FOLLOWER", "term": 2, "leader_id": "m1",
                      "commit_index": self.committed, "last_applied": self.committed,
                      "log_length": self.committed, "peers_connected": 2}
            if nid == "m1":
                report["match_index"] = {"m2": self.committed, "m3": self.committed}
                report["last_contact_ms"] = {"m2": 0.0, "m3": 0.0}
            answers[nid] = NodeAnswer(nid, report)
        return Poll(self.now, answers, ClientView(proposals_committed=self.committed, latencies_ms=[1.5]))


def test_the_committed_count_is_a_counter_of_what_throughput_is_the_rate_of():
    """rate(raftctl_committed_orders_total) is the throughput for every source. On etcd the latency
    histogram holds one probe read per sample, so its _count (which the rules used) said 1/s
    where the cluster committed 66/s."""
    from raftctl.core.collector import SampleCollector

    collector = SampleCollector()
    collector.set_source(_EtcdLikeSource())
    for _ in range(5):
        latest = collector.collect()
    assert latest["performance"]["throughput_ops"] == 66.0
    assert latest["performance"]["total_committed"] == 330
    families = families_of(prometheus.render_prometheus(latest, process=None).decode())
    counter = families["raftctl_committed_orders"]
    assert counter.type == "counter" and [s.value for s in counter.samples] == [330]
    histogram_count = {s.name: s.value for s in families["raftctl_consensus_latency_seconds"].samples}
    assert histogram_count["raftctl_consensus_latency_seconds_count"] == 5  # the probes, not the commits
    history = collector.history(None)
    assert [h["performance"]["total_committed"] for h in history] == [66, 132, 198, 264, 330]
    # the shipped recording rule reads the counter, and the Grafana panel too
    rules = (Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "raftctl-rules.yml").read_text()
    assert "rate(raftctl_committed_orders_total[1m])" in rules


def test_a_sink_backlog_is_on_metrics_before_it_becomes_a_failure():
    """A webhook whose receiver refused every push showed nothing on /metrics: failures count only
    what max_age gave up on; the events still retrying (sink_pending) were in /api/summary only."""
    from raftctl.core.collector import SampleCollector

    collector = SampleCollector()
    collector.set_source(_EtcdLikeSource())
    latest = dict(collector.collect())
    latest["collector"] = {**latest["collector"], "sink_pending": 4, "sink_delivered": 7, "sink_expired": 1,
                           "sink_delivery_failures": 1}
    families = families_of(prometheus.render_prometheus(latest, process=None).decode())
    pending = families["raftctl_collector_sink_pending"]
    assert pending.type == "gauge" and [s.value for s in pending.samples] == [4]
    for name, value in (("raftctl_collector_sink_delivered", 7), ("raftctl_collector_sink_expired", 1)):
        assert families[name].type == "counter" and [s.value for s in families[name].samples] == [value], name
