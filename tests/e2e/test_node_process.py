"""`raftctl node` as real processes: TCP between them, a write-ahead log on disk, kill -9.

Every process is started through tests/node_fixtures.py's ``process_cluster``, which kills all of
them when the test ends, passed or failed. Ports are free loopback ports picked at start.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time

import pytest

from node_fixtures import OrderClient, ProcessCluster, free_ports, http_json, process_cluster

pytestmark = pytest.mark.timeout(180)


def run_cli(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "raftctl", *args], capture_output=True, text=True, timeout=timeout)


def caught_up(cluster: ProcessCluster, at_least: int = 0) -> dict | None:
    """The nodes' reports once all have applied the same index (at least ``at_least``: right
    after a restart every node is trivially "agreed" at its snapshot) with the same digest."""
    reports = {nid: cluster.status(nid) for nid in cluster.ids}
    if any(r is None or r["last_applied"] < at_least for r in reports.values()):
        return None
    applied = {r["last_applied"] for r in reports.values() if r}
    digests = {r["state_digest"] for r in reports.values() if r}
    commits = {r["commit_index"] for r in reports.values() if r}
    if len(applied) == 1 and len(digests) == 1 and commits == applied:
        return reports
    return None


def send_until_acked(client: OrderClient, size: int, timeout: float) -> None:
    client.new_batch(size)
    deadline = time.monotonic() + timeout
    while not client.try_once():
        assert time.monotonic() < deadline, f"no node acknowledged the batch within {timeout} s: {client.errors}"
        time.sleep(0.01)


# ---- the command line --------------------------------------------------------------------------


def test_bad_command_lines_get_one_clear_line_and_exit_2(tmp_path):
    p1, p2 = free_ports(2)
    peers = f"node1=127.0.0.1:{p1},node2=127.0.0.1:{p2}"
    cases = [
        (["--id", "node9", "--peers", peers], "--id 'node9' is not among --peers"),
        (["--id", "node1", "--peers", "node1=127.0.0.1"], "must be HOST:PORT"),
        (["--id", "node1", "--peers", f"node1=127.0.0.1:{p1},node1=127.0.0.1:{p2}"], "names node1 twice"),
        (["--id", "node1", "--peers", "node1=127.0.0.1:99999"], "port must be a number from 1 to 65535"),
        (["--id", "node1", "--peers", f"node1=127.0.0.1:{p1},,node2=127.0.0.1:{p2}"], "has an empty item"),
        (["--id", "node1", "--peers", f"{peers},"], "has an empty item"),
        (["--id", "node1", "--peers", f"node1=127.0.0.1:{p1},node2=127.0.0.1:{p1}"], "have the same address"),
        (["--id", "node1", "--peers", peers, "--http", "999.1.1.1:80"], "not a valid IPv4 address"),
        (["--id", "node1", "--peers", peers, "--advertise-http", "localhost:80"], "--advertise-http needs --http"),
        (["--id", "node1", "--peers", peers, "--http", "127.0.0.1:1", "--advertise-http", "0.0.0.0:80"],
         "is a wildcard"),
        (["--id", "node1", "--peers", peers, "--http", "127.0.0.1:1", "--advertise-http", "host:x"],
         "--advertise-http 'host:x': the port must be a number"),
        (["--id", "node1", "--peers", peers, "--http", "127.0.0.1:1", "--advertise-http", "[::]:80"],
         "--advertise-http [::]:80 is a wildcard"),
        (["--id", "node1", "--peers", peers, "--http", "http://127.0.0.1:8080"], "without a scheme"),
    ]
    for args, message in cases:
        done = run_cli("node", *args, "--data-dir", str(tmp_path / "d"))
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1, done.stderr


def test_nodes_tell_peers_clients_and_monitors_their_advertised_http_address(tmp_path):
    """--advertise-http: the node serves on --http but says the advertised address in its status,
    to its peers (their peer_urls and leader_url) and in a follower's 421 Location."""

    class Advertised(ProcessCluster):
        def argv(self, nid: str) -> list[str]:
            return [*super().argv(nid), "--advertise-http", f"localhost:{self.http[nid][1]}"]

    cluster = Advertised(tmp_path, nodes=2)
    told = {nid: f"http://localhost:{cluster.http[nid][1]}" for nid in cluster.ids}
    try:
        cluster.start_all()
        leader = cluster.wait_leader(20)
        follower = next(n for n in cluster.ids if n != leader)
        status = cluster.wait_for(lambda: (s := cluster.status(follower)) and s.get("leader_url") and s, 10,
                                  "the follower to know the leader's URL")
        assert status["http"] == told[follower] and status["leader_url"] == told[leader]
        assert status["peer_urls"] == {leader: told[leader]}
        assert cluster.must_status(leader)["http"] == told[leader]
        code, headers, doc = http_json(cluster.urls[follower] + "/api/orders", "POST",
                                       {"client_id": "c1", "seq": 1, "symbol": "BTC-USD", "side": "buy",
                                        "price": 100, "qty": 1})
        assert code == 421 and headers["location"] == told[leader] + "/api/orders", (code, headers, doc)
        assert f"HTTP {told[leader]} (listening on 127.0.0.1:{cluster.http[leader][1]})" in cluster.log(leader)
    finally:
        cluster.close()


def test_a_follower_of_a_leader_without_an_http_api_says_so_instead_of_knowing_no_leader(tmp_path):
    class Headless(ProcessCluster):
        def argv(self, nid: str) -> list[str]:
            argv = super().argv(nid)
            if nid == "node3":  # no HTTP API, and the first to stand for election
                at = argv.index("--http")
                del argv[at:at + 2]
                return [*argv, "--election-timeout-ms", "100"]
            return [*argv, "--election-timeout-ms", "3000"]

    cluster = Headless(tmp_path, nodes=3)
    try:
        cluster.start_all()
        status = cluster.wait_for(lambda: (s := cluster.status("node1")) and s.get("leader_id") == "node3" and s,
                                  20, "node1 to follow node3")
        assert status["leader_url"] is None
        code, _headers, doc = http_json(cluster.urls["node1"] + "/api/orders", "POST",
                                        {"client_id": "c1", "seq": 1, "symbol": "BTC-USD", "side": "buy",
                                         "price": 100, "qty": 1})
        assert code == 503 and doc["leader"] == "node3" and doc["leader_url"] is None, (code, doc)
        assert "follows node3 but knows no HTTP address for it" in doc["error"], doc
    finally:
        cluster.close()


def test_a_data_dir_of_another_node_or_cluster_is_refused(tmp_path):
    with process_cluster(tmp_path, nodes=3) as cluster:
        cluster.start("node1")
        cluster.wait_for(lambda: cluster.status("node1"), 20, "node1 to answer")
        assert cluster.terminate("node1") == 0
        other = cluster.argv("node2")
        other[other.index("--data-dir") + 1] = str(tmp_path / "node1")
        done = subprocess.run(other, capture_output=True, text=True, timeout=20)
        assert done.returncode == 2
        assert "belongs to node 'node1', not 'node2'" in done.stderr and "Traceback" not in done.stderr
        p1, p2 = free_ports(2)
        done = run_cli("node", "--id", "node1", "--peers", f"node1=127.0.0.1:{p1},node7=127.0.0.1:{p2}",
                       "--data-dir", str(tmp_path / "node1"))
        assert done.returncode == 2 and "belongs to cluster" in done.stderr, done.stderr


def test_sigterm_stops_a_node_cleanly_and_a_taken_port_is_a_clear_error(tmp_path):
    with process_cluster(tmp_path, nodes=1) as cluster:
        cluster.start("node1")
        cluster.wait_for(lambda: (cluster.status("node1") or {}).get("state") == "LEADER", 20, "a one-node leader")
        # a second process on the same ports (another data dir) cannot listen: exit 1, one line
        argv = cluster.argv("node1")
        argv[argv.index("--data-dir") + 1] = str(tmp_path / "other")
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        assert done.returncode == 1 and "Traceback" not in done.stderr
        raft_host, raft_port = cluster.raft["node1"]
        assert f"cannot listen on the Raft address {raft_host}:{raft_port}: Address already in use" in done.stderr
        # its Raft port free but its HTTP port taken: the message names the HTTP address
        free, = free_ports(1)
        # the failed start left no data dir of its own making, so the retry on a free Raft port
        # may use the same --data-dir (before, the dir was bound to the taken port's --peers)
        assert not (tmp_path / "other").exists()
        argv[argv.index("--peers") + 1] = f"node1=127.0.0.1:{free}"
        other = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        http_host, http_port = cluster.http["node1"]
        assert other.returncode == 1 and f"on the HTTP address {http_host}:{http_port}" in other.stderr, other.stderr
        assert cluster.terminate("node1") == 0
        assert "stopped (log synced)" in cluster.log("node1")
        # a data dir that already was a node's keeps every file when its start cannot listen
        import socket

        kept = {p.name: p.read_bytes() for p in (tmp_path / "node1").iterdir() if p.is_file()}
        assert "meta.json" in kept and any(name.startswith("wal-") for name in kept), sorted(kept)
        with socket.socket() as holder:
            holder.bind(cluster.raft["node1"])
            holder.listen()
            done = subprocess.run(cluster.argv("node1"), capture_output=True, text=True, timeout=20)
        assert done.returncode == 1 and "cannot listen on the Raft address" in done.stderr, done.stderr
        assert {p.name: p.read_bytes() for p in (tmp_path / "node1").iterdir() if p.is_file()} == kept


# ---- the HTTP API --------------------------------------------------------------------------


def test_the_http_api_answers_orders_status_metrics_and_bad_requests(tmp_path):
    with process_cluster(tmp_path, nodes=3) as cluster:
        cluster.start_all()
        leader = cluster.wait_leader(20)
        follower = next(n for n in cluster.ids if n != leader)
        lurl, furl = cluster.urls[leader], cluster.urls[follower]
        order = {"client_id": "c1", "seq": 1, "symbol": "BTC-USD", "side": "buy", "price": 100.5, "qty": 2}
        cluster.wait_for(lambda: (cluster.status(follower) or {}).get("leader_url"), 10, "the follower to know the leader's URL")

        code, headers, doc = http_json(furl + "/api/orders", "POST", order)
        assert code == 421 and doc["leader"] == leader and doc["leader_url"] == lurl
        assert headers["location"] == lurl + "/api/orders"

        def post_to_leader(body: object) -> dict:
            """POST to the leader; on a loaded machine leadership may move meanwhile: follow it."""
            deadline = time.monotonic() + 10
            while True:
                code, _, doc = http_json(cluster.urls[cluster.wait_leader(10)] + "/api/orders", "POST", body)
                if code == 200:
                    return doc
                assert code in (421, 503) and time.monotonic() < deadline, (code, doc)

        doc = post_to_leader(order)
        assert doc["results"][0]["index"] >= 2 and doc["results"][0]["rejected"] is False
        doc = post_to_leader([order, {**order, "seq": 2}])
        leader = doc["node_id"]
        lurl = cluster.urls[leader]
        assert doc["results"][0] == {"client_id": "c1", "seq": 1, "index": None, "duplicate": True}
        assert doc["results"][1]["index"] > 0

        cluster.wait_for(lambda: (cluster.status(leader) or {}).get("peers_connected") == 2, 10, "both peers connected")
        status = cluster.must_status(leader)
        for key in ("node_id", "up", "state", "term", "leader_id", "commit_index", "last_applied", "log_length",
                    "peers_connected", "match_index", "last_contact_ms", "state_digest", "orders_applied",
                    "trades_executed", "snapshot_index"):
            assert key in status, key
        assert status["orders_applied"] == 2 and status["peers_connected"] == 2
        assert set(status["match_index"]) == set(cluster.ids) - {leader}

        bad = [
            (b"{not json", "not JSON"),
            (b"[]", "no orders"),
            (b'{"seq": 1, "symbol": "X", "side": "buy", "price": 1, "qty": 1}', "client_id"),
            (b'{"client_id": "c", "seq": true, "symbol": "X", "side": "buy", "price": 1, "qty": 1}', "seq"),
            (b'[{"client_id": "c", "seq": 9, "symbol": "X", "side": "buy", "price": 1, "qty": 1},'
             b' {"client_id": "c", "seq": 10, "symbol": "X", "side": "up", "price": 1, "qty": 1}]', "order 1: unknown side"),
        ]
        import http.client

        for body, message in bad:
            conn = http.client.HTTPConnection("127.0.0.1", cluster.http[leader][1], timeout=5)
            conn.request("POST", "/api/orders", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            import orjson

            doc = orjson.loads(resp.read())
            conn.close()
            assert resp.status == 400 and message in doc["error"] and doc["status"] == 400, (body, doc)
        assert cluster.must_status(leader)["orders_applied"] == 2, "a refused batch must apply nothing"

        code, headers, doc = http_json(lurl + "/api/status", "POST", {})
        assert code == 405 and "GET" in headers["allow"] and doc["status"] == 405
        code, _, doc = http_json(lurl + "/nope")
        assert code == 404 and "error" in doc

        code, headers, text = http_json(lurl + "/metrics")
        assert code == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
        assert f'raftctl_node_state{{node="{leader}",shard="0",state="LEADER"}} 1' in text.decode()
        assert f'raftctl_node_orders_acknowledged_total{{node="{leader}"}} 2' in text.decode()
        assert "raftctl_node_wal_fsyncs_total" in text.decode()
        code, _, doc = http_json(lurl + "/health")
        assert code == 200 and doc["leader"] == leader


def test_isolating_the_leader_through_the_control_endpoint_moves_leadership_and_heals(tmp_path):
    with process_cluster(tmp_path, nodes=3) as cluster:
        cluster.start_all()
        old = cluster.wait_leader(20)
        others = [n for n in cluster.ids if n != old]
        code, _, doc = http_json(cluster.urls[old] + "/api/control/isolate", "POST", {"peers": ["node9"]})
        assert code == 400 and "unknown peer" in doc["error"]
        code, _, doc = http_json(cluster.urls[old] + "/api/control/isolate", "POST", {"peers": [old]})
        assert code == 400 and "cannot be cut off from itself" in doc["error"], doc  # it said "unknown peer"
        code, _, doc = http_json(cluster.urls[old] + "/api/control/isolate", "POST", {"peers": others})
        assert code == 200 and doc["isolated"] == sorted(others)
        # an order sent to the cut-off leader cannot commit: once it steps down it says so (not 200)
        order = {"client_id": "iso", "seq": 1, "symbol": "BTC-USD", "side": "buy", "price": 10, "qty": 1}
        code, _, doc = http_json(cluster.urls[old] + "/api/orders", "POST", order, timeout=15)
        assert code in (421, 503), (code, doc)
        new = cluster.wait_leader(10, among=others)
        assert new != old
        # the cut-off leader steps down (check quorum) and says it reaches nobody
        cluster.wait_for(lambda: (cluster.status(old) or {}).get("state") != "LEADER", 5, "the old leader to step down")
        assert cluster.must_status(old)["peers_connected"] == 0
        code, _, doc = http_json(cluster.urls[old] + "/api/control/isolate", "POST", {"peers": []})
        assert code == 200 and doc["isolated"] == []
        client = OrderClient(cluster, "c1")
        send_until_acked(client, 5, 10)
        # the order the isolated leader could not commit, resubmitted: applied once
        retry = OrderClient(cluster, "iso")
        retry.pending = [order]
        deadline = time.monotonic() + 10
        while not retry.try_once():
            assert time.monotonic() < deadline, retry.errors
        reports = cluster.wait_for(lambda: caught_up(cluster, 6), 10, "all three to agree after the heal")
        assert {r["orders_applied"] for r in reports.values()} == {6}


def test_one_request_of_the_largest_batch_commits_without_deposing_its_leader(tmp_path):
    """20,000 orders in one POST (1.9 MB, the most a request may carry) were proposed in one
    loop turn that held the leader past its followers' election timeout: it was deposed every
    time and answered 503. They are spread over turns now, and so are the followers' steps and
    everyone's applies (a leader applying the whole batch in one turn was deposed under load);
    the answer comes once all applied."""
    from raftctl.node.http_api import MAX_ORDERS
    from raftctl.node.process import APPLY_PER_TURN, PROPOSE_PER_TURN, STEP_ENTRIES_PER_TURN

    # the request takes many turns to propose, to step and to apply
    assert MAX_ORDERS > 10 * max(PROPOSE_PER_TURN, STEP_ENTRIES_PER_TURN, APPLY_PER_TURN)
    with process_cluster(tmp_path, nodes=3) as cluster:
        cluster.start_all()
        leader = cluster.wait_leader(20)
        term = cluster.must_status(leader)["term"]
        client = OrderClient(cluster, "big")
        client.new_batch(MAX_ORDERS)
        code, _, doc = http_json(cluster.urls[leader] + "/api/orders", "POST", client.pending, timeout=30)
        assert code == 200, (code, doc)
        indexes = [r["index"] for r in doc["results"]]
        assert [r["seq"] for r in doc["results"]] == list(range(1, MAX_ORDERS + 1))
        assert indexes == sorted(indexes) and len(set(indexes)) == MAX_ORDERS, "in order, each once"
        reports = cluster.wait_for(lambda: caught_up(cluster, MAX_ORDERS), 20, "all three to apply the batch")
        assert {r["orders_applied"] for r in reports.values()} == {MAX_ORDERS}
        assert {r["term"] for r in reports.values()} == {term}, "the leader was deposed"
        assert cluster.must_status(leader)["state"] == "LEADER"


# ---- faults ----------------------------------------------------------------------------------


def test_kill_9_of_the_leader_then_a_new_leader_commits_and_restarts_keep_the_data(tmp_path):
    with process_cluster(tmp_path, nodes=3) as cluster:
        cluster.start_all()
        old = cluster.wait_leader(20)
        client = OrderClient(cluster, "c1")
        for _ in range(5):
            send_until_acked(client, 20, 10)
        assert len(client.acked) == 100
        cluster.kill(old)
        killed_at = time.monotonic()
        send_until_acked(client, 1, 10)
        failover_s = time.monotonic() - killed_at
        new = cluster.leader()
        assert new != old and failover_s < 3.0, failover_s
        cluster.start(old)
        reports = cluster.wait_for(lambda: caught_up(cluster, 101), 20, "the restarted node to catch up")
        assert {r["orders_applied"] for r in reports.values()} == {101}
        digest = reports[old]["state_digest"]
        applied = reports[old]["last_applied"]
        # every node stops cleanly, comes back from its own disk, and has the same state
        for nid in cluster.ids:
            assert cluster.terminate(nid) == 0
        cluster.start_all()
        cluster.wait_leader(20)
        reports = cluster.wait_for(lambda: caught_up(cluster, applied), 20, "the cluster back from disk")
        assert {r["state_digest"] for r in reports.values()} == {digest}
        assert {r["orders_applied"] for r in reports.values()} == {101}
        # a resubmission of acknowledged orders applies nothing twice
        client.pending = [client.order(seq) for seq in range(1, 21)]
        deadline = time.monotonic() + 10
        while not client.try_once():
            assert time.monotonic() < deadline
        reports = cluster.wait_for(lambda: caught_up(cluster, applied), 10, "agreement after the resubmission")
        assert {r["orders_applied"] for r in reports.values()} == {101}


def test_durability_every_acknowledged_order_survives_rounds_of_kill_9_of_every_node(tmp_path):
    """The issue's durability test: 50 rounds of kill -9 of all nodes at a random instant under load."""
    rounds = 50
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    # `python -m raftctl.node`: the same node process as `raftctl node`, restarted twice as fast
    # a small snapshot threshold: many snapshots and compactions, so kills land in them too
    with process_cluster(tmp_path, nodes=3, use_cli=False, extra_args=["--snapshot-threshold", "500"]) as cluster:
        clients = [OrderClient(cluster, f"c{i}", seed=seed + i) for i in range(4)]
        draining = threading.Event()  # set: finish the batch in hand, start no new one
        stop = threading.Event()
        failures: list[BaseException] = []

        def drive(client: OrderClient) -> None:
            try:
                while not stop.is_set():
                    if not client.pending:
                        if draining.is_set():
                            return
                        client.new_batch(10)
                    if not client.try_once(timeout=1.0):
                        stop.wait(0.01)
            except BaseException as err:  # reported by the main thread
                failures.append(err)

        threads = [threading.Thread(target=drive, args=(c,), daemon=True) for c in clients]
        for t in threads:
            t.start()
        acked_per_round = []
        started = time.monotonic()
        try:
            for _round in range(rounds):
                before = sum(len(c.acked) for c in clients)
                cluster.start_all()
                cluster.wait_leader(20)
                # the load runs; kill every node at a random instant of the next 0.4 s
                time.sleep(rng.uniform(0.0, 0.4))
                cluster.kill_all()
                acked_per_round.append(sum(len(c.acked) for c in clients) - before)
                assert not failures, failures
            cluster.start_all()
            cluster.wait_leader(20)
            draining.set()
            cluster.wait_for(lambda: not any(t.is_alive() for t in threads), 30,
                             "every client's last batch to be acknowledged")
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=5)
        assert not failures, failures
        assert all(not c.pending for c in clients)  # nothing in flight: all that was sent is acknowledged
        total = sum(len(c.acked) for c in clients)
        assert total == sum(c.next_seq - 1 for c in clients)
        # every order is one log entry: all nodes must have applied at least that many
        reports = cluster.wait_for(lambda: caught_up(cluster, total), 20, "all nodes to apply everything")
        applied = {nid: r["orders_applied"] for nid, r in reports.items()}
        assert set(applied.values()) == {total}, f"seed {seed}: acknowledged {total}, applied {applied}"
        assert len({r["state_digest"] for r in reports.values()}) == 1
        # resubmitting every acknowledged order applies nothing twice
        for c in clients:
            for start in range(1, c.next_seq, 200):
                c.pending = [c.order(s) for s in range(start, min(start + 200, c.next_seq))]
                deadline = time.monotonic() + 10
                while not c.try_once():
                    assert time.monotonic() < deadline
        reports = cluster.wait_for(lambda: caught_up(cluster, total), 20, "agreement after resubmitting")
        assert {r["orders_applied"] for r in reports.values()} == {total}
        elapsed = time.monotonic() - started
        rounds_with_acks = sum(1 for n in acked_per_round if n)
        print(f"durability: seed {seed}, {rounds} rounds in {elapsed:.1f} s, {total} orders acknowledged, "
              f"{rounds_with_acks} rounds acknowledged orders before the kill")
        assert rounds_with_acks >= rounds // 2, acked_per_round
