"""`raftctl cluster up` starts its monitor only once the cluster is whole (a fake launcher, no processes)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from raftctl.commands.cluster import ClusterUp
from raftctl.runtime.ports import free_base_port


class FakeProc:
    pid = 4242

    def poll(self) -> int | None:
        return None


class SlowCluster:
    """A launcher whose node1 leads at once, node3 answers after 0.3 s and every transport
    reaches its peers after ``connected_after`` s (what the collector's first sample saw)."""

    def __init__(self, ids: list[str], connected_after: float) -> None:
        self.ids = ids
        self.procs: dict[str, Any] = {}
        self.connected_after = connected_after
        self.t0 = 0.0

    def start_all(self) -> None:
        self.t0 = time.monotonic()
        self.procs = {nid: FakeProc() for nid in self.ids}

    def status(self, nid: str, timeout: float = 0.5) -> dict[str, Any] | None:
        age = time.monotonic() - self.t0
        if nid == "node3" and age < 0.3:
            return None
        peers = len(self.ids) - 1 if age >= self.connected_after else (1 if nid == "node2" else 0)
        return {"state": "LEADER" if nid == "node1" else "FOLLOWER", "term": 1, "leader_id": "node1",
                "peers_connected": peers}

    def leader(self) -> str | None:
        return "node1"

    def whole(self) -> bool:
        reports = [self.status(nid) for nid in self.ids]
        return all(r is not None and r["peers_connected"] == len(self.ids) - 1 for r in reports)

    def log_tail(self, node_id: str, chars: int = 2000) -> str:
        return ""


def runner(tmp_path: Any, fake: SlowCluster) -> ClusterUp:
    up = ClusterUp(nodes=3, data_dir=str(tmp_path / "d"), base_port=free_base_port(3), rate=0, interval=1.0,
                   retention=60.0, fsync=True, sinks=[])
    up.launcher = fake  # type: ignore[assignment]
    return up


def test_start_nodes_returns_once_every_node_answers_and_reaches_its_peers(tmp_path):
    fake = SlowCluster(["node1", "node2", "node3"], connected_after=0.8)
    up = runner(tmp_path, fake)
    up.start_nodes()
    assert fake.whole(), "the monitor would start on a cluster that is not whole yet"
    assert up.first_leader == "node1"
    assert up.not_ready == ""


def test_start_nodes_gives_up_waiting_for_peers_at_its_deadline_and_says_so(tmp_path, capsys):
    fake = SlowCluster(["node1", "node2", "node3"], connected_after=3600)
    up = runner(tmp_path, fake)
    up.ready_timeout = 0.5
    started = time.monotonic()
    up.start_nodes()
    assert time.monotonic() - started < 5
    assert up.first_leader == "node1"
    assert "node1 reaches 0 of 2 peers" in up.not_ready and "node3" in up.not_ready, up.not_ready
    assert "0.5 s" in capsys.readouterr().err


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])


def test_a_node_dir_that_lost_its_data_while_others_kept_theirs_starts_with_rejoin(tmp_path):
    """`cluster up` on a cluster dir where node2's dir is gone and node3's holds only its
    meta.json: both start with --rejoin (else, with node1 away, the two could elect one of
    themselves and drop what the cluster acknowledged). A new cluster (no data anywhere) does not."""
    fresh = ClusterUp(nodes=3, data_dir=str(tmp_path / "new"), base_port=free_base_port(3), rate=0, interval=1.0,
                      retention=60.0, fsync=True, sinks=[])
    assert fresh.rejoining == [] and not any("--rejoin" in s.argv for s in fresh.specs)
    root = tmp_path / "d"
    for nid in ("node1", "node3"):
        (root / nid).mkdir(parents=True)
        (root / nid / "meta.json").write_text("{}")
    (root / "node1" / "wal-00000001.log").write_bytes(b"")
    up = ClusterUp(nodes=3, data_dir=str(root), base_port=free_base_port(3), rate=0, interval=1.0,
                   retention=60.0, fsync=True, sinks=[])
    assert up.rejoining == ["node2", "node3"]
    assert {s.node_id: "--rejoin" in s.argv for s in up.specs} == {"node1": False, "node2": True, "node3": True}


def test_cluster_json_gives_an_argv_that_rejoins_a_node_whose_dir_was_lost(tmp_path):
    """The README's restart (cluster.json's argv) of a node whose dir was emptied started it as
    a new voter at term 0 (the operator tester): the recorded argv carries --rejoin-if-empty
    instead of the start's own --rejoin, which a restart on kept data does not need."""
    from raftctl.node.launcher import ClusterLauncher, layout, restart_argv

    specs = layout(3, tmp_path, free_base_port(3), token="t0k")
    specs[1].argv.append("--rejoin")
    doc = ClusterLauncher(specs, tmp_path, token="t0k").cluster_doc()
    for spec, node in zip(specs, doc["nodes"]):
        assert node["argv"][-1] == "--rejoin-if-empty" and "--rejoin" not in node["argv"]
        assert node["argv"][:-1] == [a for a in spec.argv if a != "--rejoin"]
    assert restart_argv(restart_argv(specs[0].argv)) == restart_argv(specs[0].argv)  # said once


class DeadProc:
    pid = 1111

    def poll(self) -> int | None:
        return -9


def test_a_node_started_by_hand_is_said_to_run_once_it_answers_and_its_exit_is_said(tmp_path, monkeypatch, capsys):
    """The operator tester: a hand start that refused its data dir (exit 2) was announced as
    'runs again', the exit of a hand-started node was never said, and Ctrl-C's line gave the
    node's first death (SIGKILL) though a later process had served it and stopped."""
    import raftctl.commands.cluster as cluster_cmd

    up = ClusterUp(nodes=3, data_dir=str(tmp_path / "d"), base_port=free_base_port(3), rate=0, interval=1.0,
                   retention=60.0, fsync=True, sinks=[])
    up.launcher.procs = {"node1": FakeProc(), "node2": DeadProc(), "node3": FakeProc()}  # type: ignore[dict-item]
    running: dict[str, int] = {}
    answering: set[str] = set()
    monkeypatch.setattr(cluster_cmd, "_nodes_started_elsewhere",
                        lambda specs: sorted((s.node_id, running[s.node_id]) for s in specs if s.node_id in running))
    monkeypatch.setattr(up.launcher, "status", lambda nid, timeout=0.5: {"node_id": nid} if nid in answering else None)

    def said() -> str:
        return capsys.readouterr().err

    running["node2"] = 2001  # started by hand; it refuses its data dir and exits before it listens
    up._follow_restarts()
    assert said() == "" and up.launcher.elsewhere == {}
    del running["node2"]
    up._follow_restarts()
    assert "node2 (pid 2001, started outside it) exited before it answered" in said()
    running["node2"] = 2002  # started again; this one answers
    up._follow_restarts()
    assert said() == ""
    answering.add("node2")
    up._follow_restarts()
    assert "node2 runs again (pid 2002, started outside it)" in said() and up.launcher.elsewhere == {"node2": 2002}
    up._follow_restarts()
    assert said() == ""  # said once
    del running["node2"]  # killed by hand
    up._follow_restarts()
    assert "node2 (pid 2002, started outside it) is no longer running" in said() and up.launcher.elsewhere == {}
    line = cluster_cmd._stopped_line({"node1": (True, 0), "node2": (False, -9), "node3": (True, 0)}, [],
                                     up.started_outside)
    assert "SIGKILL" not in line and "node2 was not running (started outside it since" in line, line
    # a node whose own process died and that nobody started again: its death is what ended it
    assert "node2 was already dead (SIGKILL)" in cluster_cmd._stopped_line(
        {"node1": (True, 0), "node2": (False, -9)}, [], {})
