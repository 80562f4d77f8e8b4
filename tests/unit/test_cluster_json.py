"""cluster.json while `raftctl cluster up` supervises: rewritten only when it changes, and a disk
that refuses the write (full, read-only) is a warning, never the end of the cluster and its monitor."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from raftctl.commands.cluster import ClusterUp
from raftctl.node.launcher import ClusterLauncher, NodeSpec


def launcher(tmp_path: Path) -> ClusterLauncher:
    specs = [NodeSpec(f"node{i}", ("127.0.0.1", 9000 + i), ("127.0.0.1", 9100 + i), tmp_path / f"node{i}")
             for i in (1, 2, 3)]
    return ClusterLauncher(specs, tmp_path, token="t")


def test_cluster_json_is_rewritten_only_when_its_content_changes(tmp_path, monkeypatch):
    cl = launcher(tmp_path)
    path = cl.write_cluster_json()
    writes = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (writes.append(b), real(a, b)))
    for _ in range(5):
        cl.write_cluster_json(if_changed=True)
    assert writes == []  # nothing changed: the file is left alone (it was rewritten every 0.5 s)
    cl.token = "other"
    cl.write_cluster_json(if_changed=True)
    assert writes == [path] and b'"other"' in path.read_bytes()


def test_a_refused_write_is_one_warning_and_supervision_goes_on(tmp_path, monkeypatch, capsys):
    up = ClusterUp.__new__(ClusterUp)  # only what _supervise_once reads
    up.launcher = launcher(tmp_path)
    up.reported_exits = set()
    up.outside_pending, up.started_outside = {}, {}
    up.write_error = None
    up.stop_event = threading.Event()
    failing = {"on": True}
    real = up.launcher.write_cluster_json

    def write(if_changed: bool = False) -> Path:
        if failing["on"]:
            raise OSError(28, "No space left on device")
        return real(if_changed=if_changed)

    monkeypatch.setattr(up.launcher, "write_cluster_json", write)
    for _ in range(4):
        up._supervise_once()  # raised before: cluster up died and stopped its healthy nodes
    err = capsys.readouterr().err
    assert err.count("warning: cannot update") == 1 and "No space left on device" in err
    assert "keep running" in err
    failing["on"] = False
    up._supervise_once()
    assert up.write_error is None and (tmp_path / "cluster.json").exists()
    assert not (tmp_path / "cluster.json.tmp").exists()


def test_a_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    cl = launcher(tmp_path)

    def refuse(a, b):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        cl.write_cluster_json()
    assert not (tmp_path / "cluster.json.tmp").exists()
