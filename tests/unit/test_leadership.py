"""Who leads and how healthy the cluster is, from node reports only (core/leadership.py, reports.py)."""

from __future__ import annotations

import pytest

from raftctl.core.health import evaluate_health
from raftctl.core.leadership import find_leader
from raftctl.core.reports import read_nodes
from raftctl.core.source import NodeAnswer, Poll

IDS = ["node1", "node2", "node3", "node4", "node5"]


def rep(state="FOLLOWER", term=3, leader="node1", contacts=None, peers=4, commit=10):
    return {"state": state, "term": term, "leader_id": leader, "commit_index": commit, "last_applied": commit,
            "log_length": commit, "peers_connected": peers, "match_index": {},
            "last_contact_ms": contacts or {}}


def leader_rep(node="node1", term=3, contacts=None, peers=4):
    contacts = {p: 20.0 for p in IDS if p != node} if contacts is None else contacts
    return rep("LEADER", term, node, contacts, peers)


def test_a_claimant_backed_by_a_majority_in_its_term_leads():
    reports = {"node1": leader_rep(), **{n: rep() for n in IDS[1:]}}
    view = find_leader(reports, 1000.0)
    assert view.leader == "node1" and view.term == 3 and view.support == frozenset(IDS) and view.stale == ()


def test_a_woken_leader_in_an_old_term_is_stale_not_a_second_leader():
    reports = {"node1": leader_rep(term=3, contacts={p: 9000.0 for p in IDS[1:]}),
               "node2": leader_rep("node2", term=4), **{n: rep(term=4, leader="node2") for n in IDS[2:]}}
    view = find_leader(reports, 1000.0)
    assert view.leader == "node2" and view.stale == ("node1",)
    # its own fresh-looking contacts do not help: those followers' own reports say term 4
    fresh = dict(reports, node1=leader_rep(term=3))
    assert find_leader(fresh, 1000.0).leader == "node2"


def test_a_leader_that_does_not_answer_is_not_believed():
    reports = {"node1": None, **{n: rep() for n in IDS[1:]}}
    assert find_leader(reports, 1000.0).leader is None


def test_a_leader_cut_off_with_the_monitor_is_backed_by_what_it_heard_unless_peers_refused():
    reports = {"node1": leader_rep(), **{n: None for n in IDS[1:]}}
    assert find_leader(reports, 1000.0).leader == "node1"          # the others merely time out
    gone = frozenset(IDS[1:4])                                       # three refused: processes gone
    assert find_leader(reports, 1000.0, gone=gone).leader is None
    stale = {"node1": leader_rep(contacts={p: 5000.0 for p in IDS[1:]}), **{n: None for n in IDS[1:]}}
    assert find_leader(stale, 1000.0).leader is None


def poll(reports, reasons=None):
    reasons = reasons or {}
    answers = {nid: NodeAnswer(nid, r) if r is not None else NodeAnswer.silent(nid, reasons.get(nid, "timeout"))
               for nid, r in reports.items()}
    return Poll(1.0, answers)


def health(p):
    reading = read_nodes(p, 1000.0)
    doc = {"cluster": {"cluster_size": len(p.answers), "healthy_nodes": reading.healthy,
                       "leader_node": reading.leader.leader, "consensus_aligned": reading.aligned,
                       "nodes_reached": reading.reached, "has_quorum": reading.has_quorum},
           "nodes": reading.nodes}
    return reading, evaluate_health(doc, max_contact_ms=1000.0)


def test_quorum_is_lost_only_on_evidence_and_a_cut_off_monitor_says_so():
    # three nodes refuse the poll: fewer than a majority can be running
    crashed = {"node1": leader_rep(contacts={p: 5000.0 for p in IDS[1:]}, peers=1), "node2": rep(peers=1),
               "node3": None, "node4": None, "node5": None}
    reading, (status, reasons) = health(poll(crashed, {n: "refused" for n in ("node3", "node4", "node5")}))
    assert not reading.has_quorum and status == "UNHEALTHY"
    assert {"quorum_lost", "no_leader", "node_down:node3"} <= set(reasons)
    # refusals are evidence, not blindness: the monitor sees every process that runs, and the two
    # survivors reach each other, every peer left to reach: neither is cut off
    assert not any(r.startswith(("monitor_reach:", "node_isolated:")) for r in reasons), reasons
    assert reading.nodes["node3"]["down_reason"] == "refused" and reading.nodes["node3"]["state"] == "DOWN"
    # the same silence as timeouts: the monitor cannot tell, so it claims no quorum loss; the
    # follower reaches one peer of four that may be running: cut off, as far as it can tell
    reading, (status, reasons) = health(poll(crashed))
    assert reading.has_quorum and status == "UNHEALTHY"
    assert "quorum_lost" not in reasons and "no_leader" not in reasons and "monitor_reach:2/5" in reasons
    assert "node_isolated:node2" in reasons
    # one refusal and two silences: still blind (a silent node may be running)
    reading, (status, reasons) = health(poll(crashed, {"node3": "refused"}))
    assert "monitor_reach:2/5" in reasons and "node_isolated:node2" in reasons


def test_stale_and_isolated_nodes_are_named():
    reports = {"node1": leader_rep(term=3, contacts={p: 9000.0 for p in IDS[1:]}, peers=0),
               "node2": leader_rep("node2", term=4, contacts={"node3": 10.0, "node4": 10.0, "node5": 10.0,
                                                               "node1": 3000.0}),
               **{n: rep(term=4, leader="node2") for n in IDS[2:]}}
    reading, (status, reasons) = health(poll(reports))
    assert status == "DEGRADED" and reading.nodes["node1"]["state"] == "STALE_LEADER"
    assert reasons == ["stale_leader:node1"]
    reports["node1"] = rep(state="FOLLOWER", term=3, leader=None, peers=0)
    _reading, (status, reasons) = health(poll(reports))
    assert status == "DEGRADED" and "node_isolated:node1" in reasons


def test_a_new_leader_without_match_knowledge_does_not_make_followers_lag():
    reports = {"node1": dict(leader_rep(), commit_index=500, match_index={p: 0 for p in IDS[1:]}),
               **{n: rep(commit=499) for n in IDS[1:]}}
    reading, (status, _reasons) = health(poll(reports))
    assert {n: reading.nodes[n]["replication_lag"] for n in IDS[1:]} == dict.fromkeys(IDS[1:], 1)
    assert status == "HEALTHY"


def _random_poll(rng, size: int) -> Poll:
    ids = [f"n{i}" for i in range(size)]
    leader = rng.choice(ids + [None])
    answers = {}
    for nid in ids:
        if rng.random() < 0.2:
            answers[nid] = NodeAnswer.silent(nid, rng.choice(["timeout", "refused", "error"]))
            continue
        applied = rng.randrange(90, 101)
        report = {"state": "LEADER" if nid == leader else rng.choice(["FOLLOWER", "FOLLOWER", "CANDIDATE"]),
                  "term": rng.choice([3, 3, 3, 4, "x", None]), "leader_id": leader,
                  "commit_index": rng.choice([applied, applied + rng.randrange(5), 7.5, None]),
                  "last_applied": applied, "log_length": rng.randrange(200), "peers_connected": rng.randrange(size),
                  "state_digest": rng.choice([f"d{applied}", f"d{applied}", "other", None]),
                  "last_log_index": rng.choice([applied, 120, 0, None, "x"])}
        if nid == leader:
            report["match_index"] = {p: rng.choice([0, 95, 100, "bad"]) for p in ids if p != nid}
            report["last_contact_ms"] = {p: rng.choice([None, 10.0, 3000.0]) for p in ids if p != nid}
        answers[nid] = NodeAnswer(nid, report)
    return Poll(1.0, answers)


def test_the_one_pass_node_reading_agrees_with_the_health_rules_it_inlines():
    """read_nodes computes lag and the digest check in its node pass: on random polls they must
    equal health.replication_lags and health.consensus_aligned applied to its own documents."""
    import random

    from raftctl.core.health import consensus_aligned, replication_lags

    for seed in range(400):
        rng = random.Random(seed)
        poll = _random_poll(rng, rng.randrange(1, 8))
        reading = read_nodes(poll, 1000.0)
        leader = reading.leader.leader
        leader_doc = dict(reading.nodes[leader]) if leader is not None else None
        statuses = {nid: dict(doc) for nid, doc in reading.nodes.items()}
        for nid, answer in poll.answers.items():  # what a node says it holds is in its report only
            if answer.report is not None:
                statuses[nid]["last_log_index"] = answer.report.get("last_log_index")
        if leader_doc is not None:  # the rule reads the leader's match from its report
            report = poll.answers[leader].report or {}
            statuses[leader]["match_index"] = {p: (m if type(m) is int else 0)
                                               for p, m in (report.get("match_index") or {}).items()}
        expected = replication_lags(statuses, leader)
        got = {nid: doc["replication_lag"] for nid, doc in reading.nodes.items() if doc["up"]}
        assert got == {nid: expected[nid] for nid in got}, f"seed {seed}"
        assert reading.aligned == consensus_aligned(reading.nodes.values()), f"seed {seed}"
        assert reading.reached == sum(1 for a in poll.answers.values() if a.report is not None), f"seed {seed}"


def test_a_follower_that_lost_its_log_lags_by_what_it_holds_not_by_the_leader_s_old_match():
    """Restarted on an empty data dir, a follower reports an empty log while its leader still
    holds its old match index: the monitor must believe the follower (it lags), not call it
    replicated (lag 0)."""
    leader = dict(leader_rep(), commit_index=500, last_applied=500, last_log_index=500,
                  match_index={p: 500 for p in IDS[1:]})
    wiped = dict(rep(commit=0), last_log_index=0)
    others = {n: dict(rep(commit=500), last_log_index=500) for n in IDS[2:]}
    reading, (status, reasons) = health(poll({"node1": leader, "node2": wiped, **others}))
    assert reading.nodes["node2"]["replication_lag"] == 500
    assert all(reading.nodes[n]["replication_lag"] == 0 for n in IDS[2:])
    assert status == "DEGRADED" and "follower_lagging:node2" in reasons, reasons
    # a follower that polled a moment before its leader acknowledged more is a few entries behind
    behind = dict(rep(commit=495), last_log_index=497)
    reading, _ = health(poll({"node1": leader, "node2": behind, **others}))
    assert reading.nodes["node2"]["replication_lag"] == 3


def test_with_every_node_down_the_term_is_the_last_one_reported_not_0():
    first = read_nodes(poll({"node1": leader_rep(term=7), **{n: rep(term=7) for n in IDS[1:]}}), 1000.0)
    assert first.current_term == 7
    silent = poll(dict.fromkeys(IDS), dict.fromkeys(IDS, "refused"))
    reading = read_nodes(silent, 1000.0, first.nodes)
    assert reading.reached == 0 and reading.current_term == 7
    assert read_nodes(silent, 1000.0).current_term == 0  # never seen: nothing to tell


def test_malformed_reports_never_break_a_sample():
    """A node's report is untrusted JSON: odd roles, contacts, matches and numbers must give a
    sample (an unreadable role is that node DOWN with reason "error"), never an exception."""
    import random

    from raftctl.core.collector import SampleCollector

    odd = ["WEIRD", 5, ["LEADER"], {"a": 1}, True, "", "DOWN", "STALE_LEADER", None, -3, 2.5, float("nan"),
           float("inf"), [[1, 2]], {"n1": "x"}, {"n1": True}, 2 ** 70, -(2 ** 70)]

    class OddSource:
        name = "odd"

        def __init__(self, seed: int) -> None:
            self.rng = random.Random(seed)
            self.now = 0.0

        def members(self):
            return [f"n{i}" for i in range(5)]

        def close(self) -> None:
            pass

        def poll(self, since=None):
            self.now += 1.0
            poll = _random_poll(self.rng, 5)
            for answer in poll.answers.values():
                report = answer.report
                if report is None:
                    continue
                for key in ("state", "commit_index", "term", "peers_connected", "log_length", "leader_id",
                            "last_contact_ms", "match_index", "log_terms", "trades_executed"):
                    if self.rng.random() < 0.15:
                        report[key] = self.rng.choice(odd)
            return Poll(self.now, poll.answers)

    for seed in range(60):
        collector = SampleCollector()
        collector.set_source(OddSource(seed))
        for _ in range(20):
            sample = collector.collect()
            for node in sample["nodes"].values():
                assert node["state"] in ("LEADER", "FOLLOWER", "CANDIDATE", "DOWN", "STALE_LEADER"), f"seed {seed}"
                if node["up"]:
                    assert all(type(node[k]) is int for k in ("commit_index", "term", "last_applied")), f"seed {seed}"
                    assert node["last_contact_ms"] is None or type(node["last_contact_ms"]) is float, f"seed {seed}"
        assert collector.collect_errors == 0 and len(collector.history(None)) == 20, f"seed {seed}"


def test_a_down_node_keeps_its_last_answer_for_as_long_as_it_is_down():
    """DOWN shows the values of the node's last answer and when that was, never zeros, however
    many samples it stays silent; a node never heard from has no values at all."""
    from raftctl.core.collector import SampleCollector

    class Script:
        name = "script"

        def __init__(self) -> None:
            self.now = 0.0

        def members(self):
            return ["node1", "node2", "node3"]

        def close(self) -> None:
            pass

        def poll(self, since=None):
            self.now += 1.0
            t = self.now
            answers = {"node1": NodeAnswer("node1", rep("LEADER", commit=int(t) * 10)),
                       "node3": NodeAnswer.silent("node3", "refused")}
            if t <= 2:
                answers["node2"] = NodeAnswer("node2", dict(rep(commit=int(t) * 10), log_terms=[[1, 3]]))
            else:
                answers["node2"] = NodeAnswer.silent("node2", "timeout")
            return Poll(t, answers)

    collector = SampleCollector()
    collector.set_source(Script())
    for _ in range(5):
        sample = collector.collect()
    node2, node3 = sample["nodes"]["node2"], sample["nodes"]["node3"]
    assert node2["state"] == "DOWN" and node2["down_reason"] == "timeout"
    assert (node2["commit_index"], node2["term"], node2["last_seen"], node2["log_terms"]) == (20, 3, 2.0, [[1, 3]])
    assert node2["replication_lag"] is None and node2["peers_connected"] is None
    assert node3["state"] == "DOWN" and node3["last_seen"] is None and node3["commit_index"] is None
    assert collector.look()["nodes"]["node2"]["term"] == 3


def test_a_report_with_an_unreadable_role_backs_no_leader_and_is_down_with_error():
    poll = Poll(1.0, {"node1": NodeAnswer("node1", rep("LEADER")),
                      "node2": NodeAnswer("node2", rep("WEIRD")),
                      "node3": NodeAnswer.silent("node3", "timeout")})
    reading = read_nodes(poll, 1000.0)
    assert reading.leader.leader is None  # node1 alone is no majority of 3
    assert reading.nodes["node2"]["state"] == "DOWN" and reading.nodes["node2"]["down_reason"] == "error"
    assert reading.reached == 1
    fine = Poll(1.0, dict(poll.answers, node2=NodeAnswer("node2", rep("FOLLOWER"))))
    assert read_nodes(fine, 1000.0).leader.leader == "node1"


def _mostly_healthy_poll(rng, size: int) -> Poll:
    """A healthy cluster with now and then one thing wrong (a lag, a silence, a short peer
    count, a stale claimant, an old term, an unheard follower): the quiet case and its neighbours."""
    ids = [f"n{i}" for i in range(size)]
    leader = ids[0]
    commit = 1000
    answers = {}
    behind = {nid: 0 if nid == leader else rng.randrange(4) for nid in ids}  # small lags, 0-3 entries
    for nid in ids:
        report = {"state": "LEADER" if nid == leader else "FOLLOWER", "term": 5, "leader_id": leader,
                  "commit_index": commit - behind[nid], "last_applied": commit - behind[nid] - rng.randrange(2),
                  "log_length": 50, "peers_connected": size - 1, "state_digest": None}
        if nid == leader:
            report["match_index"] = {p: commit - behind[p] for p in ids if p != nid}
            report["last_contact_ms"] = {p: rng.uniform(1.0, 50.0) for p in ids if p != nid}
        answers[nid] = NodeAnswer(nid, report)
    victim = rng.choice(ids)
    report = answers[victim].report
    fault = rng.randrange(9)
    if fault == 1:
        answers[victim] = NodeAnswer.silent(victim, rng.choice(["timeout", "refused", "error"]))
    elif fault == 2:
        report["peers_connected"] = rng.randrange(size)
    elif fault == 3 and victim != leader:
        answers[leader].report["match_index"][victim] = commit - rng.choice([50, 101, 150])
        report["commit_index"] = commit - rng.choice([50, 101, 150])
    elif fault == 4 and victim != leader:
        report.update(state="LEADER", term=rng.choice([3, 5]), leader_id=victim)
    elif fault == 5:
        report["term"] = rng.choice([1, 4, 5, 9, -2])
    elif fault == 6 and victim != leader:
        answers[leader].report["last_contact_ms"][victim] = rng.choice([999.0, 1000.0, 1000.5, 4000.0])
    elif fault == 7:
        answers[leader] = NodeAnswer.silent(leader, "timeout")
    return Poll(1.0, answers)


def test_the_hints_gathered_in_the_node_pass_never_change_health_or_alerts():
    """read_nodes gathers, in its one node pass, what lets evaluate_health skip its node pass
    (Reading.nodes_quiet) and the term-divergence alert skip its own (Reading.live_terms): on
    random polls, healthy or not, the hinted answers must equal the unhinted ones."""
    import random

    from raftctl.core.alerts import DEFAULT_THRESHOLDS, evaluate_conditions

    quiet_seen = 0
    for seed in range(1500):
        rng = random.Random(seed)
        size = rng.randrange(1, 9)
        poll = _mostly_healthy_poll(rng, size) if seed % 3 else _random_poll(rng, size)
        reading = read_nodes(poll, 1000.0)
        leader = reading.leader.leader
        sample = {"cluster": {"cluster_size": size, "healthy_nodes": reading.healthy, "leader_node": leader,
                              "consensus_aligned": reading.aligned, "nodes_reached": reading.reached,
                              "has_quorum": reading.has_quorum, "health_status": "HEALTHY", "health_reasons": []},
                  "nodes": reading.nodes, "performance": {"avg_latency_ms": None}}
        for max_lag in (0, 2, 100):
            quiet = reading.nodes_quiet(max_lag)
            quiet_seen += quiet
            plain = evaluate_health(sample, max_replication_lag=max_lag, max_contact_ms=1000.0)
            hinted = evaluate_health(sample, max_replication_lag=max_lag, max_contact_ms=1000.0, nodes_quiet=quiet)
            assert hinted == plain, f"seed {seed} max_lag {max_lag}: quiet={quiet}"
        sample["cluster"]["health_status"], sample["cluster"]["health_reasons"] = plain
        for spread in (0, 1, 3):
            thresholds = dict(DEFAULT_THRESHOLDS, max_term_difference=spread)
            assert (evaluate_conditions(sample, thresholds, live_terms=reading.live_terms)
                    == evaluate_conditions(sample, thresholds)), f"seed {seed} spread {spread}"
    assert quiet_seen > 500  # the skip itself was exercised, not only its refusals


def test_a_leaderless_shard_has_no_commit_index_rather_than_zero():
    """A figure raftctl does not know is null, never 0: without a leader a shard has no
    authoritative commit or applied index (the node tables show '-')."""
    from raftctl.core.alerts import DEFAULT_THRESHOLDS
    from raftctl.core.reports import shard_documents

    ids = ["node1", "node2", "node3"]

    def entry(shard, state, leader):
        return {"shard": shard, "state": state, "term": 4, "leader_id": leader, "commit_index": 70,
                "last_applied": 70, "log_length": 70, "match_index": {}, "last_contact_ms": {}}

    answers = {}
    for nid in ids:
        report = rep(leader="node1")
        report["shards"] = [entry(0, "LEADER" if nid == "node1" else "FOLLOWER", "node1"),
                            entry(1, "FOLLOWER", None)]
        if nid == "node1":
            report["shards"][0]["last_contact_ms"] = {p: 5.0 for p in ids[1:]}
        answers[nid] = NodeAnswer(nid, report)
    poll = Poll(1.0, answers, shards=2)
    docs = shard_documents(poll, 1000.0, DEFAULT_THRESHOLDS, [], [0, 0], None, 0.0, {})
    assert (docs[0]["leader"], docs[0]["commit_index"], docs[0]["last_applied"]) == ("node1", 70, 70)
    assert (docs[1]["leader"], docs[1]["commit_index"], docs[1]["last_applied"]) == (None, None, None)
    assert docs[1]["term"] == 4  # the replicas' term is still known


def _long_way(reports, max_contact_ms, size, gone):
    """find_leader's rule taken the long way: every claimant's backers from _backers."""
    from raftctl.core.leadership import LeaderView, _backers

    quorum = size // 2 + 1
    claimants = [n for n, r in reports.items() if r is not None and r.get("state") == "LEADER"]
    best = None
    for node_id in claimants:
        said = reports[node_id].get("term")
        term = said if type(said) is int else 0
        backers = _backers(node_id, term, reports, max_contact_ms, gone)
        if len(backers) >= quorum and (best is None or (term, len(backers), node_id) > best[0]):
            best = ((term, len(backers), node_id), backers)
    if best is None:
        return LeaderView(None, None, frozenset(), tuple(claimants))
    leader = best[0][2]
    return LeaderView(leader, best[0][0], frozenset(best[1]), tuple(c for c in claimants if c != leader))


def test_the_one_claimant_shortcut_agrees_with_the_long_way():
    """find_leader takes a shortcut for one claimant named by every member in its term; on random
    reports near that case (a member silent, another term or leader, an odd term, the claimant
    naming another) it must give what the long way gives."""
    import random

    for seed in range(3000):
        rng = random.Random(seed)
        size = rng.randrange(1, 8)
        ids = [f"n{i}" for i in range(size)]
        claimant = rng.choice(ids)
        term = rng.choice([3, 3, 3, True, 3.0, "3"])
        reports = {}
        for nid in ids:
            report = {"state": "LEADER" if nid == claimant else "FOLLOWER", "term": term, "leader_id": claimant}
            roll = rng.random()
            if roll < 0.08:
                report = None
            elif roll < 0.14:
                report["term"] = 4
            elif roll < 0.20:
                report["leader_id"] = rng.choice([None] + ids)
            elif roll < 0.23:
                report["state"] = "LEADER"  # a second claimant
            if report is not None and nid == claimant:
                report["last_contact_ms"] = {p: rng.choice([5.0, 5000.0, 7]) for p in ids if p != nid}
            reports[nid] = report
        gone = frozenset(n for n in ids if reports[n] is None and rng.random() < 0.5)
        members = size + rng.choice([0, 0, 0, 1, 3])  # a caller may count members that sent nothing
        expected = _long_way(reports, 1000.0, members, gone)
        assert find_leader(reports, 1000.0, members, gone) == expected, f"seed {seed}"
        claimants = [n for n, r in reports.items() if r is not None and r.get("state") == "LEADER"]
        assert find_leader(reports, 1000.0, members, gone, claimants) == expected, f"seed {seed}"


def test_a_node_cut_off_from_its_peers_is_not_counted_healthy_even_while_its_contact_is_fresh():
    """The first sample after a partition: the leader heard from node5 10 ms ago, but node5
    reaches none of its peers (node_isolated): it is not operational, so 4/5 healthy."""
    from raftctl.core.collector import SampleCollector

    reports = {"node1": leader_rep(), **{n: rep() for n in IDS[1:]}}
    reports["node5"] = rep(peers=0)

    class Source:
        name = "fixed"
        now = 1.0

        def members(self):
            return list(IDS)

        def close(self):
            pass

        def poll(self, since=None):
            return poll(reports)

    collector = SampleCollector()
    collector.set_source(Source())
    cluster = collector.collect()["cluster"]
    assert cluster["health_reasons"] == ["node_isolated:node5"], cluster
    assert cluster["healthy_nodes"] == 4, cluster
    # healed: every node counted again
    reports["node5"] = rep()
    cluster = collector.collect()["cluster"]
    assert cluster["health_status"] == "HEALTHY" and cluster["healthy_nodes"] == 5, cluster


def test_a_node_down_with_error_says_what_the_poll_ran_into():
    """``DOWN (error)`` alone gave no cause: the source's detail goes into the node document
    (``down_detail``) and the node_down message; a timeout or refusal says enough by itself."""
    from raftctl.core.alerts import DEFAULT_THRESHOLDS, evaluate_conditions

    reports = {"node1": leader_rep(), **{n: rep() for n in IDS[1:]}}
    answers = {nid: NodeAnswer(nid, r) for nid, r in reports.items()}
    answers["node4"] = NodeAnswer.silent("node4", "error", "cannot resolve nosuchhost.invalid")
    answers["node5"] = NodeAnswer.silent("node5", "timeout", "no answer within 0.3 s")
    reading = read_nodes(Poll(1.0, answers), 1000.0)
    assert reading.nodes["node4"]["down_detail"] == "cannot resolve nosuchhost.invalid"
    assert "down_detail" not in reading.nodes["node5"] and "down_detail" not in reading.nodes["node1"]
    doc = {"cluster": {"cluster_size": 5, "healthy_nodes": reading.healthy, "leader_node": "node1",
                       "consensus_aligned": True, "has_quorum": True, "health_status": "DEGRADED",
                       "health_reasons": ["node_down:node4", "node_down:node5"], "nodes_reached": 3,
                       "current_term": 3},
           "performance": {}, "nodes": reading.nodes}
    messages = sorted(c.message for c in evaluate_conditions(doc, DEFAULT_THRESHOLDS) if c.name == "node_down")
    assert messages == ["node4 does not answer the monitor (error: cannot resolve nosuchhost.invalid)",
                        "node5 does not answer the monitor (timeout)"], messages


def test_a_pre_candidate_is_an_up_candidate_and_an_unknown_role_says_so():
    """etcd under --pre-vote reports StatePreCandidate (the etcd source says PRE_CANDIDATE, as
    source.py allows): a live node campaigning, shown as a CANDIDATE, never DOWN. A role the
    monitor cannot read is DOWN (error) and its down_detail names what the report said."""
    poll = Poll(1.0, {"node1": NodeAnswer("node1", rep("PRE_CANDIDATE", term=2, leader=None)),
                      "node2": NodeAnswer("node2", rep("WEIRD")),
                      "node3": NodeAnswer.silent("node3", "refused")})
    reading = read_nodes(poll, 1000.0)
    node1 = reading.nodes["node1"]
    assert node1["state"] == "CANDIDATE" and node1["up"] and node1["term"] == 2, node1
    assert reading.reached == 1 and reading.current_term == 2
    assert reading.nodes["node2"]["down_reason"] == "error"
    assert reading.nodes["node2"]["down_detail"] == \
        "its report names no role the monitor knows (state 'WEIRD')"
    status, reasons = evaluate_health({"cluster": {"cluster_size": 3, "healthy_nodes": reading.healthy,
                                                   "leader_node": None, "consensus_aligned": True,
                                                   "has_quorum": reading.has_quorum,
                                                   "nodes_reached": reading.reached},
                                       "nodes": reading.nodes}, max_replication_lag=100, max_contact_ms=1000.0)
    assert "node_down:node1" not in reasons and "node_down:node2" in reasons, reasons


class _ScriptedSource:
    """Polls given one by one: ``script`` holds, per poll, each node's (applied index, digest),
    for every shard when ``shards`` > 1 (the same for each)."""

    name = "scripted"

    def __init__(self, script, shards=1):
        self.script, self.shards, self.now = list(script), shards, 0.0

    def members(self):
        return list(IDS)

    def close(self) -> None:
        pass

    def poll(self, since=None):
        self.now += 1.0
        step = self.script.pop(0)
        answers = {}
        for nid in IDS:
            applied, digest = step[nid]
            report = dict(leader_rep() if nid == "node1" else rep(), commit_index=applied, last_applied=applied,
                          log_length=applied, state_digest=digest)
            if self.shards > 1:
                report["shards"] = [dict(report, shard=g) for g in range(self.shards)]
            answers[nid] = NodeAnswer(nid, report)
        return Poll(self.now, answers, shards=self.shards)


@pytest.mark.parametrize("shards", [1, 3])
def test_a_divergence_stays_until_a_comparison_shows_it_repaired(shards):
    """Misaligned digests at one index; then no two nodes at the same index (a slow node, loss,
    an election): that is no evidence of repair, and the cluster stays misaligned (it said
    aligned, and the critical alert resolved and re-fired each time); equal digests at a shared
    index again end it."""
    from raftctl.core.collector import SampleCollector

    diverged = {n: (10, "good") for n in IDS} | {"node2": (10, "bad")}
    apart = {n: (20 + i, f"d{i}") for i, n in enumerate(IDS)}
    repaired = {n: (30, "same") for n in IDS}
    collector = SampleCollector()
    collector.set_source(_ScriptedSource([repaired, diverged, apart, apart, repaired], shards))
    seen = []
    for _ in range(5):
        sample = collector.collect()
        seen.append(sample["cluster"]["consensus_aligned"])
        if shards > 1:
            assert all(d["consensus_aligned"] == seen[-1] for d in sample["shards"]), sample["shards"]
    assert seen == [True, False, False, False, True]
    names = [a["name"] for a in collector.alert_history()]
    assert names.count("consensus_misalignment") == 1, collector.alert_history()
