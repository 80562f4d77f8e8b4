"""Start, stop and restart a cluster of `raftctl node` processes on one machine.

Used by ``raftctl cluster up`` and the benchmarks. Node ``i`` (1-based) of a cluster at
``base_port`` listens for peers on ``base_port + i`` and serves HTTP on ``base_port + 100 + i``;
its data dir is ``DIR/node<i>``, its log ``DIR/node<i>.log``. ``DIR/cluster.json`` records, for
each node, its ``id``, ``pid``, ``raft`` and ``http`` addresses and the ``argv`` that starts
it again (``restart_argv``: a node that lost its data dir rejoins), and the cluster's
``base_port`` and ``cluster_token`` (passed to every node as ``--cluster-token``: with the
members' addresses it is the cluster's identity, see ``wal.py``).
A launcher made with ``record=False`` writes no cluster.json until :meth:`ClusterLauncher.record`
is called: ``cluster up`` keeps the previous file until its nodes are known to run.

Nodes are started with ``python -m raftctl node`` (the CLI) by default; ``fast=True`` uses
``python -m raftctl.node`` (the same node without loading Typer) for benchmarks that restart often.
A launcher never restarts a node by itself: what crashed stays down until someone starts it.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson

__all__ = ["ClusterLauncher", "NodeSpec", "layout"]


@dataclass
class NodeSpec:
    """One node of a launched cluster."""

    node_id: str
    raft: tuple[str, int]
    http: tuple[str, int]
    data_dir: Path
    argv: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.http[0]}:{self.http[1]}"


def layout(nodes: int, data_dir: str | os.PathLike[str], base_port: int, *, host: str = "127.0.0.1",
           extra_args: list[str] | None = None, fast: bool = False, token: str = "") -> list[NodeSpec]:
    """The specs of ``nodes`` nodes at ``base_port`` (raft BASE+i, HTTP BASE+100+i) under ``data_dir``,
    of the cluster named ``token`` (``--cluster-token``; none when empty)."""
    if not 1 <= nodes <= 99:
        raise ValueError(f"nodes must be between 1 and 99, got {nodes}")
    if not 1 <= base_port or base_port + 100 + nodes > 65535:
        raise ValueError(f"base port {base_port} leaves no room for {nodes} nodes (HTTP ports go up to BASE+100+N)")
    root = Path(data_dir).resolve()
    ids = [f"node{i}" for i in range(1, nodes + 1)]
    peers = ",".join(f"{nid}={host}:{base_port + i}" for i, nid in enumerate(ids, 1))
    entry = ["-m", "raftctl.node"] if fast else ["-m", "raftctl", "node"]
    specs = []
    for i, nid in enumerate(ids, 1):
        spec = NodeSpec(nid, (host, base_port + i), (host, base_port + 100 + i), root / nid)
        spec.argv = [sys.executable, *entry, "--id", nid, "--peers", peers, "--data-dir", str(spec.data_dir),
                     "--http", f"{host}:{base_port + 100 + i}", *(["--cluster-token", token] if token else []),
                     *(extra_args or [])]
        specs.append(spec)
    return specs


def restart_argv(argv: list[str]) -> list[str]:
    """The argv that starts a node of a cluster that has run (cluster.json's): ``--rejoin-if-empty``,
    so that a node whose data dir was lost rejoins from its peers rather than vote as a new member
    (raft.py), instead of a ``--rejoin`` that a start on its kept data does not need."""
    kept = [a for a in argv if a not in ("--rejoin", "--rejoin-if-empty")]
    return [*kept, "--rejoin-if-empty"]


def _die_with_parent(signum: int) -> Callable[[], None]:
    def ask() -> None:  # pragma: no cover - runs in the child between fork and exec
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signum), 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    return ask


# Ask the kernel to SIGTERM a node when the thread that started it dies (kill -9 of the launcher
# included), so a node never outlives its ``cluster up``; SIGTERM stops it cleanly. A throwaway
# cluster (a chaos campaign's) asks for SIGKILL instead: a SIGSTOPped node never acts on SIGTERM.
_stop_with_parent = _die_with_parent(signal.SIGTERM)


class ClusterLauncher:
    """Processes for the nodes in ``specs``; logs and ``cluster.json`` in ``root``."""

    def __init__(self, specs: list[NodeSpec], root: str | os.PathLike[str], *, record: bool = True,
                 base_port: int | None = None, token: str = "", throwaway: bool = False) -> None:
        self.specs = {s.node_id: s for s in specs}
        self.root = Path(root)
        self.recording = record
        self.base_port = base_port
        self.token = token
        self._with_parent = _die_with_parent(signal.SIGKILL) if throwaway else _stop_with_parent
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._all: list[subprocess.Popen[bytes]] = []
        self._written: bytes | None = None  # what cluster.json last got
        # pids of processes started outside the launcher (by hand, from cluster.json's argv) that
        # serve a node whose own process exited: cluster.json gives them, so its pids stay true
        self.elsewhere: dict[str, int] = {}

    @property
    def ids(self) -> list[str]:
        return list(self.specs)

    def start(self, node_id: str) -> subprocess.Popen[bytes]:
        proc = self.procs.get(node_id)
        if proc is not None and proc.poll() is None:
            raise RuntimeError(f"{node_id} is already running (pid {proc.pid})")
        self.root.mkdir(parents=True, exist_ok=True)
        spec = self.specs[node_id]
        with open(self.root / f"{node_id}.log", "ab") as log:
            # its own session: a Ctrl-C in the terminal reaches the launcher, which stops the nodes
            proc = subprocess.Popen(spec.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True,
                                    preexec_fn=self._with_parent if sys.platform == "linux" else None)
        self.procs[node_id] = proc
        self._all.append(proc)
        if self.recording:
            self.write_cluster_json()
        return proc

    def start_all(self) -> None:
        for node_id in self.specs:
            self.start(node_id)

    def running(self, node_id: str) -> bool:
        proc = self.procs.get(node_id)
        return proc is not None and proc.poll() is None

    def signal(self, node_id: str, signum: int) -> None:
        proc = self.procs.get(node_id)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signum)

    def kill(self, node_id: str) -> None:
        """kill -9 and reap."""
        proc = self.procs.get(node_id)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    def stop_all(self, timeout: float = 10.0) -> dict[str, int | None]:
        """SIGTERM every running node (a paused one is continued first), wait, kill -9 what is left."""
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGCONT)
                    proc.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for node_id, proc in self.procs.items():
            try:
                codes[node_id] = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
                codes[node_id] = None
        self.close()
        return codes

    def close(self) -> None:
        """Kill every process this launcher ever started (idempotent)."""
        for proc in self._all:
            if proc.poll() is None:
                proc.kill()
        for proc in self._all:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass

    # ---- cluster.json and the nodes' API ------------------------------------------------------

    def record(self) -> Path:
        """From now on keep cluster.json current (written now, and at every start)."""
        self.recording = True
        return self.write_cluster_json()

    def cluster_doc(self) -> dict[str, Any]:
        nodes = []
        for node_id, spec in self.specs.items():
            proc = self.procs.get(node_id)
            nodes.append({
                "id": node_id,
                "pid": proc.pid if proc is not None and proc.poll() is None else self.elsewhere.get(node_id),
                "raft": f"{spec.raft[0]}:{spec.raft[1]}",
                "http": spec.url,
                "data_dir": str(spec.data_dir),
                "argv": restart_argv(spec.argv),
            })
        doc: dict[str, Any] = {"nodes": nodes}
        if self.base_port is not None:
            doc["base_port"] = self.base_port
        doc["cluster_token"] = self.token
        return doc

    def write_cluster_json(self, if_changed: bool = False) -> Path:
        """Write ``cluster.json`` (by rename); with ``if_changed`` only when its content changed
        since the last write (a node died, say). OSError (a full or read-only disk) is raised."""
        path = self.root / "cluster.json"
        data = orjson.dumps(self.cluster_doc(), option=orjson.OPT_INDENT_2)
        if if_changed and data == self._written:
            return path
        tmp = path.with_name("cluster.json.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        self._written = data
        return path

    def status(self, node_id: str, timeout: float = 0.5) -> dict[str, Any] | None:
        host, port = self.specs[node_id].http
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", "/api/status")
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                return None
            doc = orjson.loads(body)
            return doc if isinstance(doc, dict) else None
        except (OSError, http.client.HTTPException, orjson.JSONDecodeError):
            return None
        finally:
            conn.close()

    def leader(self) -> str | None:
        best: tuple[int, str] | None = None
        for node_id in self.specs:
            report = self.status(node_id)
            if report and report.get("state") == "LEADER":
                if best is None or report["term"] > best[0]:
                    best = (report["term"], node_id)
        return best[1] if best else None

    def wait_leader(self, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader is not None:
                return leader
            time.sleep(0.02)
        return None

    def log_tail(self, node_id: str, chars: int = 2000) -> str:
        try:
            return (self.root / f"{node_id}.log").read_text(errors="replace")[-chars:]
        except OSError:
            return ""
