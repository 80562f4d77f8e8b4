"""The etcd source's contact estimate (``EtcdSource._finish_reports``) on crafted member reports."""

from __future__ import annotations

from raftctl.sources.etcd import EtcdMemberInfo, EtcdSource


def _raws(follower_says: dict, replicating: bool) -> dict:
    lead = {"state": "LEADER", "term": 9, "leader_id": "e1", "commit_index": 500,
            "last_contact_ms": {"e2": True, "e3": replicating}}
    return {"e1": lead, "e2": {"state": "FOLLOWER", "term": 9, "leader_id": "e1", "commit_index": 500,
                               "last_contact_ms": {}},
            "e3": {"commit_index": 500, "last_contact_ms": {}, **follower_says}}


def test_a_member_back_from_a_restart_that_follows_the_leader_counts_as_heard_from():
    source = EtcdSource([EtcdMemberInfo(f"e{i}", i, f"http://127.0.0.1:{i}") for i in (1, 2, 3)])
    try:
        source._finish_reports(_raws({"state": "FOLLOWER", "term": 9, "leader_id": "e1"}, True), 100.0)
        # e3 away for 16 s; back, it follows e1 in term 9 before e1's progress says StateReplicate
        back = _raws({"state": "FOLLOWER", "term": 9, "leader_id": "e1"}, False)
        source._finish_reports(back, 116.0)
        assert back["e1"]["last_contact_ms"] == {"e2": 0.0, "e3": 0.0}
        # one that does not (yet) follow it, or in another term, has not been heard from since 100 s
        for says in ({"state": "CANDIDATE", "term": 9, "leader_id": None},
                     {"state": "FOLLOWER", "term": 8, "leader_id": "e1"},
                     {"state": "FOLLOWER", "term": 9, "leader_id": None}):
            raws = _raws(says, False)
            source._finish_reports(raws, 120.0)
            assert raws["e1"]["last_contact_ms"]["e3"] == 4000.0, says
        silent = _raws({}, False)
        del silent["e3"]  # no answer from it at all
        source._finish_reports(silent, 121.0)
        assert silent["e1"]["last_contact_ms"]["e3"] == 5000.0
    finally:
        source.close()


def test_a_new_leader_reaches_the_members_that_follow_it_though_its_stream_metrics_lag():
    """After an election etcd's active_peers takes seconds to count the streams again: the new
    leader read 'reaches only 0 peers' (node_isolated) for a sample while both followers followed it."""
    source = EtcdSource([EtcdMemberInfo(f"e{i}", i, f"http://127.0.0.1:{i}") for i in (1, 2, 3)])
    try:
        raws = _raws({"state": "FOLLOWER", "term": 9, "leader_id": "e1"}, True)
        raws["e1"]["peers_connected"] = 0
        raws["e2"]["peers_connected"] = raws["e3"]["peers_connected"] = 2
        source._finish_reports(raws, 50.0)
        assert raws["e1"]["peers_connected"] == 2
        assert raws["e2"]["peers_connected"] == 2  # a follower's own count is its metrics' word
        # one that follows another leader or term does not count
        raws = _raws({"state": "CANDIDATE", "term": 10, "leader_id": None}, True)
        raws["e1"]["peers_connected"] = 0
        source._finish_reports(raws, 51.0)
        assert raws["e1"]["peers_connected"] == 1
    finally:
        source.close()
