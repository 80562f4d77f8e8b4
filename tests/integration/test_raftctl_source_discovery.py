"""The raftctl source finds a cluster's whole membership from the nodes' own reports
(``members``, ``peer_urls``, ``cluster_id``) and says what went wrong at start in one line.

The nodes here are fake: small HTTP servers answering ``GET /api/status`` with a report the test
changes as it goes (no node processes; tests/e2e/test_node_source.py does it with real ones).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

from raftctl.sources import SourceError, build_source
from raftctl.sources.raftctl_http import RaftctlSource

CLUSTER = "c0ffee0000000001"
OTHER = "beef000000000002"


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then closed: refused until someone takes it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeNode:
    """One fake `raftctl node` HTTP API; ``doc`` is what GET /api/status answers (status ``code``)."""

    def __init__(self, node_id: str, members: list[str], cluster_id: str = CLUSTER) -> None:
        self.code = 200
        self.doc: dict[str, Any] = {
            "node_id": node_id, "state": "FOLLOWER", "term": 2, "leader_id": None, "commit_index": 5,
            "last_applied": 5, "log_length": 5, "peers_connected": len(members) - 1, "match_index": {},
            "last_contact_ms": {}, "cluster_id": cluster_id, "members": list(members), "peer_urls": {},
            "leader_url": None,
        }
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                fake.requests += 1
                if self.path == "/api/status" and fake.code == 200:
                    body, code = orjson.dumps(fake.doc), 200
                else:
                    body, code = orjson.dumps({"error": "no such endpoint", "status": 404}), fake.code
                    code = 404 if code == 200 else code
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                fake.connections.append(self.connection)

        self.requests = 0
        self.connections: list[socket.socket] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.doc["http"] = self.url
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop listening and drop the kept-alive connections: as a killed node's port, refused."""
        self.server.shutdown()
        self.server.server_close()
        for conn in self.connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def nodes() -> Iterator[Callable[..., FakeNode]]:
    made: list[FakeNode] = []

    def make(node_id: str, members: list[str], cluster_id: str = CLUSTER) -> FakeNode:
        node = FakeNode(node_id, members, cluster_id)
        made.append(node)
        return node
    yield make
    for node in made:
        node.close()


def fake_cluster(make: Callable[..., FakeNode], n: int = 3, leader: int = 3) -> dict[str, FakeNode]:
    """n fake nodes of one cluster that know each other's URLs; node``leader`` leads."""
    ids = [f"node{i}" for i in range(1, n + 1)]
    cluster = {nid: make(nid, ids) for nid in ids}
    lead = ids[leader - 1]
    for nid, node in cluster.items():
        node.doc["peer_urls"] = {p: cluster[p].url for p in ids if p != nid}
        node.doc["leader_id"] = lead
        node.doc["leader_url"] = cluster[lead].url
    cluster[lead].doc["state"] = "LEADER"
    return cluster


def test_one_members_url_is_enough_to_watch_the_whole_cluster(nodes) -> None:
    cluster = fake_cluster(nodes)
    with build_source("raftctl:" + cluster["node1"].url, timeout=0.5) as source:
        assert source.members() == ["node1", "node2", "node3"]
        assert source.member_urls() == {nid: node.url for nid, node in cluster.items()}
        poll = source.poll()
        assert poll.reached == 3
        assert poll.answers["node3"].report is not None and poll.answers["node3"].report["state"] == "LEADER"


def test_the_collector_sees_the_leader_of_a_cluster_given_by_one_url(nodes) -> None:
    from raftctl.runtime.collector import MetricsCollector

    cluster = fake_cluster(nodes)
    leader = cluster["node3"]
    leader.doc["match_index"] = {"node1": 5, "node2": 5}
    leader.doc["last_contact_ms"] = {"node1": 10, "node2": 10}
    collector = MetricsCollector(collection_interval=0.5, retention_period=60)
    with build_source("raftctl:" + cluster["node1"].url, timeout=0.5) as source:
        collector.set_source(source)
        collector.collect()
        doc = collector.latest()
    assert doc is not None
    assert doc["cluster"]["cluster_size"] == 3 and doc["cluster"]["leader"] == "node3", doc["cluster"]
    assert doc["cluster"]["health_status"] == "HEALTHY", doc["cluster"]


def test_a_member_that_is_down_at_start_is_watched_and_down_with_its_reason(nodes) -> None:
    cluster = fake_cluster(nodes)
    gone = cluster.pop("node2")
    gone.close()  # its port is closed: refused; the others still announce its URL
    with build_source("raftctl:" + cluster["node3"].url, timeout=0.5) as source:
        assert source.members() == ["node1", "node2", "node3"]
        poll = source.poll()
        assert poll.answers["node2"].reason == "refused", poll.answers["node2"]
        assert poll.answers["node1"].report is not None


def test_a_member_nobody_knows_the_url_of_is_down_until_a_peer_announces_it(nodes) -> None:
    cluster = fake_cluster(nodes)
    for node in cluster.values():
        node.doc["peer_urls"].pop("node2", None)
    with build_source("raftctl:" + cluster["node1"].url, timeout=0.5) as source:
        assert source.members() == ["node1", "node2", "node3"]
        answer = source.poll().answers["node2"]
        assert answer.report is None and answer.reason == "error" and "node2=" in answer.detail, answer
        cluster["node3"].doc["peer_urls"]["node2"] = cluster["node2"].url  # node2 connected to node3
        source.poll()  # the poll that hears of it
        assert source.poll().answers["node2"].report is not None
        assert source.member_urls()["node2"] == cluster["node2"].url


def test_the_membership_stays_when_the_node_it_came_from_restarts(nodes) -> None:
    cluster = fake_cluster(nodes)
    with build_source("raftctl:" + cluster["node1"].url, timeout=0.5) as source:
        assert source.poll().reached == 3
        # node1 restarted: it has heard from no peer yet, so it announces no URL
        cluster["node1"].doc["peer_urls"] = {}
        for node in cluster.values():
            node.doc["peer_urls"] = {}
        poll = source.poll()
        assert source.members() == ["node1", "node2", "node3"] and poll.reached == 3, poll.answers


def test_a_member_that_moved_is_followed_through_its_peers_word(nodes) -> None:
    cluster = fake_cluster(nodes)
    with build_source("raftctl:" + cluster["node1"].url, timeout=0.5) as source:
        assert source.poll().reached == 3
        old = cluster["node2"]
        old.close()
        moved = nodes("node2", ["node1", "node2", "node3"])
        moved.doc.update(peer_urls={"node1": cluster["node1"].url, "node3": cluster["node3"].url})
        assert source.poll().answers["node2"].reason == "refused"
        for nid in ("node1", "node3"):
            cluster[nid].doc["peer_urls"]["node2"] = moved.url
        source.poll()
        assert source.poll().answers["node2"].report is not None
        assert source.member_urls()["node2"] == moved.url


def test_given_urls_beat_announced_ones(nodes) -> None:
    cluster = fake_cluster(nodes)
    localhost = cluster["node2"].url.replace("127.0.0.1", "localhost")
    with build_source(f"raftctl:{cluster['node1'].url},{localhost}", timeout=0.5) as source:
        assert source.member_urls()["node2"] == localhost
        assert source.poll().reached == 3
        assert source.member_urls()["node2"] == localhost


def test_named_specs_still_work_and_discover_the_rest(nodes) -> None:
    cluster = fake_cluster(nodes)
    spec = "raftctl:" + ",".join(f"{nid}={node.url}" for nid, node in cluster.items())
    with build_source(spec, timeout=0.5) as source:
        assert source.member_urls() == {nid: node.url for nid, node in cluster.items()}
    with build_source(f"raftctl:node2={cluster['node2'].url}", timeout=0.5) as source:
        assert source.members() == ["node1", "node2", "node3"]


def test_named_nodes_down_at_start_are_watched_and_the_rest_found_when_one_answers(nodes) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with build_source(f"raftctl:node1={url}", timeout=0.5) as source:
        assert source.members() == ["node1"]
        assert source.poll().answers["node1"].reason == "refused"
    cluster = fake_cluster(nodes)
    down = cluster["node1"]
    code = down.code
    down.code = 503  # starting: it answers, but not yet its report
    with build_source(f"raftctl:node1={down.url}", timeout=0.5) as source:
        assert source.members() == ["node1"]
        assert source.poll().answers["node1"].reason == "error"
        down.code = code  # it is up: its report names the members, its peers' URLs
        assert source.poll().answers["node1"].report is not None
        assert source.members() == ["node1", "node2", "node3"]
        assert source.poll().reached == 3


def test_a_node_of_another_cluster_among_the_urls_is_refused_at_start(nodes) -> None:
    cluster = fake_cluster(nodes)
    stranger = nodes("node1", ["node1", "node2", "node3"], cluster_id=OTHER)
    with pytest.raises(SourceError, match=r"another cluster") as err:
        build_source(f"raftctl:{cluster['node1'].url},{stranger.url}", timeout=0.5)
    assert stranger.url in str(err.value) and "\n" not in str(err.value)


def test_a_node_that_turns_into_another_clusters_is_an_error_in_the_polls(nodes) -> None:
    cluster = fake_cluster(nodes)
    with build_source("raftctl:" + cluster["node1"].url, timeout=0.5) as source:
        assert source.poll().reached == 3
        cluster["node2"].doc["cluster_id"] = OTHER
        answer = source.poll().answers["node2"]
        assert answer.report is None and answer.reason == "error" and "another cluster" in answer.detail, answer
        cluster["node2"].doc["node_id"] = "nodeX"
        cluster["node2"].doc["cluster_id"] = CLUSTER
        answer = source.poll().answers["node2"]
        assert answer.report is None and answer.reason == "error" and "nodeX" in answer.detail, answer


@pytest.mark.parametrize("spec, message", [
    ("raftctl:nodeX={url1}", r"nodeX=.* answers as node1"),
    ("raftctl:node9={down}", r"node9 is not a member .*node1, node2, node3"),
    ("raftctl:{url1},{down}", r"did not answer .*is none of the members' URLs"),
])
def test_a_spec_that_disagrees_with_the_membership_is_one_clear_line(nodes, spec: str, message: str) -> None:
    cluster = fake_cluster(nodes)
    spec = spec.format(url1=cluster["node1"].url, down=f"http://127.0.0.1:{closed_port()}")
    if "node9" in spec:
        spec += f",node1={cluster['node1'].url}"
    with pytest.raises(SourceError, match=message) as err:
        build_source(spec, timeout=0.5)
    assert "\n" not in str(err.value)


def test_a_down_url_is_taken_for_the_one_member_whose_url_nobody_knows(nodes) -> None:
    cluster = fake_cluster(nodes)
    for node in cluster.values():
        node.doc["peer_urls"].pop("node2", None)
    down = f"http://127.0.0.1:{closed_port()}"
    with build_source(f"raftctl:{cluster['node1'].url},{down}", timeout=0.5) as source:
        assert source.member_urls()["node2"] == down
        assert source.poll().answers["node2"].reason == "refused"


def test_a_url_that_is_not_a_raftctl_node_says_what_it_answered(nodes) -> None:
    web = nodes("node1", ["node1"])
    web.code = 404  # a dashboard, an etcd member: 404 at once
    started = time.monotonic()
    with pytest.raises(SourceError) as err:
        build_source("raftctl:" + web.url, timeout=0.5)
    assert str(err.value) == f"{web.url} answered 404 to GET /api/status: not a raftctl node"
    assert time.monotonic() - started < 0.9
    cluster = fake_cluster(nodes)
    with pytest.raises(SourceError, match=r"answered 404 to GET /api/status: not a raftctl node"):
        build_source(f"raftctl:{cluster['node1'].url},{web.url}", timeout=0.5)


def test_no_node_answering_at_start_says_why_for_each(nodes) -> None:
    a, b = (f"http://127.0.0.1:{closed_port()}" for _ in range(2))
    with pytest.raises(SourceError) as err:
        build_source(f"raftctl:{a}", timeout=0.5)
    text = str(err.value)
    assert text.startswith(f"{a} did not answer GET /api/status: connection refused"), text
    assert "node1=URL" in text
    with pytest.raises(SourceError) as err:
        build_source(f"raftctl:{a},{b}", timeout=0.5)
    text = str(err.value)
    assert f"{a}: connection refused" in text and f"{b}: connection refused" in text, text


def test_the_empty_spec_example_survives_the_cli(capsys) -> None:
    from raftctl.cli import run

    assert run(["serve", "--source", "raftctl:"]) == 2
    err = capsys.readouterr().err
    assert "needs the nodes' HTTP URLs" in err and ",." not in err and "..." not in err, err
    assert len(err.strip().splitlines()) == 1


def test_a_source_built_directly_still_watches_exactly_its_members(nodes) -> None:
    cluster = fake_cluster(nodes)
    with RaftctlSource({"node1": cluster["node1"].url}, timeout=0.5) as source:
        # built without discovery (as the tests of the HTTP client do): it learns the rest
        # from the first report, as a named spec whose nodes were down at start does
        source.poll()
        assert source.members() == ["node1", "node2", "node3"]
