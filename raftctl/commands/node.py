"""`raftctl node`: one exchange node as an OS process (TCP to its peers, a write-ahead log on disk)."""

from __future__ import annotations

import re
import sys
from typing import Annotated, Optional

import typer

from raftctl.commands._common import CliError

HELP = "Run one exchange node as a process: Raft over TCP, a write-ahead log in --data-dir, an HTTP API."
EPILOG = (
    "Examples:\n\n"
    "  raftctl node --id node1 --peers node1=127.0.0.1:7001,node2=127.0.0.1:7002,node3=127.0.0.1:7003 "
    "--data-dir data/node1 --http 127.0.0.1:7101\n\n"
    "  curl -s http://127.0.0.1:7101/api/status | jq .state\n\n"
    "  curl -s -XPOST http://127.0.0.1:7101/api/orders -d "
    "'{\"client_id\": \"c1\", \"seq\": 1, \"symbol\": \"BTC-USD\", \"side\": \"buy\", \"price\": 100, \"qty\": 1}'\n\n"
    "Orders go to the leader (a follower answers 421 with the leader's URL in Location). "
    "SIGTERM or Ctrl-C stops the node cleanly; kill -9 loses nothing that was acknowledged."
)

_NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")


def parse_address(text: str, what: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> (host, port); CliError (exit 2) otherwise."""
    from raftctl.dashboard.server import validate_listen_host

    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text:
        raise CliError(f"{what} {text!r} must be HOST:PORT, like 127.0.0.1:7001", 2)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        validate_listen_host(host)
    except ValueError as err:
        raise CliError(f"{what} {text!r}: {err}", 2) from None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise CliError(f"{what} {text!r}: the port must be a number from 1 to 65535", 2)
    return host, int(port_text)


def parse_peers(text: str) -> dict[str, tuple[str, int]]:
    """``node1=127.0.0.1:7001,node2=...`` -> {id: (host, port)}; CliError (exit 2) when malformed."""
    peers: dict[str, tuple[str, int]] = {}
    seen: dict[tuple[str, int], str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, address = item.partition("=")
        if not sep:
            raise CliError(f"--peers item {item!r} must be ID=HOST:PORT, like node1=127.0.0.1:7001", 2)
        name = name.strip()
        if not _NODE_ID.fullmatch(name):
            raise CliError(f"--peers: {name!r} is not a node id (letters, digits, '_', '.', '-'; at most 32)", 2)
        if name in peers:
            raise CliError(f"--peers names {name} twice", 2)
        addr = parse_address(address, f"--peers {name}")
        if addr in seen:
            raise CliError(f"--peers: {name} and {seen[addr]} have the same address {address}", 2)
        peers[name] = addr
        seen[addr] = name
    if not peers:
        raise CliError("--peers is empty: list every member as ID=HOST:PORT, separated by commas", 2)
    return peers


def command(
    node_id: Annotated[str, typer.Option("--id", help="This node's id (one of the --peers names).")],
    peers: Annotated[str, typer.Option("--peers", metavar="ID=HOST:PORT,...",
                                       help="Every member of the cluster, this node included, with its Raft address.")],
    data_dir: Annotated[str, typer.Option("--data-dir", metavar="DIR",
                                          help="Where the write-ahead log and snapshots live (created if missing).")],
    http: Annotated[Optional[str], typer.Option("--http", metavar="HOST:PORT",
                                                help="Serve the node's HTTP API there (status, orders, /metrics).")] = None,
    fsync: Annotated[bool, typer.Option("--fsync/--no-fsync",
                                        help="fsync the log before sending or acknowledging (--no-fsync: benchmarks only; "
                                             "a crash of the machine may then lose acknowledged orders).")] = True,
    snapshot_threshold: Annotated[int, typer.Option("--snapshot-threshold", min=4, max=10_000_000,
                                                    help="Log entries kept before a snapshot compacts the log.")] = 2000,
    election_timeout_ms: Annotated[float, typer.Option("--election-timeout-ms", min=20.0, max=60_000.0,
                                                       help="Minimum election timeout (the maximum is twice it; "
                                                            "heartbeats every third of it).")] = 150.0,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed for election timeouts (default: random).")] = None,
) -> None:
    """Run one node until SIGTERM or Ctrl-C."""
    from raftctl.core.raft import RaftConfig

    members = parse_peers(peers)
    if node_id not in members:
        raise CliError(f"--id {node_id!r} is not among --peers ({', '.join(members)})", 2)
    http_address = parse_address(http, "--http") if http is not None else None
    if http_address is not None and http_address in members.values():
        raise CliError(f"--http {http} is also a Raft address in --peers", 2)
    raft = RaftConfig(election_timeout_min_ms=election_timeout_ms, election_timeout_max_ms=2 * election_timeout_ms,
                      heartbeat_ms=election_timeout_ms / 3.0)

    import logging

    from raftctl.node.process import NodeConfig, NodeProcess
    from raftctl.node.wal import DataDirError

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format=f"raftctl node {node_id}: %(levelname)s %(message)s")
    config = NodeConfig(node_id=node_id, peers=members, data_dir=data_dir, http=http_address, fsync=fsync,
                        snapshot_threshold=snapshot_threshold, raft=raft, seed=seed)
    try:
        node = NodeProcess(config)
    except DataDirError as err:
        raise CliError(str(err), 2) from None
    try:
        node.start()
    except OSError as err:
        host, port = members[node_id]
        raise CliError(f"cannot listen ({err.strerror or err}): Raft on {host}:{port}"
                       + (f", HTTP on {http}" if http else ""), 1) from None
    node.install_signal_handlers()
    storage = node.host.replicas[0].storage
    sys.stderr.write(
        f"raftctl node {node_id}: Raft on {members[node_id][0]}:{members[node_id][1]}, "
        f"HTTP {node.http_url or 'off'}, data {data_dir} (term {storage.current_term}, "
        f"log to index {storage.last_index}, snapshot at {storage.snap_index}); SIGTERM stops\n")
    sys.stderr.flush()
    node.run()
    sys.stderr.write(f"raftctl node {node_id}: stopped (log synced)\n")
