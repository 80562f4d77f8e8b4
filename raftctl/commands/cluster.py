"""`raftctl cluster up`: a whole cluster of node processes, a trading load, the collector and the dashboard."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Optional

import typer

from raftctl.commands._common import CliError, finite_float, valid_host

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


def _check_ports_free(ports: list[tuple[str, int]]) -> None:
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
        raise CliError(f"port(s) in use: {', '.join(taken)}; choose another --base-port (or stop what holds them)", 1)


@app.command("up", help=HELP, epilog=EPILOG)
def up(
    data_dir: Annotated[str, typer.Option("--data-dir", metavar="DIR",
                                          help="Where each node keeps its log (DIR/node1, ...) and cluster.json.")],
    nodes: Annotated[int, typer.Option("--nodes", min=1, max=9, help="Cluster size.")] = 3,
    base_port: Annotated[int, typer.Option("--base-port", min=1, max=65000,
                                           help="Node i: Raft on BASE+i, HTTP on BASE+100+i.")] = 7000,
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

    if base_port + 100 + nodes > 65535:
        raise typer.BadParameter(f"{base_port} leaves no room for HTTP ports up to BASE+100+{nodes}",
                                 param_hint="'--base-port'")
    try:
        sinks = build_sinks(sink)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="'--sink'") from None
    runner = ClusterUp(nodes=nodes, data_dir=data_dir, base_port=base_port, rate=rate, interval=interval,
                       retention=retention, fsync=fsync, sinks=sinks)
    try:
        runner.start_nodes()
        url = runner.start_monitor(host, port)
        load = f"{rate:g} orders/s" if rate > 0 else "no load"
        _say(f"raftctl cluster: {nodes} nodes up (Raft {base_port + 1}-{base_port + nodes}, HTTP "
             f"{base_port + 101}-{base_port + 100 + nodes}), leader {runner.first_leader}, {load}; "
             f"dashboard at {url}/ ; {runner.root / 'cluster.json'}; Ctrl-C or SIGTERM stops every process")
        runner.run()
    finally:
        runner.close()
    outside = _nodes_started_elsewhere(runner.specs)
    if outside:
        running = ", ".join(f"{node_id} (pid {pid})" for node_id, pid in outside)
        _say(f"raftctl cluster: every node it started stopped (logs synced); still running, started "
             f"outside it (from cluster.json's argv?): {running}: stop it with kill PID")
    else:
        _say("raftctl cluster: every node stopped (logs synced)")


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class ClusterUp:
    """The parts of ``cluster up``, started in order and closed in reverse."""

    def __init__(self, *, nodes: int, data_dir: str, base_port: int, rate: float, interval: float,
                 retention: float, fsync: bool, sinks: list[Any]) -> None:
        from pathlib import Path

        from raftctl.node.launcher import ClusterLauncher, layout

        self.root = Path(data_dir).resolve()
        self.nodes = nodes
        self.rate = rate
        self.interval = interval
        self.retention = retention
        self.sinks = sinks
        self._check_dir()
        self.specs = layout(nodes, self.root, base_port, extra_args=[] if fsync else ["--no-fsync"])
        self.launcher = ClusterLauncher(self.specs, self.root)
        self.load: Any = None
        self.source: Any = None
        self.collector: Any = None
        self.dashboard: Any = None
        self.first_leader: str | None = None
        import threading

        self.stop_event = threading.Event()
        self.reported_exits: set[tuple[str, int]] = set()

    def _check_dir(self) -> None:
        import orjson

        path = self.root / "cluster.json"
        if self.root.exists() and not self.root.is_dir():
            raise CliError(f"--data-dir {self.root} is not a directory", 2)
        if not path.exists():
            return
        try:
            doc = orjson.loads(path.read_bytes())
            ids = [n["id"] for n in doc["nodes"]]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise CliError(f"{path} is unreadable ({err}); is this a raftctl cluster dir?", 2) from None
        want = [f"node{i}" for i in range(1, self.nodes + 1)]
        if ids != want:
            raise CliError(f"{self.root} holds a cluster of {len(ids)} nodes ({', '.join(ids)}); "
                           f"run with --nodes {len(ids)} or use another --data-dir", 2)
        import os

        alive = [n for n in doc["nodes"] if isinstance(n.get("pid"), int) and _pid_runs_node(n["pid"], n["id"])]
        if alive:
            running = ", ".join(f"{n['id']} (pid {n['pid']})" for n in alive)
            raise CliError(f"{path}: nodes still running: {running}; stop them first "
                           f"(another 'cluster up' on this dir?) [pid {os.getpid()}]", 1)

    def start_nodes(self) -> None:
        import time

        ports = [p for s in self.specs for p in (s.raft, s.http)]
        _check_ports_free(ports)
        self.launcher.start_all()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for node_id in self.launcher.ids:
                proc = self.launcher.procs[node_id]
                if proc.poll() is not None:
                    tail = self.launcher.log_tail(node_id, 600).strip().splitlines()
                    last = tail[-1] if tail else "(no output)"
                    raise CliError(f"{node_id} exited with code {proc.returncode} at start: {last} "
                                   f"(log: {self.root / (node_id + '.log')})", 1)
            leader = self.launcher.leader()
            if leader is not None:
                self.first_leader = leader
                return
            time.sleep(0.05)
        raise CliError(f"no leader within 30 s; see the logs in {self.root}", 1)

    def start_monitor(self, host: str, port: int) -> str:
        from raftctl.dashboard.server import DashboardServer
        from raftctl.node.loadgen import LoadGenerator
        from raftctl.runtime.collector import MetricsCollector
        from raftctl.sources import build_source

        urls = {s.node_id: s.url for s in self.specs}
        if self.rate > 0:
            batch = max(1, int(self.rate // 100))
            self.load = LoadGenerator(urls, rate=self.rate, workers=4, batch=batch).start()
        spec = "raftctl:" + ",".join(f"{k}={v}" for k, v in urls.items())
        self.source = build_source(spec, timeout=min(0.8 * self.interval, 5.0), load=self.load)
        try:
            self.collector = MetricsCollector(collection_interval=self.interval, retention_period=self.retention,
                                              sinks=self.sinks)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="'--retention' / '--interval'") from None
        self.collector.set_source(self.source)
        self.collector.start()
        try:
            self.dashboard = DashboardServer(collector=self.collector, host=host, port=port).start()
        except OSError as err:
            raise CliError(f"dashboard: {err.strerror or err}; choose another --port (0 picks a free one)", 1) from None
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
            # say when a node dies; never restart it (the monitor is there to show it)
            for node_id, proc in self.launcher.procs.items():
                code = proc.poll()
                if code is not None and (node_id, proc.pid) not in self.reported_exits:
                    self.reported_exits.add((node_id, proc.pid))
                    _say(f"raftctl cluster: {node_id} (pid {proc.pid}) exited with code {code}; not restarting it "
                         f"(its argv is in cluster.json)")
            self.launcher.write_cluster_json()

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
            self.launcher.stop_all()
            self.launcher.write_cluster_json()


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
