"""`raftctl serve`: a long-running cluster with trading load, collector and dashboard."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

import typer

from raftctl.commands._common import MAX_SHARDS, count_of, finite_float, page_refresh_seconds, valid_host

HELP = "Run a cluster with trading load, the collector and the dashboard until Ctrl-C or SIGTERM."
EPILOG = (
    "Examples:\n\n"
    "  raftctl serve\n\n"
    "  raftctl serve --port 9090 --chaos demo --sink jsonl:metrics.jsonl\n\n"
    "  raftctl serve --chaos random --seed 7 --rate 500 --interval 0.5 --retention 3600\n\n"
    "  raftctl serve --shards 4 --chaos demo\n\n"
    "--chaos demo repeats the demo's schedule every minute (follower crash, leader crash, quorum "
    "loss, leader isolation); --chaos random plays seeded random scenarios from the library (see "
    "'raftctl demo --help'), one at a time, the first within 15 s, then 15-40 s apart.\n\n"
    "--source picks what is watched: 'sim' (the default) is the built-in simulated cluster; "
    "'etcd:http://127.0.0.1:2379' a real etcd cluster; 'raftctl:http://127.0.0.1:7101,...' raftctl "
    "node processes. The collector sees only what the nodes report. --nodes, --shards, --rate, "
    "--seed and --chaos shape the simulated cluster and apply to 'sim' only.\n\n"
    "Then, in another terminal:  raftctl watch"
)

TICK_SECONDS = 0.3  # the same tick as the demo, so --chaos demo replays its schedule
CHAOS_GAP_S = (15.0, 40.0)  # --chaos random: quiet time between two scenarios
CHAOS_FIRST_S = (5.0, 15.0)  # and before the first, so a fresh server shows chaos soon


class Chaos(str, Enum):
    none = "none"
    demo = "demo"
    random = "random"


def command(
    ctx: typer.Context,
    nodes: Annotated[int, typer.Option("--nodes", min=1, max=51, help="Simulated cluster size (--source sim only).")] = 5,
    shards: Annotated[int, typer.Option("--shards", min=1, max=MAX_SHARDS,
                                        help="Raft groups (multi-Raft) of the simulated cluster; symbols spread over them.")] = 1,
    host: Annotated[str, typer.Option("--host", callback=valid_host,
                                      help="Listen address (0.0.0.0 exposes it on every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Dashboard port (0 picks a free one).")] = 8080,
    rate: Annotated[float, typer.Option("--rate", callback=finite_float("--rate", 0, 100_000), metavar="ORDERS_PER_S",
                                        help="Trading load on the simulated cluster, orders per second.")] = 100.0,
    chaos: Annotated[Chaos, typer.Option("--chaos", help="Faults: none, the demo's schedule repeated, or seeded random ones.",
                                         case_sensitive=False)] = Chaos.none,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the simulation and --chaos random (--source sim only).")] = 42,
    interval: Annotated[float, typer.Option("--interval", callback=finite_float("--interval", 0.05, 3600),
                                                help="Seconds between samples (0.05 to 3600).")] = 1.0,
    retention: Annotated[float, typer.Option("--retention", callback=finite_float("--retention", 1),
                                                 help="Seconds of history kept (at least 1).")] = 300.0,
    source: Annotated[str, typer.Option("--source", metavar="SPEC",
                                        help="What to watch: sim, etcd:URL[,URL...] or raftctl:URL[,URL...].")] = "sim",
    sink: Annotated[Optional[list[str]], typer.Option("--sink", metavar="SPEC",
                                                      help="Stream samples and alerts to a sink (see 'raftctl sinks'). "
                                                           "Repeatable.")] = None,
) -> None:
    """Serve a simulated cluster and its dashboard until Ctrl-C or SIGTERM (then exit 0)."""
    from raftctl.commands._common import build_sinks
    from raftctl.sources import SourceError, parse_source_spec

    try:
        source_name, _arg = parse_source_spec(source)
    except SourceError as err:
        raise typer.BadParameter(str(err), param_hint="'--source'") from None
    if source_name != "sim" and chaos is not Chaos.none:
        raise typer.BadParameter("--chaos injects faults into the simulated cluster; it needs --source sim "
                                 "(for real processes use 'raftctl chaos --target')", param_hint="'--chaos'")
    if source_name != "sim":
        for name in ("nodes", "shards", "rate", "seed"):
            given = ctx.get_parameter_source(name)
            # (the enum of the click that typer runs on: compared by name, not by class)
            if given is not None and given.name not in ("DEFAULT", "DEFAULT_MAP"):
                raise typer.BadParameter(
                    f"--{name} shapes the simulated cluster; --source {source_name} watches a real one "
                    f"as it is (leave --{name} out)", param_hint=f"'--{name}'")
    try:
        sinks = build_sinks(sink)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="'--sink'") from None
    server = Server(nodes=nodes, shards=shards, rate=rate, chaos=chaos.value, seed=seed, interval=interval,
                    retention=retention, sinks=sinks, source=source)
    try:
        server.setup()
        url = server.start_dashboard(host, port)
        if server.external is not None:
            what = f"source {server.external.name}, {count_of(len(server.external.members()), 'member')}"
        else:
            layout = f"{nodes} nodes, {shards} shards" if shards > 1 else f"{nodes} nodes"
            what = f"{layout}, {rate:g} orders/s, chaos {chaos.value}, seed {seed}"
        _say(f"raftctl serve: dashboard at {url}/ ({what}); Ctrl-C or SIGTERM stops")
        server.run()
    finally:
        server.close()
    stuck = server.collector.undrained_sinks if server.collector is not None else []
    waiting = undelivered_lines(server.collector.sinks if server.collector is not None else [])
    flushed = "sinks flushed" if not waiting else "sinks closed"
    if stuck:
        flushed = f"not drained in time, its queue dropped: {', '.join(stuck)}"
    _say(f"raftctl serve: stopped after {count_of(server.samples, 'sample')}; {flushed}")
    for line in waiting:
        _say(f"raftctl serve: {line}")


def undelivered_lines(sinks: list[Any]) -> list[str]:
    """One line per closed sink still holding alert events it could not deliver (a receiver
    that was down): where they wait, or that they are lost without a spool."""
    lines = []
    for sink in sinks:
        try:
            stats = sink.stats()
        except Exception:  # a sink's figures are a courtesy here, never a failure of the stop
            continue
        pending = stats.get("pending") if isinstance(stats, dict) else None
        if not isinstance(pending, int) or isinstance(pending, bool) or pending <= 0:
            continue
        where = stats.get("url") or sink.name
        events = count_of(pending, "alert event")
        if stats.get("spool"):
            lines.append(f"{sink.name} {where}: {events} not delivered yet, kept in its spool "
                         f"{stats['spool']}; the next run with that spool sends them")
        else:
            lines.append(f"{sink.name} {where}: {events} not delivered and lost (held in memory only, "
                         "without a spool file of their own)")
    return lines


def _say(text: str) -> None:
    import sys

    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class Server:
    """Owns the running pieces; ``run()`` paces the simulation until a stop signal."""

    def __init__(self, *, nodes: int, rate: float, chaos: str, seed: int, interval: float,
                 retention: float, sinks: list[Any], shards: int = 1, source: str = "sim") -> None:
        import threading

        self.source_spec = source
        self.external: Any = None  # the Source when it is not the built-in simulation
        self.nodes = nodes
        self.shards = shards
        self.rate = rate
        self.chaos = chaos
        self.seed = seed
        self.interval = interval
        self.retention = retention
        self.sinks = sinks
        self.samples = 0
        self.cluster: Any = None
        self.collector: Any = None
        self.dashboard: Any = None
        self.stop_event = threading.Event()
        self.chaos_loop: Any = None  # a scenarios.ScenarioLoop unless --chaos none
        self.tick = 0

    def setup(self) -> None:
        import random

        import typer as _typer

        from raftctl.commands._common import build_trading_cluster
        from raftctl.runtime.collector import MetricsCollector

        try:
            self.collector = MetricsCollector(collection_interval=self.interval, retention_period=self.retention,
                                              sinks=self.sinks)
        except ValueError as err:
            raise _typer.BadParameter(str(err), param_hint="'--retention' / '--interval'") from None
        if self.source_spec.strip().lower() != "sim":
            from raftctl.sources import SourceError, build_source

            try:
                # each poll must end well before the next one is due
                self.external = build_source(self.source_spec, timeout=min(0.8 * self.interval, 5.0))
            except SourceError as err:
                raise _typer.BadParameter(str(err), param_hint="'--source'") from None
            self.collector.set_source(self.external)
            self._collect(None)
            return
        self.cluster = build_trading_cluster(self.nodes, self.seed, self.shards, self.rate)
        self.collector.set_cluster(self.cluster)
        self.cluster.every(self.interval, self._collect)
        self._collect(self.cluster)
        self.chaos_loop = self._chaos_loop(random.Random(self.seed * 1_000_003 + 7),
                                           random.Random(self.seed * 7_777 + 1))

    def _chaos_loop(self, rng: Any, choice_rng: Any) -> Any:
        """The scenarios --chaos plays, on the tick clock (tick k at k * TICK_SECONDS)."""
        from raftctl.commands import faults
        from raftctl.core import scenarios

        if self.chaos == "demo":
            period = faults.DEFAULT_TICKS * TICK_SECONDS
            schedule = faults.schedule(faults.default_fail_at(faults.DEFAULT_TICKS), faults.DEFAULT_TICKS,
                                       TICK_SECONDS)
            return scenarios.repeat_loop(self.cluster, schedule, period, rng)
        if self.chaos == "random":
            return scenarios.random_loop(self.cluster, rng, choice_rng, gap_s=CHAOS_GAP_S, first_s=CHAOS_FIRST_S)
        return None

    def _collect(self, cluster: Any) -> None:
        self.collector.collect(now=None if cluster is None else cluster.now)
        self.samples += 1

    def start_dashboard(self, host: str, port: int) -> str:
        from raftctl.commands._common import CliError
        from raftctl.dashboard.server import DashboardServer

        try:
            self.dashboard = DashboardServer(collector=self.collector, host=host, port=port,
                                            refresh_seconds=page_refresh_seconds(self.collector.collection_interval)).start()
        except OSError as err:
            import errno

            hint = "; choose another --port (0 picks a free one)" if err.errno == errno.EADDRINUSE else ""
            raise CliError(f"{err.strerror or err}{hint}") from None
        for sink in self.collector.sinks:
            sink.set_dashboard_url(self.dashboard.url)  # alert sinks link back to it (generatorURL)
        return self.dashboard.url

    def _install_signals(self) -> None:
        import signal

        def on_term(signum: int, frame: Any) -> None:
            self.stop_event.set()

        signal.signal(signal.SIGTERM, on_term)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, on_term)

    def run(self) -> None:
        """Advance the cluster in real time, applying chaos, until SIGTERM/SIGINT.

        The one pacer (raftctl/runtime/pacer.py) advances the simulation in short slices against
        the wall clock, so samples (scheduled every interval inside the simulation) come evenly
        spaced in wall time; chaos steps are applied at tick boundaries.
        """
        from raftctl.runtime.pacer import Pacer

        self._install_signals()
        if self.external is not None:
            # a real cluster runs by itself: sample it on the wall clock until told to stop
            self.collector.start()
            try:
                while not self.stop_event.wait(0.2):
                    pass
            except KeyboardInterrupt:
                pass
            self.samples = self.collector.samples_collected
            return
        # stopped (SIGSTOP, a suspended host) or starved for long, the simulation does not catch
        # up the lost stretch: the samples it would have held are missed ticks
        pacer = Pacer(self.cluster, speed=1.0, on_fall_behind=self.collector.count_missed)
        base = self.cluster.now - self.tick * TICK_SECONDS
        try:
            while not self.stop_event.is_set():
                self._chaos_step()
                if not pacer.advance_to(base + self.tick * TICK_SECONDS, stop=self.stop_event):
                    break
        except KeyboardInterrupt:
            pass  # Ctrl-C is the normal way to stop a server

    def step(self) -> None:
        """One tick as fast as possible: the chaos steps due at its start, then TICK_SECONDS."""
        self._chaos_step()
        self.cluster.run_for(TICK_SECONDS)

    def _chaos_step(self) -> None:
        self.tick += 1
        if self.chaos_loop is not None:
            from raftctl.commands.faults import describe_step

            for record in self.chaos_loop.advance(self.tick * TICK_SECONDS):
                text = describe_step(record, f"chaos [{record.fault.scenario if record.fault else '?'}]")
                if text:
                    _say(text)

    def close(self) -> None:
        if self.dashboard is not None:
            self.dashboard.stop()
            self.dashboard = None
        if self.collector is not None:
            self.collector.stop()  # drains and closes the sinks
        if self.external is not None:
            self.external.close()
