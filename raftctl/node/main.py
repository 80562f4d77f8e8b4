"""Start one node process from its options: shared by ``raftctl node`` and ``python -m raftctl.node``.

``python -m raftctl.node`` takes the same options as ``raftctl node`` without loading the CLI
(Typer and Rich): a node restarts in about half the time, which matters to tests and benchmarks
that kill and restart whole clusters many times.
"""

from __future__ import annotations

import argparse
import re
import sys

from raftctl.commands._common import CliError

__all__ = ["advertised_http", "main", "parse_address", "parse_peers", "run_node"]

_NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_TOKEN = re.compile(r"[A-Za-z0-9_.:+@-]{0,128}")
# the exit code of a node that refused a leader's entries over ones it holds committed
COMMITTED_CONFLICT_EXIT = 3
# the exit code of a node that could not write its data dir while running (a full disk, an I/O error)
WRITE_FAILED_EXIT = 4


def parse_address(text: str, what: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> (host, port); CliError (exit 2) otherwise."""
    from raftctl.dashboard.server import validate_listen_host

    text = text.strip()
    if "://" in text:
        raise CliError(f"{what} {text!r} must be HOST:PORT without a scheme, like 127.0.0.1:7001", 2)
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
    items = [item.strip() for item in text.split(",")]
    if len(items) > 1 and not all(items):
        # two commas, or one at an end: perhaps a member left out, which would make another cluster
        # (the members are part of its identity) that this cluster's nodes refuse without a word here
        raise CliError(f"--peers {text!r} has an empty item (two commas together, or one at an end): "
                       f"list every member as ID=HOST:PORT, separated by single commas", 2)
    for item in items:
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


_WILDCARDS = frozenset(("0.0.0.0", "::"))


def advertised_http(http: tuple[str, int], raft: tuple[str, int],
                    advertise: tuple[str, int] | None = None) -> tuple[tuple[str, int], str | None]:
    """The HTTP address a node tells its peers, clients (a follower's 421 ``Location``) and
    monitors (``http``, ``leader_url``, ``peer_urls``), and a warning or None.

    ``advertise`` (``--advertise-http``) when given; else ``http`` (``--http``), except that a
    wildcard host (0.0.0.0, ::) is no address anyone can reach: the host of this node's Raft
    address stands for it, as the peers reach this node there. Both wildcards: kept, with a warning.
    """
    if advertise is not None:
        if advertise[0] in _WILDCARDS:
            shown = f"[{advertise[0]}]" if ":" in advertise[0] else advertise[0]
            raise CliError(f"--advertise-http {shown}:{advertise[1]} is a wildcard: give the address "
                           f"peers, clients and monitors reach this node's HTTP API at", 2)
        return advertise, None
    if http[0] not in _WILDCARDS:
        return http, None
    if raft[0] not in _WILDCARDS:
        return (raft[0], http[1]), None
    return http, (f"--http {http[0]} and this node's Raft address {raft[0]} are wildcards: peers, clients "
                  f"and monitors are told {http[0]}, which only this machine can reach; say the address "
                  f"with --advertise-http")


def run_node(node_id: str, peers: str, data_dir: str, http: str | None = None, fsync: bool = True,
             snapshot_threshold: int = 10_000, election_timeout_ms: float = 150.0, seed: int | None = None,
             cluster_token: str = "", advertise_http: str | None = None, rejoin: bool = False,
             rejoin_if_empty: bool = False) -> None:
    """Validate the options (CliError, exit 2, for bad ones), then run the node until SIGTERM."""
    from raftctl.core.raft import RaftConfig

    if not data_dir.strip():
        raise CliError("--data-dir is empty: give the directory of this node's log", 2)
    if not _TOKEN.fullmatch(cluster_token):
        raise CliError("--cluster-token may hold at most 128 letters, digits and '_.:+@-'", 2)
    members = parse_peers(peers)
    if node_id not in members:
        raise CliError(f"--id {node_id!r} is not among --peers ({', '.join(members)})", 2)
    http_address = parse_address(http, "--http") if http is not None else None
    if http_address is not None and http_address in members.values():
        raise CliError(f"--http {http} is also a Raft address in --peers", 2)
    if advertise_http is not None and http_address is None:
        raise CliError("--advertise-http needs --http: it says where others reach the HTTP API --http serves", 2)
    shown_http: tuple[str, int] | None = None
    warning = None
    if http_address is not None:
        told = parse_address(advertise_http, "--advertise-http") if advertise_http is not None else None
        shown_http, warning = advertised_http(http_address, members[node_id], told)
    if not 4 <= snapshot_threshold <= 10_000_000:
        raise CliError(f"--snapshot-threshold {snapshot_threshold} is not between 4 and 10000000", 2)
    if not 20.0 <= election_timeout_ms <= 60_000.0:
        raise CliError(f"--election-timeout-ms {election_timeout_ms:g} is not between 20 and 60000", 2)
    raft = RaftConfig(election_timeout_min_ms=election_timeout_ms, election_timeout_max_ms=2 * election_timeout_ms,
                      heartbeat_ms=election_timeout_ms / 3.0)

    import logging

    from raftctl.node.process import CannotListen, NodeConfig, NodeProcess, address_text
    from raftctl.node.wal import DataDirError

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format=f"raftctl node {node_id}: %(levelname)s %(message)s")
    config = NodeConfig(node_id=node_id, peers=members, data_dir=data_dir, http=http_address, fsync=fsync,
                        snapshot_threshold=snapshot_threshold, raft=raft, seed=seed, cluster_token=cluster_token,
                        advertise_http=shown_http, rejoin=rejoin,
                        rejoin_if_empty=rejoin_if_empty)
    try:
        node = NodeProcess(config)
    except DataDirError as err:
        raise CliError(str(err), 2) from None
    try:
        node.start()
    except CannotListen as err:
        raise CliError(str(err), 1) from None
    node.install_signal_handlers()
    storage = node.host.replicas[0].storage
    if node.store.truncated_bytes and node.store.cut_after_clean_stop:
        sys.stderr.write(f"raftctl node {node_id}: cut {node.store.truncated_bytes} bytes from the end of its log: "
                         f"they were added after the node last stopped cleanly, not written by it\n")
    elif node.store.truncated_bytes:
        sys.stderr.write(f"raftctl node {node_id}: cut a torn tail of {node.store.truncated_bytes} bytes from its log "
                         f"(a partial last record: what a crash in the middle of a write leaves, a write the node had not "
                         f"acknowledged; a log cut short by hand may lose entries it had acknowledged, which it "
                         f"then gets again from its peers if the cluster committed them)\n")
    if node.store.upgraded_from is not None:
        sys.stderr.write(f"raftctl node {node_id}: {data_dir} was written by an earlier raftctl; it now belongs "
                         f"to cluster {node.cluster_id} (these --peers and --cluster-token) and to no other\n")
    if warning is not None:
        sys.stderr.write(f"raftctl node {node_id}: warning: {warning}\n")
    if node.store.rejoining_because_empty:
        sys.stderr.write(f"raftctl node {node_id}: {data_dir} is empty, and --rejoin-if-empty says this node ran "
                         f"before: it lost its data and rejoins from its peers (a node of a cluster being created "
                         f"starts without --rejoin-if-empty)\n")
    if node.store.rejoining:
        sys.stderr.write(f"raftctl node {node_id}: rejoining: it campaigns only once it has caught up with a "
                         f"leader, and votes only for a candidate that holds the log\n")
    listening = "" if shown_http == http_address or http_address is None else \
        f" (listening on {address_text(http_address)})"
    sys.stderr.write(
        f"raftctl node {node_id}: Raft on {members[node_id][0]}:{members[node_id][1]}, "
        f"HTTP {node.http_url or 'off'}{listening}, data {data_dir} (cluster {node.cluster_id}, term {storage.current_term}, "
        f"log to index {storage.last_index}, committed to {node.host.replicas[0].live_raft.commit_index}, "
        f"snapshot at {storage.snap_index}); SIGTERM stops\n")
    sys.stderr.flush()
    from raftctl.core.raft import CommittedEntryConflict

    try:
        node.run()
    except CommittedEntryConflict as err:
        # not a bug of this node: the cluster lost committed entries; stop, the log as it was
        raise CliError(str(err), COMMITTED_CONFLICT_EXIT) from None
    except OSError as err:
        where = err.filename or data_dir
        raise CliError(f"cannot write {where}: {err.strerror or err}; the node stopped (what it acknowledged "
                       f"is on disk: start it again once the disk has room or is fixed; a partial last record "
                       f"is cut then)", WRITE_FAILED_EXIT) from None
    sys.stderr.write(f"raftctl node {node_id}: stopped (log synced)\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m raftctl.node``: the options of ``raftctl node``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m raftctl.node", description="Run one exchange node (as raftctl node).")
    parser.add_argument("--id", required=True, dest="node_id")
    parser.add_argument("--peers", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--http")
    parser.add_argument("--advertise-http")
    parser.add_argument("--fsync", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--snapshot-threshold", type=int, default=10_000)
    parser.add_argument("--election-timeout-ms", type=float, default=150.0)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--cluster-token", default="")
    parser.add_argument("--rejoin", action="store_true")
    parser.add_argument("--rejoin-if-empty", action="store_true")
    args = parser.parse_args(argv)
    try:
        run_node(args.node_id, args.peers, args.data_dir, args.http, args.fsync, args.snapshot_threshold,
                 args.election_timeout_ms, args.seed, args.cluster_token, args.advertise_http, args.rejoin,
                 args.rejoin_if_empty)
    except CliError as err:
        sys.stderr.write(f"raftctl node: error: {err.message}\n")
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    return 0
