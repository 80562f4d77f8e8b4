"""The etcd source against real etcd members (Debian's etcd-server; scripts/test.sh installs it).

Each test gets a fresh 3-member cluster (``etcd3``, tests/etcd_fixtures.py) and kills or stops
real processes. Everything that takes time waits on a condition with a deadline.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from etcd_fixtures import etcd3, put_key  # noqa: F401 - the fixture

from raftctl.core.source import Poll, SourceError
from raftctl.runtime.etcd_cluster import EtcdCluster
from raftctl.sources import build_source
from raftctl.sources.etcd import EtcdClientView, EtcdSource, _parse_metrics, parse_urls

TIMEOUT_S = 0.4
SLACK_S = 0.25  # thread wake-ups on a shared 2-core machine


@pytest.fixture
def source(etcd3: EtcdCluster) -> Iterator[EtcdSource]:  # noqa: F811 - the fixture above
    # one URL is enough: the others come from the member list
    built = build_source(f"etcd:{etcd3.client_urls[0]}", timeout=TIMEOUT_S)
    assert isinstance(built, EtcdSource)
    try:
        yield built
    finally:
        built.close()


def poll_until(source: EtcdSource, predicate: Callable[[Poll], Any], timeout: float) -> Poll:
    deadline = time.monotonic() + timeout
    while True:
        poll = source.poll()
        if predicate(poll):
            return poll
        if time.monotonic() > deadline:
            states = {n: (a.reason, a.report and (a.report["state"], a.report["term"], a.report["leader_id"]))
                      for n, a in poll.answers.items()}
            raise AssertionError(f"condition not met within {timeout} s; last poll: {states}")
        time.sleep(0.1)


def leaders(poll: Poll) -> list[str]:
    return [n for n, a in poll.answers.items() if a.report is not None and a.report["state"] == "LEADER"]


def settled_on(poll: Poll, leader: str, among: list[str]) -> bool:
    """``leader`` leads and every member of ``among`` answered and follows it in its term."""
    lead = poll.answers[leader].report
    if lead is None or lead["state"] != "LEADER":
        return False
    return all(poll.answers[n].report is not None and poll.answers[n].report["leader_id"] == leader  # type: ignore[index]
               and poll.answers[n].report["term"] == lead["term"] for n in among)  # type: ignore[index]


def client_of(poll: Poll) -> EtcdClientView:
    assert isinstance(poll.client, EtcdClientView), poll.client
    return poll.client


def timed_poll(source: EtcdSource) -> tuple[Poll, float]:
    started = time.monotonic()
    poll = source.poll()
    return poll, time.monotonic() - started


# ---------------------------------------------------------------------- a healthy cluster


def test_one_url_finds_every_member_and_each_report_has_the_source_shape(
        etcd3: EtcdCluster, source: EtcdSource) -> None:  # noqa: F811
    assert sorted(source.members()) == ["etcd1", "etcd2", "etcd3"]
    assert source.member_urls() == {m.name: m.client_url for m in etcd3.members.values()}
    poll = poll_until(source, lambda p: p.reached == 3 and len(leaders(p)) == 1, 10)
    (leader,) = leaders(poll)
    assert leader == etcd3.leader()
    followers = sorted(set(source.members()) - {leader})
    ids = etcd3.member_ids()
    for name, answer in poll.answers.items():
        report = answer.report
        assert report is not None and answer.reason is None
        assert answer.poll_ms is not None and 0 < answer.poll_ms < TIMEOUT_S * 1000 + 100
        assert report["node_id"] == name and ids[report["member_id"]] == name
        assert report["leader_id"] == leader  # a member name, not a hex or decimal ID
        assert report["term"] == poll.answers[leader].report["term"] >= 2  # type: ignore[index]
        assert report["commit_index"] >= report["last_applied"] >= 1
        assert report["log_length"] >= report["commit_index"]
        assert report["peers_connected"] == 2
        assert report["has_leader"] is True
        # no etcd meaning: None, never a fake 0
        assert report["state_digest"] is None and report["trades_executed"] is None
        assert report["orders_applied"] is None
        if name == leader:
            assert report["state"] == "LEADER"
            assert sorted(report["match_index"]) == followers
            assert all(0 < m <= report["log_length"] for m in report["match_index"].values())
            assert report["last_contact_ms"] == {f: 0.0 for f in followers}
        else:
            assert report["state"] == "FOLLOWER"
            assert report["match_index"] == {} and report["last_contact_ms"] == {}
    client = poll.client
    assert isinstance(client, EtcdClientView)
    assert client.orders_submitted is None and client.orders_acknowledged is None
    # committed entries counted from the source's first answering poll: the highest index's growth
    highest = max(a.report["commit_index"] for a in poll.answers.values())  # type: ignore[index]
    assert client.proposals_committed is not None and 0 <= client.proposals_committed < highest
    for i in range(5):
        put_key(etcd3.client_urls[0], f"k{i}")
    # the probe read answered: one latency per poll, a real round trip
    latest = source.poll(since=poll.now)
    probe = client_of(latest)
    assert probe.probe_error is None, probe
    assert len(probe.latencies_ms) == 1 and 0 < probe.latencies_ms[0] < TIMEOUT_S * 1000
    assert probe.probe_member == leader
    assert latest.now > poll.now
    grown = max(a.report["commit_index"] for a in latest.answers.values()) - highest  # type: ignore[index]
    assert grown >= 5 and probe.proposals_committed == client.proposals_committed + grown


def test_members_take_turns_with_metrics_and_a_member_back_from_silence_asks_at_once(
        etcd3: EtcdCluster, source: EtcdSource) -> None:  # noqa: F811
    """/metrics is asked every metrics_every-th poll of a member, the members staggered; every
    report says how old its /metrics series are; a member that was silent asks at its next answer."""
    poll_until(source, lambda p: p.reached == 3, 10)
    every = source.metrics_every
    assert every == 3
    for _ in range(every + 1):  # a change (here: the first polls) has everyone ask for a while
        first = source.poll()
        assert all(a.report is not None for a in first.answers.values()), first
    fresh: dict[str, list[bool]] = {name: [] for name in source.members()}
    for _ in range(2 * every):
        poll = source.poll()
        for name, answer in poll.answers.items():
            assert answer.report is not None, answer
            age = answer.report["metrics_age_s"]
            assert 0 <= age < every * 1.0 + 1.0, answer.report
            fresh[name].append(age == 0)
    assert all(flags.count(True) == 2 for flags in fresh.values()), fresh
    # staggered: not every member asks in the same poll
    assert len({tuple(flags) for flags in fresh.values()}) == len(fresh), fresh
    follower = next(n for n in source.members() if n != etcd3.leader())
    etcd3.pause(follower)
    try:
        poll_until(source, lambda p: p.answers[follower].reason == "timeout", 10)
    finally:
        etcd3.resume(follower)
    back = poll_until(source, lambda p: p.answers[follower].report is not None, 10)
    assert back.answers[follower].report["metrics_age_s"] == 0  # type: ignore[index]
    # the member came back: for the next polls every member asks, the leader's view included
    for _ in range(every):
        poll = source.poll()
        assert all(a.report is not None and a.report["metrics_age_s"] == 0 for a in poll.answers.values()), poll


def test_the_probe_never_writes(etcd3: EtcdCluster, source: EtcdSource) -> None:  # noqa: F811
    """Many polls later the cluster's revision has not moved: the probe only reads."""
    import json

    from raftctl.runtime.etcd_cluster import _http

    def revision() -> int:
        status, body = _http(etcd3.client_urls[0], "POST", "/v3/kv/range", b'{"key": "AA=="}', 2.0)
        assert status == 200
        return int(json.loads(body)["header"]["revision"])

    before = revision()
    for _ in range(20):
        assert source.poll().client.probe_error is None  # type: ignore[union-attr]
    assert revision() == before


# ---------------------------------------------------------------------- faults on real processes


def test_kill_9_of_a_follower_is_refused_at_once_and_the_leader_loses_contact(
        etcd3: EtcdCluster, source: EtcdSource) -> None:  # noqa: F811
    poll = poll_until(source, lambda p: p.reached == 3 and len(leaders(p)) == 1, 10)
    (leader,) = leaders(poll)
    victim = next(n for n in source.members() if n != leader)
    etcd3.kill(victim)
    poll, took = timed_poll(source)
    answer = poll.answers[victim]
    assert answer.report is None and answer.reason == "refused", answer
    assert took < TIMEOUT_S + SLACK_S  # a refused connection does not wait for the timeout
    assert all(poll.answers[n].report is not None for n in source.members() if n != victim)
    # the leader stays; its transport loses the dead peer: contact age grows, active peers drop
    later = poll_until(source, lambda p: (p.answers[leader].report or {}).get("peers_connected") == 1, 10)
    lead = later.answers[leader].report
    assert lead is not None and lead["state"] == "LEADER"
    first = lead["last_contact_ms"][victim]
    assert first > 0
    again = source.poll().answers[leader].report
    assert again is not None and again["last_contact_ms"][victim] > first
    survivor = next(n for n in source.members() if n not in (leader, victim))
    assert again["last_contact_ms"][survivor] == 0.0

    # restart from the data dir: it answers again, follows the leader, and contact is back to 0;
    # from the first poll in which it says it follows the leader in its term, not seconds later
    # when the leader's progress and stream metrics catch up (a false node_lagging at each return)
    etcd3.restart(victim)
    following = []

    def back(p: Poll) -> bool:
        own, lead = p.answers[victim].report, p.answers[leader].report
        if own is not None and lead is not None and own["state"] == "FOLLOWER" \
                and own["leader_id"] == leader and own["term"] == lead["term"]:
            following.append(lead["last_contact_ms"].get(victim))
        return settled_on(p, leader, source.members()) \
            and (p.answers[leader].report or {}).get("last_contact_ms", {}).get(victim) == 0.0

    poll_until(source, back, 20)
    assert following and set(following) == {0.0}, following


def test_a_new_leader_counts_its_followers_contact_from_its_election_not_the_old_leaders(
        etcd3: EtcdCluster, source: EtcdSource) -> None:  # noqa: F811
    """After kill -9 of the leader the election takes about a second; the new leader's progress is
    StateProbe until its first appends are answered. Its contact with the surviving follower must
    not be read as "not heard since the old leader last did" (a false node_lagging)."""
    poll = poll_until(source, lambda p: p.reached == 3 and len(leaders(p)) == 1, 10)
    (old,) = leaders(poll)
    etcd3.kill(old)
    deadline = time.monotonic() + 15
    while True:
        poll = source.poll()
        new = [n for n in leaders(poll) if n != old]
        if new:
            break
        assert time.monotonic() < deadline, "no new leader"
        time.sleep(0.2)
    (leader,) = new
    follower = next(n for n in source.members() if n not in (old, leader))
    lead = poll.answers[leader].report
    assert lead is not None and lead["last_contact_ms"][follower] == 0.0, lead
    assert lead["last_contact_ms"][old] == 0.0  # counted from now: refused, so it backs nobody anyway
    # the dead one's contact then grows; the follower's stays within a poll of 0
    poll = poll_until(source, lambda p: (p.answers[leader].report or {}).get("last_contact_ms", {}).get(old, 0) > 0, 10)
    assert poll.answers[leader].report["last_contact_ms"][follower] < 1000.0  # type: ignore[index]


def test_sigstop_of_the_leader_times_out_without_delaying_the_poll_and_the_others_elect(
        etcd3: EtcdCluster, source: EtcdSource) -> None:  # noqa: F811
    poll = poll_until(source, lambda p: p.reached == 3 and len(leaders(p)) == 1, 10)
    (old,) = leaders(poll)
    old_term = poll.answers[old].report["term"]  # type: ignore[index]
    others = [n for n in source.members() if n != old]
    etcd3.pause(old)
    poll, took = timed_poll(source)
    assert poll.answers[old].report is None and poll.answers[old].reason == "timeout"
    assert took < TIMEOUT_S + SLACK_S, f"a stopped member delayed the poll: {took:.3f} s"
    assert all(poll.answers[n].report is not None for n in others)

    def new_leader(p: Poll) -> bool:
        ls = [n for n in leaders(p) if n in others]
        return len(ls) == 1 and settled_on(p, ls[0], others)

    elected = poll_until(source, new_leader, 15)
    (new,) = leaders(elected)
    assert new != old and elected.answers[new].report["term"] > old_term  # type: ignore[index]
    assert elected.answers[old].reason == "timeout"

    etcd3.resume(old)
    back = poll_until(source, lambda p: settled_on(p, new, source.members()), 15)
    assert back.answers[old].report["state"] == "FOLLOWER"  # type: ignore[index]
    assert back.answers[old].report["leader_id"] == new  # type: ignore[index]


def test_a_stopped_follower_times_out_every_poll_within_the_deadline(
        etcd3: EtcdCluster, source: EtcdSource) -> None:  # noqa: F811
    poll = poll_until(source, lambda p: p.reached == 3 and len(leaders(p)) == 1, 10)
    (leader,) = leaders(poll)
    victim = next(n for n in source.members() if n != leader)
    etcd3.pause(victim)
    durations = []
    for _ in range(5):
        poll, took = timed_poll(source)
        durations.append(took)
        assert poll.answers[victim].reason == "timeout"
        assert poll.answers[leader].report is not None
        assert client_of(poll).probe_error is None  # the leader still serves reads
    assert max(durations) < TIMEOUT_S + SLACK_S, durations
    etcd3.resume(victim)
    poll_until(source, lambda p: settled_on(p, leader, source.members()), 15)


def test_kill_9_of_two_members_leaves_a_leaderless_survivor(
        etcd3: EtcdCluster, source: EtcdSource) -> None:  # noqa: F811
    poll = poll_until(source, lambda p: p.reached == 3 and len(leaders(p)) == 1, 10)
    (leader,) = leaders(poll)
    follower = next(n for n in source.members() if n != leader)
    survivor = next(n for n in source.members() if n not in (leader, follower))
    etcd3.kill(leader)
    etcd3.kill(follower)

    def leaderless(p: Poll) -> bool:
        report = p.answers[survivor].report
        return report is not None and report["state"] in ("CANDIDATE", "PRE_CANDIDATE") \
            and report["leader_id"] is None
    poll = poll_until(source, leaderless, 15)
    assert poll.answers[leader].reason == "refused" and poll.answers[follower].reason == "refused"
    # has_leader and peers_connected come from /metrics, asked every metrics_every-th poll
    for _ in range(source.metrics_every):
        report = poll.answers[survivor].report
        assert report is not None
        if report["has_leader"] is False and report["peers_connected"] == 0:
            break
        poll = source.poll(since=poll.now)
    assert report["has_leader"] is False and report["peers_connected"] == 0, report
    # no linearizable read without a leader: the probe fails rather than report a latency
    after = client_of(source.poll(since=poll.now))
    assert after.latencies_ms == [] and after.probe_error, after


# ---------------------------------------------------------------------- bad specs and bad URLs


@pytest.mark.parametrize("spec, message", [
    ("etcd", "needs at least one client URL"),
    ("etcd:", "needs at least one client URL"),
    ("etcd:http://127.0.0.1:2379,,http://127.0.0.1:2380", "empty URL"),
    ("etcd:ftp://127.0.0.1:2379", "must be http://HOST:PORT"),
    ("etcd:https://127.0.0.1:2379", "https (TLS)"),
    ("etcd:http://127.0.0.1:99999", "bad port"),
    ("etcd:http://:2379", "no host"),
    ("etcd:http://127.0.0.1:2379/v3", "no path"),
    ("etcd:http://user@127.0.0.1:2379", "no path, query or user"),
])
def test_bad_specs_give_one_clear_line(spec: str, message: str) -> None:
    with pytest.raises(SourceError) as caught:
        build_source(spec)
    text = str(caught.value)
    assert message in text and "\n" not in text


def test_a_password_in_a_source_url_is_never_echoed() -> None:
    """`--source etcd:http://user:pw@...` repeated user:pw in its error (session 23's etcd tester)."""
    for spec in ("etcd:http://monitor:s3cr3t@127.0.0.1:2379", "raftctl:http://monitor:s3cr3t@127.0.0.1:7101"):
        with pytest.raises(SourceError) as caught:
            build_source(spec)
        text = str(caught.value)
        assert "s3cr3t" not in text and "monitor" not in text and "***@127.0.0.1" in text, text
    with pytest.raises(SourceError, match="RAFTCTL_ETCD_USER"):
        build_source("etcd:http://monitor:s3cr3t@127.0.0.1:2379")


def test_bad_timeouts_are_refused() -> None:
    with pytest.raises(SourceError, match="below the interval"):
        build_source("etcd:http://127.0.0.1:2379", timeout=1.0, interval=1.0)
    with pytest.raises(SourceError, match="positive"):
        build_source("etcd:http://127.0.0.1:2379", timeout=0)


def test_an_unreachable_url_is_a_clear_error() -> None:
    from raftctl.runtime.etcd_cluster import free_ports
    port = free_ports(1)[0]
    with pytest.raises(SourceError) as caught:
        build_source(f"etcd:http://127.0.0.1:{port}", timeout=0.3)
    assert str(caught.value) == f"cannot reach etcd at http://127.0.0.1:{port}: connection refused"


class _NotEtcd(http.server.BaseHTTPRequestHandler):
    """An HTTP server that is not etcd: 404 for everything, or (``html``) 200 with a web page."""

    html = False

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        if self.html:
            body = b"<html>hello</html>"
            self.send_response(200)
        else:
            body = b"404 page not found"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        return None


class _WebPage(_NotEtcd):
    html = True


@pytest.mark.parametrize("handler", [_NotEtcd, _WebPage], ids=["404", "html"])
def test_a_non_etcd_url_is_a_clear_error(handler: type[_NotEtcd]) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        with pytest.raises(SourceError) as caught:
            build_source(f"etcd:{url}", timeout=0.5)
        text = str(caught.value)
        assert text.startswith(f"{url} does not look like an etcd member") and "\n" not in text
        assert ("is not etcd's" in text) if handler.html else ("HTTP 404" in text)
    finally:
        server.shutdown()
        server.server_close()


def test_seed_urls_are_normalized() -> None:
    assert parse_urls("127.0.0.1:2379, http://localhost ,http://127.0.0.1:2379/") == [
        "http://127.0.0.1:2379", "http://localhost:2379"]


def test_metrics_parsing_reads_only_the_series_it_needs() -> None:
    text = (b'# HELP etcd_network_active_peers The current number of active peer connections.\n'
            b'# TYPE etcd_network_active_peers gauge\n'
            b'etcd_network_active_peers{Local="a1",Remote="b2"} 1\n'
            b'etcd_network_active_peers{Local="a1",Remote="c3"} 0\n'
            b'etcd_server_has_leader 1\n'
            b'etcd_server_has_leader_other 7\n'
            b'etcd_server_proposals_committed_total 42\n')
    parsed = _parse_metrics(text)
    assert parsed["active_remotes"] == {0xb2: True, 0xc3: False}
    assert parsed["etcd_server_has_leader"] == 1.0
    assert parsed["etcd_server_proposals_committed_total"] == 42.0
    assert "etcd_server_proposals_pending" not in parsed


class _MemberList(http.server.BaseHTTPRequestHandler):
    """Answers etcd's member list: two started voters (this one and another), a learner and a
    voter added but not started (no name, no client URL); every other path is a 404."""

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        own = f"http://127.0.0.1:{self.server.server_port}"
        doc = {"header": {"member_id": "1"}, "members": [
            {"ID": "1", "name": "e1", "clientURLs": [own]},
            {"ID": "2", "name": "e2", "clientURLs": [own]},
            {"ID": "3", "name": "e3", "clientURLs": [own], "isLearner": True},
            {"ID": "4", "peerURLs": ["http://127.0.0.1:1"]},
        ]}
        body = json.dumps(doc).encode() if self.path == "/v3/cluster/member/list" else b"404 page not found"
        self.send_response(200 if self.path == "/v3/cluster/member/list" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, *_args: Any) -> None:
        return None


def test_a_learner_is_not_a_member_and_an_unstarted_voter_is_down_not_an_error() -> None:
    """A learner does not vote: counted, it moved the majority (learner + one voter down read as a
    quorum loss while etcd committed). A voter added but not started stopped serve from starting
    ('name its URL in the spec', which no spec could); it is a member that is DOWN until it starts."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MemberList)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        source = build_source(f"etcd:http://127.0.0.1:{server.server_port}", timeout=0.5)
        try:
            assert sorted(source.members()) == ["4", "e1", "e2"]
            answer = source.poll().answers["4"]
            assert answer.report is None and answer.reason == "error"
            assert answer.detail is not None and "not started" in answer.detail
        finally:
            source.close()
    finally:
        server.shutdown()
        server.server_close()
