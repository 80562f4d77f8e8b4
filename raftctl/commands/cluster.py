"""`raftctl cluster up`: a whole cluster of node processes, a trading load, the collector and the dashboard."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from raftctl.commands._common import CliError, finite_float, page_refresh_seconds, valid_host

HELP = "Run a cluster of real node processes (TCP, a write-ahead log each) with load, collector and dashboard."
EPILOG = (
    "Examples:\n\n"
    "  raftctl cluster up --nodes 3 --data-dir data --base-port 7000 --port 8080\n\n"
    "  raftctl cluster up --data-dir data --rate 0          # nodes and dashboard, no load\n\n"
    "Node i listens for peers on BASE+i and serves its HTTP API on BASE+100+i; DIR/cluster.json lists "
    "each node's id, pid, addresses and the argv that starts it again. Crashed nodes are not restarted "
    "(start one again with its argv). Ctrl-C or SIGTERM stops every process; run again on the same "
    "DIR to bring the same cluster back with its data."
)

app = typer.Typer(name="cluster", help=HELP, no_args_is_help=True, rich_markup_mode="rich",
                  context_settings={"help_option_names": ["-h", "--help"]})


def _check_ports_free(ports: list[tuple[str, int]], movable: bool = True) -> None:
    """Exit 1 naming the ports taken; ``movable``: the cluster may go to another --base-port."""
    import socket

    taken = []
    for host, port in ports:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                taken.append(f"{host}:{port}")
    if taken:
        hint = ("choose another --base-port (or stop what holds them)" if movable else
                "this dir's nodes listen there (their ids and addresses are the cluster's identity): stop what "
                "holds them, e.g. ss -ltnp | grep :" + taken[0].rpartition(":")[2])
        raise CliError(f"port(s) in use: {', '.join(taken)}; {hint}", 1)


@app.command("up", help=HELP, epilog=EPILOG)
def up(
    data_dir: Annotated[str, typer.Option("--data-dir", metavar="DIR",
                                          help="Where each node keeps its log (DIR/node1, ...) and cluster.json.")],
    nodes: Annotated[int, typer.Option("--nodes", min=1, max=9, help="Cluster size.")] = 3,
    base_port: Annotated[Optional[int], typer.Option("--base-port", min=1, max=65000,
                                                     help="Node i: Raft on BASE+i, HTTP on BASE+100+i "
                                                          "(default: the one --data-dir was created with, else 7000).")] = None,
    host: Annotated[str, typer.Option("--host", callback=valid_host,
                                      help="Address of the dashboard (nodes always use 127.0.0.1).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Dashboard port (0 picks a free one).")] = 8080,
    rate: Annotated[float, typer.Option("--rate", callback=finite_float("--rate", 0, 100_000), metavar="ORDERS_PER_S",
                                        help="Trading load in orders per second (0: none).")] = 100.0,
    interval: Annotated[float, typer.Option("--interval", callback=finite_float("--interval", 0.1, 3600),
                                            help="Seconds between samples.")] = 1.0,
    retention: Annotated[float, typer.Option("--retention", callback=finite_float("--retention", 1),
                                             help="Seconds of history kept.")] = 300.0,
    fsync: Annotated[bool, typer.Option("--fsync/--no-fsync", help="Nodes fsync their logs (default).")] = True,
    sink: Annotated[Optional[list[str]], typer.Option("--sink", metavar="SPEC",
                                                      help="Stream samples and alerts to a sink (repeatable).")] = None,
) -> None:
    """Run the cluster until Ctrl-C or SIGTERM (then exit 0, every process stopped)."""
    from raftctl.commands._common import build_sinks

    if base_port is not None and base_port + 100 + nodes > 65535:
        raise typer.BadParameter(f"{base_port} leaves no room for HTTP ports up to BASE+100+{nodes}",
                                 param_hint="'--base-port'")
    try:
        sinks = build_sinks(sink)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="'--sink'") from None
    runner = ClusterUp(nodes=nodes, data_dir=data_dir, base_port=base_port, rate=rate, interval=interval,
                       retention=retention, fsync=fsync, sinks=sinks, host=host, port=port)
    if runner.rejoining:
        which = ", ".join(runner.rejoining)
        kept = [s.node_id for s in runner.specs if s.node_id not in runner.rejoining]
        _say(f"raftctl cluster: {which} ha{'s' if len(runner.rejoining) == 1 else 've'} no data while "
             f"{', '.join(kept)} {'does' if len(kept) == 1 else 'do'} (a lost or emptied data dir): started with "
             f"--rejoin, campaigning only once caught up with a leader and voting only for a candidate that "
             f"holds the log")
    try:
        runner.start_nodes()
        url = runner.start_monitor(host, port)
        runner.launcher.record()  # only now: a run that failed leaves the previous cluster.json alone
        load = f"{rate:g} orders/s" if rate > 0 else "no load"
        base = runner.base_port
        _say(f"raftctl cluster: {_count(nodes, 'node')} up (Raft {_ports(base + 1, nodes)}, HTTP "
             f"{_ports(base + 101, nodes)}), leader {runner.first_leader}, {load}; "
             f"dashboard at {url}/ ; {runner.root / 'cluster.json'}; Ctrl-C or SIGTERM stops every process")
        runner.run()
    finally:
        runner.close()
    if runner.outcomes:
        outside = _nodes_started_elsewhere(runner.specs)
        _say("raftctl cluster: " + _stopped_line(runner.outcomes, outside, runner.started_outside))


# what `raftctl node`'s exit codes mean (raftctl node --help)
_EXIT_MEANINGS = {1: ": it could not listen", 2: ": it refused its options or data dir",
                  3: ": a leader would have overwritten entries it holds committed (the cluster lost committed entries)",
                  4: ": it could not write its data dir (a full disk?)"}


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _ports(first: int, n: int) -> str:
    return str(first) if n == 1 else f"{first}-{first + n - 1}"


def _signal_name(code: int) -> str:
    import signal

    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _stopped_line(outcomes: dict[str, tuple[bool, int | None]], outside: list[tuple[str, int]],
                  started_outside: dict[str, int] | None = None) -> str:
    """What became of each node ``cluster up`` started: ``{id: (running when it stopped them, exit code)}``
    (code None: it did not stop in time and was killed), then the nodes running that it did not start.
    Only a node that was running and exited 0 on SIGTERM synced its log on the way out.
    ``started_outside``: nodes a process started by hand served after their own had died (their
    pid): the death of the node's own process is old news then, and not what ended it."""
    groups: dict[tuple[str, str], list[str]] = {}
    running_outside = {node_id for node_id, _pid in outside}
    for node_id, (was_running, code) in outcomes.items():
        if not was_running and node_id in (started_outside or {}) and node_id not in running_outside:
            what = ("was not running (started outside it since, that process had exited)",
                    "were not running (started outside it since, those processes had exited)")
        elif was_running and code == 0:
            what = ("stopped (log synced)", "stopped (logs synced)")
        elif was_running and code is None:
            what = ("did not stop in time and was killed", "did not stop in time and were killed")
        elif was_running:
            what = (f"exited with code {code} when stopped (see its log)",
                    f"exited with code {code} when stopped (see their logs)")
        elif code is not None and code < 0:
            what = (f"was already dead ({_signal_name(code)})", f"were already dead ({_signal_name(code)})")
        else:
            what = (f"had already exited with code {code}", f"had already exited with code {code}")
        groups.setdefault(what, []).append(node_id)
    parts = [f"{', '.join(ids)} {what[0] if len(ids) == 1 else what[1]}" for what, ids in groups.items()]
    if outside:
        running = ", ".join(f"{node_id} (pid {pid})" for node_id, pid in outside)
        pids = " ".join(str(pid) for _node_id, pid in outside)
        parts.append(f"still running, started outside it (from cluster.json's argv?): {running}: "
                     f"stop {'it' if len(outside) == 1 else 'them'} with kill {pids}")
    return "; ".join(parts)


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class ClusterUp:
    """The parts of ``cluster up``, started in order and closed in reverse.

    Everything that can be checked before a node starts is checked in ``__init__`` (CliError:
    exit 2 for a bad option, 1 for what the machine refuses); nothing is written until the nodes
    run and the dashboard listens (the caller then calls ``launcher.record()``).
    """

    READY_TIMEOUT_S = 10.0  # after the first leader: until every node answers and reaches its peers

    def __init__(self, *, nodes: int, data_dir: str, base_port: int | None, rate: float, interval: float,
                 retention: float, fsync: bool, sinks: list[Any], host: str | None = None,
                 port: int | None = None) -> None:
        import secrets
        import threading

        from raftctl.node.launcher import ClusterLauncher, layout

        self.nodes = nodes
        self.rate = rate
        self.interval = interval
        self.retention = retention
        self.sinks = sinks
        self.root = _data_dir(data_dir)
        recorded_base, token = self._check_dir()
        if base_port is None:
            base_port = recorded_base if recorded_base is not None else 7000
        elif recorded_base is not None and recorded_base != base_port:
            raise CliError(f"{self.root} holds a cluster at --base-port {recorded_base} (Raft "
                           f"{_ports(recorded_base + 1, nodes)}); its nodes belong to those addresses: run with "
                           f"--base-port {recorded_base} (or leave it out), or use another --data-dir", 2)
        if base_port + 100 + nodes > 65535:
            raise CliError(f"--base-port {base_port} leaves no room for HTTP ports up to BASE+100+{nodes}", 2)
        self.base_port = base_port
        self.token = token if token is not None else secrets.token_hex(8)
        self.specs = layout(nodes, self.root, base_port, extra_args=[] if fsync else ["--no-fsync"],
                            token=self.token)
        # nodes whose dirs lost their data while others kept theirs: they rejoin (raft.py), or a
        # majority of them could elect one of themselves and drop what the cluster acknowledged
        self.rejoining = self._without_data()
        for spec in self.specs:
            if spec.node_id in self.rejoining:
                spec.argv.append("--rejoin")
        if port:
            self._check_port_clash(port)
        self._check_locks()
        _check_ports_free([p for s in self.specs for p in (s.raft, s.http)], movable=recorded_base is None)
        if host is not None and port is not None:
            _check_dashboard_address(host, port)
        _make_dir(self.root)  # the first thing it writes (nodes create their dirs, logs and LOCKs below)
        self.launcher = ClusterLauncher(self.specs, self.root, record=False, base_port=base_port, token=self.token)
        self.ready_timeout = self.READY_TIMEOUT_S
        self.not_ready = ""  # what was still missing when the wait for a whole cluster gave up
        self.load: Any = None
        self.source: Any = None
        self.collector: Any = None
        self.dashboard: Any = None
        self.first_leader: str | None = None
        self.outcomes: dict[str, tuple[bool, int | None]] = {}
        self.stop_event = threading.Event()
        self.reported_exits: set[tuple[str, int]] = set()
        # processes started by hand for a node whose own had died: seen, not answering yet; and
        # the last one that answered, for each node (what the closing line says of it)
        self.outside_pending: dict[str, int] = {}
        self.started_outside: dict[str, int] = {}
        self.write_error: str | None = None  # the last failure to update cluster.json, said once

    def _check_dir(self) -> tuple[int | None, str | None]:
        """Refuse a dir of another size or whose nodes run; (its base port, its token) if it has them."""
        import orjson

        path = self.root / "cluster.json"
        if not path.exists():
            return None, self._token_from_nodes()
        try:
            doc = orjson.loads(path.read_bytes())
            ids = [n["id"] for n in doc["nodes"]]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise CliError(f"{path} is unreadable ({err}); is this a raftctl cluster dir?", 2) from None
        want = [f"node{i}" for i in range(1, self.nodes + 1)]
        if ids != want:
            raise CliError(f"{self.root} holds a cluster of {len(ids)} nodes ({', '.join(ids)}); "
                           f"run with --nodes {len(ids)} or use another --data-dir", 2)
        alive = [n for n in doc["nodes"] if isinstance(n.get("pid"), int) and _pid_runs_node(n["pid"], n["id"])]
        if alive:
            running = ", ".join(f"{n['id']} (pid {n['pid']})" for n in alive)
            raise CliError(f"{path}: nodes still running: {running}; stop them first "
                           f"(another 'cluster up' on this dir?)", 1)
        base = doc.get("base_port")
        if not isinstance(base, int):  # written before base_port was recorded: node1's Raft port - 1
            try:
                base = int(str(doc["nodes"][0]["raft"]).rpartition(":")[2]) - 1
            except (KeyError, IndexError, ValueError, TypeError):
                base = None
        token = doc.get("cluster_token")
        return base, token if isinstance(token, str) else self._token_from_nodes()

    def _without_data(self) -> list[str]:
        """The nodes whose dir holds no log and no snapshot when another node's does."""
        empty = [s.node_id for s in self.specs
                 if not any(s.data_dir.glob("wal-*.log")) and not any(s.data_dir.glob("snap-*.json"))]
        return empty if len(empty) < len(self.specs) else []

    def _token_from_nodes(self) -> str | None:
        """The token the node dirs were created with (None: no dir says; a new one is made)."""
        import orjson

        for i in range(1, self.nodes + 1):
            try:
                meta = orjson.loads((self.root / f"node{i}" / "meta.json").read_bytes())
            except (OSError, ValueError):
                continue
            if isinstance(meta, dict) and isinstance(meta.get("cluster_token"), str):
                return str(meta["cluster_token"])
        return None

    def _check_port_clash(self, port: int) -> None:
        for spec in self.specs:
            for kind, (_h, p), offset in (("Raft", spec.raft, 0), ("HTTP", spec.http, 100)):
                if p == port:
                    i = spec.node_id.removeprefix("node")
                    raise CliError(f"--port {port} is also {spec.node_id}'s {kind} port (BASE+{offset + int(i)} with "
                                   f"--base-port {self.base_port}); choose another --port (0 picks a free one) "
                                   f"or another --base-port", 2)

    def _check_locks(self) -> None:
        """A node dir whose lock is held (a node started from cluster.json's argv, say): exit 1 now."""
        import fcntl
        import os

        for spec in self.specs:
            lock = spec.data_dir / "LOCK"
            if not lock.exists():
                continue
            try:
                fd = os.open(lock, os.O_RDWR)
            except OSError:
                continue  # the node will say why it cannot use its dir
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = [pid for nid, pid in _nodes_started_elsewhere([spec])]
                who = f" (pid {holder[0]})" if holder else ""
                raise CliError(f"data dir {spec.data_dir} is in use by another process{who}: is this cluster "
                               f"already running? stop it first", 1) from None
            finally:
                os.close(fd)

    def start_nodes(self) -> None:
        import time

        self.launcher.start_all()
        deadline = time.monotonic() + 30
        while True:
            self._check_exits()
            leader = self.launcher.leader()
            if leader is not None:
                self.first_leader = leader
                break
            if time.monotonic() > deadline:
                raise CliError(f"no leader within 30 s; see the logs in {self.root}", 1)
            time.sleep(0.05)
        # a monitor started now would see nodes still starting, or not yet connected: false alerts
        deadline = time.monotonic() + self.ready_timeout
        while True:
            missing, leader = self._missing()
            if not missing:
                self.first_leader = leader or self.first_leader
                return
            if time.monotonic() > deadline:
                self.not_ready = "; ".join(missing)
                _say(f"raftctl cluster: after {self.ready_timeout:g} s the cluster is not whole yet "
                     f"({self.not_ready}); starting the monitor anyway")
                return
            time.sleep(0.05)

    def _check_exits(self) -> None:
        for node_id in self.launcher.ids:
            proc = self.launcher.procs[node_id]
            if proc.poll() is not None:
                tail = self.launcher.log_tail(node_id, 600).strip().splitlines()
                last = tail[-1] if tail else "(no output)"
                raise CliError(f"{node_id} exited with code {proc.returncode} at start: {last} "
                               f"(log: {self.root / (node_id + '.log')})", 1)

    def _missing(self) -> tuple[list[str], str | None]:
        """What keeps the cluster from being whole: a node not answering, no leader every node
        follows, a node whose transport does not reach every peer; and the leader."""
        self._check_exits()
        n = len(self.launcher.ids)
        reports = {nid: self.launcher.status(nid) for nid in self.launcher.ids}
        missing = [f"{nid} not answering" for nid, r in reports.items() if r is None]
        leaders = {r.get("leader_id") for r in reports.values() if r is not None}
        leader = next(iter(leaders)) if len(leaders) == 1 else None
        if leader is None or (reports.get(leader) or {}).get("state") != "LEADER":
            missing.append("no leader every node follows")
            leader = None
        for nid, r in reports.items():
            if r is not None and r.get("peers_connected") != n - 1:
                missing.append(f"{nid} reaches {r.get('peers_connected')} of {n - 1} peers")
        return missing, leader

    def start_monitor(self, host: str, port: int) -> str:
        from raftctl.dashboard.server import DashboardServer
        from raftctl.node.loadgen import LoadGenerator
        from raftctl.runtime.collector import MetricsCollector
        from raftctl.sources import build_source

        urls = {s.node_id: s.url for s in self.specs}
        if self.rate > 0:
            batch = max(1, int(self.rate // 100))
            self.load = LoadGenerator(urls, rate=self.rate, workers=4, batch=batch)
        spec = "raftctl:" + ",".join(f"{k}={v}" for k, v in urls.items())
        self.source = build_source(spec, timeout=min(0.8 * self.interval, 5.0), load=self.load)
        if self.load is not None:
            # started after the source: the first sample's rate (orders acknowledged over the
            # source's clock) then covers the load's whole life, never orders sent before it
            self.load.start()
        try:
            self.collector = MetricsCollector(collection_interval=self.interval, retention_period=self.retention,
                                              sinks=self.sinks)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="'--retention' / '--interval'") from None
        try:
            self.dashboard = DashboardServer(collector=self.collector, host=host, port=port,
                                            refresh_seconds=page_refresh_seconds(self.collector.collection_interval)).start()
        except OSError as err:
            raise CliError(f"dashboard: {err.strerror or err}{_listen_hint(err, host)}", 1) from None
        self.collector.set_source(self.source)
        self.collector.start()
        for s in self.collector.sinks:
            s.set_dashboard_url(self.dashboard.url)
        return str(self.dashboard.url)

    def run(self) -> None:
        import signal

        def on_term(_signum: int, _frame: Any) -> None:
            self.stop_event.set()

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, on_term)
        while not self.stop_event.wait(0.5):
            self._supervise_once()

    def _supervise_once(self) -> None:
        """Say when a node dies (never restart it: the monitor is there to show it) and keep
        cluster.json's pids true."""
        for node_id, proc in self.launcher.procs.items():
            code = proc.poll()
            if code is not None and (node_id, proc.pid) not in self.reported_exits:
                self.reported_exits.add((node_id, proc.pid))
                how = f"was killed by {_signal_name(code)}" if code < 0 else \
                    f"exited with code {code}{_EXIT_MEANINGS.get(code, '')} (see {self.root / (node_id + '.log')})"
                _say(f"raftctl cluster: {node_id} (pid {proc.pid}) {how}; not restarting it "
                     f"(its argv is in cluster.json)")
        self._follow_restarts()
        try:
            self.launcher.write_cluster_json(if_changed=True)
            self.write_error = None
        except OSError as err:
            # a full or read-only disk must not take the monitor down with it: say so once, retry
            message = f"{err.strerror or err}"
            if message != self.write_error:
                _say(f"raftctl cluster: warning: cannot update {self.launcher.root / 'cluster.json'} "
                     f"({message}); the cluster and its monitor keep running, and it is tried again")
            self.write_error = message

    def _follow_restarts(self) -> None:
        """A node whose process exited and that someone started again (from cluster.json's argv):
        say so once, and give its pid in cluster.json, so the README's kill-and-restart works again."""
        launcher = self.launcher
        dead = [spec for spec in launcher.specs.values() if (proc := launcher.procs.get(spec.node_id)) is not None
                and proc.poll() is not None]
        found = dict(_nodes_started_elsewhere(dead)) if dead else {}
        confirmed: dict[str, int] = {}
        for node_id, pid in found.items():
            if launcher.elsewhere.get(node_id) == pid:
                confirmed[node_id] = pid
            elif launcher.status(node_id, timeout=0.3) is not None:
                # it runs once it answers: a start that refuses its data dir exits before it listens
                _say(f"raftctl cluster: {node_id} runs again (pid {pid}, started outside it); "
                     f"cluster.json gives that pid")
                confirmed[node_id] = self.started_outside[node_id] = pid
                self.outside_pending.pop(node_id, None)
            else:
                self.outside_pending[node_id] = pid
        for node_id, pid in launcher.elsewhere.items():
            if confirmed.get(node_id) != pid:
                _say(f"raftctl cluster: {node_id} (pid {pid}, started outside it) is no longer running; "
                     f"not restarting it (its argv is in cluster.json)")
        for node_id, pid in list(self.outside_pending.items()):
            if found.get(node_id) != pid:
                del self.outside_pending[node_id]
                _say(f"raftctl cluster: {node_id} (pid {pid}, started outside it) exited before it answered; "
                     f"its own output says why (a data dir it refused, a port in use)")
        launcher.elsewhere = confirmed

    def close(self) -> None:
        if self.load is not None:
            self.load.stop()
        if self.collector is not None:
            self.collector.stop()
        if self.dashboard is not None:
            self.dashboard.stop()
        if self.source is not None:
            self.source.close()
        if self.launcher.procs:
            running = {nid: self.launcher.running(nid) for nid in self.launcher.procs}
            codes = self.launcher.stop_all()
            self.outcomes = {nid: (running[nid], codes.get(nid)) for nid in self.launcher.procs}
            if self.launcher.recording:
                try:
                    self.launcher.write_cluster_json()
                except OSError as err:
                    _say(f"raftctl cluster: warning: cannot update {self.launcher.root / 'cluster.json'} "
                         f"({err.strerror or err}): its pids are of the run that just stopped")


def _data_dir(text: str) -> Path:
    """``--data-dir`` as an absolute path; CliError (exit 2) when it cannot be a directory."""
    if not text.strip():
        raise CliError("--data-dir is empty: give a directory (created if missing)", 2)
    path = Path(text).expanduser().resolve()
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                what = "is a file" if part.is_file() else "exists"
                raise CliError(f"--data-dir {path}: not a directory ({part} {what})", 2)
            break
    return path


def _make_dir(path: Path) -> None:
    import os

    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        base = next((p for p in path.parents if p.exists()), path)
        raise CliError(f"--data-dir {path}: cannot create it in {base} ({err.strerror or err})", 2) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise CliError(f"--data-dir {path}: not writable", 2)


def _listen_hint(err: OSError, host: str) -> str:
    import errno

    if err.errno == errno.EADDRINUSE:
        return "; choose another --port (0 picks a free one)"
    if err.errno == errno.EADDRNOTAVAIL:
        return "; choose another --host (127.0.0.1, or 0.0.0.0 for every interface)"
    return ""


def _check_dashboard_address(host: str, port: int) -> None:
    """Bind the dashboard's address for a moment, before any node starts: exit 1 with the right hint."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise CliError(f"--host {host}: {err.strerror or err}; choose another --host", 1) from None
    family, _type, _proto, _name, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            if err.errno == errno.EADDRNOTAVAIL:
                raise CliError(f"--host {host}: no such address on this machine; choose another --host "
                               f"(127.0.0.1, or 0.0.0.0 for every interface)", 1) from None
            if err.errno == errno.EADDRINUSE:
                raise CliError(f"--port {port}: already in use on {host}; choose another --port "
                               f"(0 picks a free one)", 1) from None
            raise CliError(f"cannot listen on {host}:{port} ({err.strerror or err})", 1) from None


def _nodes_started_elsewhere(specs: list[Any]) -> list[tuple[str, int]]:
    """``(node id, pid)`` of running processes that serve one of these nodes' data dirs: after
    ``close`` only a node someone started again by hand (from its argv in cluster.json) is left."""
    import os

    wanted = {str(spec.data_dir).encode(): spec.node_id for spec in specs}
    found = []
    try:
        entries = [e.name for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:  # no /proc: nothing to say
        return []
    for name in entries:
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"--data-dir" not in argv or not any(b"raftctl" in a for a in argv):
            continue
        at = argv.index(b"--data-dir") + 1
        if at < len(argv) and argv[at] in wanted:
            found.append((wanted[argv[at]], int(name)))
    return sorted(found)


def _pid_runs_node(pid: int, node_id: str) -> bool:
    """True if ``pid`` is alive and its command line is a raftctl node ``node_id``."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return b"--id" in argv and node_id.encode() in argv and any(b"raftctl" in a for a in argv)
