"""Faults a tester found in real node processes: cluster identity, peers_connected, the load's failover.

Every process is started through tests/node_fixtures.py's ``process_cluster`` (or added to one's
``all_procs``), which kills all of them when the test ends, passed or failed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from node_fixtures import ProcessCluster, free_ports, http_json, process_cluster

from raftctl.node.loadgen import LoadGenerator
from raftctl.runtime.stopping import sigstop

pytestmark = pytest.mark.timeout(180)


def spawn(cluster: ProcessCluster, argv: list[str]) -> subprocess.Popen[str]:
    """A process the cluster's close() kills too."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cluster.all_procs.append(proc)  # type: ignore[arg-type]
    return proc


def test_a_node_of_one_cluster_cannot_join_another_of_the_same_names(tmp_path):
    with process_cluster(tmp_path / "A", 3, use_cli=False) as a, process_cluster(tmp_path / "B", 3, use_cli=False) as b:
        a.start_all()
        b.start_all()
        a.wait_ready()
        b.wait_ready()
        b.kill("node3")
        # A settled: every node in its leader's term (a node still starting, or one that has not
        # yet heard the leader, says an older term; CI once took that for a disturbance)
        def settled() -> dict[str, int] | None:
            now = {nid: a.must_status(nid)["term"] for nid in a.ids}
            return now if len(set(now.values())) == 1 and min(now.values()) >= 1 else None

        terms = a.wait_for(settled, 20, "every node of A in one term")
        raft_port, http_port = free_ports(2)
        peers = (f"node1=127.0.0.1:{a.raft['node1'][1]},node2=127.0.0.1:{a.raft['node2'][1]},"
                 f"node3=127.0.0.1:{raft_port}")
        base = [sys.executable, "-m", "raftctl.node", "--id", "node3", "--peers", peers,
                "--http", f"127.0.0.1:{http_port}"]
        # B's node3, its own data dir, A's addresses: refused at start, one line, exit 2
        proc = spawn(b, [*base, "--data-dir", str(b.root / "node3")])
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("B's node3 started with A's peers: it should have been refused") from None
        assert proc.returncode == 2, out
        assert "belongs to cluster" in out and "Traceback" not in out and out.count("\n") == 1, out
        # a fresh node under that name and A's addresses is not A's node3: A refuses its hello
        fresh = spawn(b, [*base, "--data-dir", str(tmp_path / "fresh")])
        a.wait_for(lambda: "refused a connection" in a.log("node1") + a.log("node2"), 20,
                   "A's nodes to refuse the stranger's connection")

        def stranger() -> dict | None:
            try:
                code, _h, doc = http_json(f"http://127.0.0.1:{http_port}/api/status", timeout=1)
            except OSError:
                return None
            return doc if code == 200 else None

        report = a.wait_for(stranger, 20, "the stranger to answer")
        assert report["peers_connected"] == 0, report
        assert report["cluster_id"] != a.must_status("node1")["cluster_id"]
        assert fresh.poll() is None
        assert {nid: a.must_status(nid)["term"] for nid in a.ids} == terms, "A was disturbed"


def test_peers_connected_counts_only_peers_heard_from_lately(tmp_path):
    with process_cluster(tmp_path, 3, use_cli=False) as cluster:
        cluster.start_all()
        leader = cluster.wait_ready()
        cluster.wait_for(lambda: cluster.must_status(leader)["peers_connected"] == 2, 10, "both peers connected")
        followers = [n for n in cluster.ids if n != leader]
        for nid in followers:
            sigstop(cluster.procs[nid].pid)  # TCP stays open: only silence tells
        try:
            stopped = time.monotonic()
            cluster.wait_for(lambda: cluster.must_status(leader)["peers_connected"] == 0, 3,
                             "the leader to count its stopped peers as not connected")
            assert time.monotonic() - stopped < 3
        finally:
            for nid in followers:
                cluster.procs[nid].send_signal(signal.SIGCONT)
        cluster.wait_for(lambda: cluster.must_status(leader)["peers_connected"] == 2
                         or (cluster.leader() not in (None, leader)), 10, "the peers back")


def test_the_load_finds_a_new_leader_soon_after_the_old_one_hangs(tmp_path):
    with process_cluster(tmp_path, 3, use_cli=False) as cluster:
        cluster.start_all()
        leader = cluster.wait_ready()
        load = LoadGenerator(dict(cluster.urls), rate=200, workers=4, batch=2).start()
        try:
            cluster.wait_for(lambda: load.stats()["acknowledged"] > 100, 20, "the load to be acknowledged")
            sigstop(cluster.procs[leader].pid)
            stopped = time.monotonic()
            try:
                others = [n for n in cluster.ids if n != leader]
                new = cluster.wait_for(lambda: cluster.leader(others), 10, "a new leader")
                elected = time.monotonic() - stopped
                acked = load.stats()["acknowledged"]
                cluster.wait_for(lambda: load.stats()["acknowledged"] > acked + 50, 10,
                                 "the load acknowledged again")
                resumed = time.monotonic() - stopped
            finally:
                cluster.procs[leader].send_signal(signal.SIGCONT)
            print(f"new leader {new} after {elected:.2f} s; load acknowledged again after {resumed:.2f} s")
            assert resumed < elected + 1.5, (elected, resumed)
        finally:
            load.stop()


def _record_ends(data: bytes) -> list[int]:
    """Where each whole record of a WAL ends (``length u32 | crc u32 | payload``)."""
    import struct

    at, ends = 0, []
    while at + 8 <= len(data):
        (length,) = struct.unpack_from("<I", data, at)
        if at + 8 + length > len(data):
            break
        at += 8 + length
        ends.append(at)
    return ends


def test_a_node_refuses_a_leader_that_would_overwrite_its_committed_entries(tmp_path):
    """Two of three logs lose their newer entries (cut at a record boundary, as a disk that lost
    acknowledged writes or a restored backup would leave them): those two elect a leader and
    commit new entries where the lost ones were. The third, which holds the lost entries
    committed, must refuse them: exit 3 with a message that says what happened, its log untouched;
    never an "internal error"."""
    from node_fixtures import OrderClient

    from raftctl.runtime.collector import MetricsCollector
    from raftctl.sources import build_source

    with process_cluster(tmp_path, nodes=3) as cluster:
        cluster.start_all()
        cluster.wait_ready(20)
        # a monitor watches throughout: it must say that committed entries were lost
        source = build_source("raftctl:" + ",".join(f"{n}={cluster.urls[n]}" for n in cluster.ids), timeout=0.3)
        collector = MetricsCollector(collection_interval=0.25, retention_period=120)
        collector.set_source(source)
        collector.start()
        try:
            _lose_committed_entries(cluster, tmp_path, OrderClient)
            lost = cluster.wait_for(
                lambda: [a for a in collector.alert_history() if a["name"] == "committed_entries_lost"],
                10, "committed_entries_lost from the monitor")
            assert lost[0]["severity"] == "critical" and "below index" in lost[0]["message"], lost
            # and the health said so while it held: not a HEALTHY cluster that lost orders
            said = [s["cluster"] for s in collector.history(None)
                    if "committed_entries_lost" in (s["cluster"].get("health_reasons") or ())]
            assert said and all(c["health_status"] == "UNHEALTHY" for c in said), said
        finally:
            collector.stop()
            source.close()


def test_a_log_cut_after_a_clean_stop_is_refused(tmp_path):
    """A node stopped cleanly, then its log cut (truncate by hand, a bad copy): what went was
    fsynced and acknowledged, and no crash tears a log that is not being written. It said 'cut a
    torn tail ... never acknowledged' and started; two such nodes elected a leader that lacked
    acknowledged orders. Now it refuses, naming the file and how much is missing; without the
    marker (the operator's decision) it starts and catches up."""
    from node_fixtures import OrderClient

    with process_cluster(tmp_path, nodes=3) as cluster:
        cluster.start_all()
        cluster.wait_ready(20)
        client = OrderClient(cluster, "c1", seed=5)
        client.send(time.monotonic() + 1.0)
        assert client.acked, client.errors
        victim = next(n for n in cluster.ids if n != cluster.leader())
        assert cluster.terminate(victim) == 0
        assert (tmp_path / victim / "stopped.json").exists()
        wal = sorted((tmp_path / victim).glob("wal-*.log"))[-1]
        size = wal.stat().st_size
        os.truncate(wal, size - 7)
        proc = cluster.start(victim)
        code = proc.wait(timeout=30)
        log = cluster.log(victim)
        assert code == 2, log[-2000:]
        assert "7 bytes shorter than when the node last stopped cleanly" in log and "Traceback" not in log, log[-2000:]
        assert wal.stat().st_size == size - 7  # refused: nothing cut or written
        (tmp_path / victim / "stopped.json").unlink()
        cluster.start(victim)

        def victim_caught_up() -> bool:
            leader = cluster.leader()  # None for a moment while a poll of a busy node times out
            return leader is not None and (cluster.status(victim) or {}).get("commit_index", 0) \
                >= (cluster.status(leader) or {}).get("commit_index", 1)

        cluster.wait_for(victim_caught_up, 20, "the node catching up")


def _lose_committed_entries(cluster, tmp_path, OrderClient) -> None:
    """Two of three logs lose their newer entries; the keeper is refused by their leader (exit 3)."""
    client = OrderClient(cluster, "c1", seed=3)
    client.send(time.monotonic() + 2.0)
    assert len(client.acked) >= 100, client.errors
    for nid in cluster.ids:
        assert cluster.terminate(nid) == 0
    keeper, *losers = cluster.ids
    kept_wal = sorted((tmp_path / keeper).glob("wal-*.log"))[-1]
    kept = kept_wal.read_bytes()
    for nid in losers:
        wal = sorted((tmp_path / nid).glob("wal-*.log"))[-1]
        data = wal.read_bytes()
        ends = _record_ends(data)
        wal.write_bytes(data[:ends[len(ends) // 4]])
        # a disk that lost fsynced writes in a crash leaves no clean-stop marker (cut after a clean
        # stop, a log is refused: test_a_log_cut_after_a_clean_stop_is_refused)
        (tmp_path / nid / "stopped.json").unlink()
    for nid in losers:
        cluster.start(nid)
    cluster.wait_leader(20, among=losers)
    # the two commit new orders over the indexes they lost, slowly (one order about every 0.1 s;
    # the cut may leave only a few dozen indexes below the mark): a monitor sampling every
    # 0.25 s sees their commit index move below the mark for seconds
    client.target = cluster.leader(among=losers) or losers[0]
    slow_until = time.monotonic() + 3.0
    while time.monotonic() < slow_until:
        client.send(time.monotonic() + 0.01, size=1)
        time.sleep(0.1)
    proc = cluster.start(keeper)
    code = proc.wait(timeout=30)
    log = cluster.log(keeper)
    assert code == 3, log[-2000:]
    assert "sent entries that would overwrite index" in log and "holds committed" in log, log[-2000:]
    assert "internal error" not in log and "Traceback" not in log, log[-2000:]
    assert kept_wal.read_bytes()[:len(kept)] == kept  # nothing it held was cut or rewritten


def test_two_nodes_on_emptied_data_dirs_rejoin_and_elect_nobody_while_the_leader_is_away(tmp_path):
    """Session 23's tester: the leader paused, the two followers killed and started again on
    empty data dirs. They elected each other, acknowledged orders, and the old leader's snapshot
    then replaced those: acknowledged orders silently gone. Started with --rejoin, they elect
    nobody (and take no order) until the old leader is back; it brings them up and they are
    voters again, the orders it had acknowledged all there. --rejoin-if-empty (in cluster.json's
    argv) does the same on an empty dir."""
    import shutil

    from node_fixtures import OrderClient

    with process_cluster(tmp_path, 3, use_cli=False) as cluster:
        cluster.start_all()
        leader = cluster.wait_ready(20)
        client = OrderClient(cluster, "c1")
        client.send(time.monotonic() + 1.0)
        assert client.acked
        committed = cluster.must_status(leader)["commit_index"]
        others = [n for n in cluster.ids if n != leader]
        sigstop(cluster.procs[leader].pid)
        for nid in others:
            cluster.kill(nid)
            shutil.rmtree(cluster.root / nid)
        # one as the README says for a node that lost its data, one as cluster.json's argv has it
        for nid, flag in zip(others, ("--rejoin", "--rejoin-if-empty")):
            cluster.extra_args = [flag]
            cluster.start(nid)
        cluster.extra_args = []
        cluster.wait_for(lambda: all(cluster.status(n) for n in others), 20, "the two rejoining nodes to answer")
        quiet_until = time.monotonic() + 3.0  # ten election timeouts and more
        while time.monotonic() < quiet_until:
            states = {n: (cluster.status(n) or {}).get("state") for n in others}
            assert "LEADER" not in states.values(), states
            time.sleep(0.1)
        code, _h, answer = http_json(cluster.urls[others[0]] + "/api/orders", "POST", [client.order(10_000)], timeout=2)
        assert code in (421, 503), (code, answer)
        os.kill(cluster.procs[leader].pid, signal.SIGCONT)

        def caught_up() -> bool:
            reports = [cluster.status(n) for n in others]
            # applied too: a turn applies at most APPLY_PER_TURN entries, so applying lags the commit
            return all(r is not None and r["last_applied"] >= committed for r in reports) and \
                not any((cluster.root / n / "rejoining").exists() for n in others)

        cluster.wait_for(caught_up, 20, "the rejoining nodes to catch up")
        cluster.wait_leader(10)
        assert all(cluster.procs[n].poll() is None for n in cluster.ids), {n: cluster.log(n)[-500:] for n in cluster.ids}
        for nid in others:
            assert "rejoining" in cluster.log(nid) and "a voter again" in cluster.log(nid), cluster.log(nid)
        assert "--rejoin-if-empty says this node ran before" in cluster.log(others[1]), cluster.log(others[1])
        # the old leader's acknowledged orders are the cluster's: a rejoined node holds them
        status = cluster.must_status(others[0])
        assert status["commit_index"] >= committed and status["orders_applied"] >= len(client.acked), status
