"""`raftctl node`: one exchange node as an OS process (TCP to its peers, a write-ahead log on disk)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from raftctl.commands._common import finite_float

HELP = "Run one exchange node as a process: Raft over TCP, a write-ahead log in --data-dir, an HTTP API."
EPILOG = (
    "Examples:\n\n"
    "  raftctl node --id node1 --peers node1=127.0.0.1:7001,node2=127.0.0.1:7002,node3=127.0.0.1:7003 "
    "--data-dir data/node1 --http 127.0.0.1:7101\n\n"
    "  curl -s http://127.0.0.1:7101/api/status | jq .state\n\n"
    "  curl -s -XPOST http://127.0.0.1:7101/api/orders -d "
    "'{\"client_id\": \"c1\", \"seq\": 1, \"symbol\": \"BTC-USD\", \"side\": \"buy\", \"price\": 100, \"qty\": 1}'\n\n"
    "Orders go to the leader (a follower answers 421 with the leader's URL in Location). "
    "SIGTERM or Ctrl-C stops the node cleanly; kill -9 loses nothing that was acknowledged.\n\n"
    "Exit codes: 0 stopped, 1 cannot listen, 2 bad options or data dir, 3 a leader sent entries that "
    "would overwrite ones this node holds committed (the cluster lost committed entries; the node "
    "stops with its log untouched), 4 it could not write its data dir while running (a full disk, an "
    "I/O error: the message names the file)."
)


def command(
    node_id: Annotated[str, typer.Option("--id", help="This node's id (one of the --peers names).")],
    peers: Annotated[str, typer.Option("--peers", metavar="ID=ADDR,...",
                                       help="Every member of the cluster, this node included, with its Raft address.")],
    data_dir: Annotated[str, typer.Option("--data-dir", metavar="DIR",
                                          help="Where the write-ahead log and snapshots live (created if missing).")],
    http: Annotated[Optional[str], typer.Option("--http", metavar="HOST:PORT",
                                                help="Serve the node's HTTP API there (status, orders, /metrics).")] = None,
    advertise_http: Annotated[Optional[str], typer.Option(
        "--advertise-http", metavar="HOST:PORT",
        help="Where peers, clients (a follower's 421 Location) and monitors are told to reach the HTTP API "
             "(default: --http; when --http binds 0.0.0.0 or ::, the host of this node's Raft address).")] = None,
    no_fsync: Annotated[bool, typer.Option("--no-fsync",
                                           help="Do not fsync the log before sending or acknowledging (benchmarks "
                                                "only: a crash of the machine may then lose acknowledged orders). "
                                                "Without it (or with --fsync) every Ready is synced first.")] = False,
    _fsync: Annotated[bool, typer.Option("--fsync", hidden=True)] = False,  # the default, said explicitly
    snapshot_threshold: Annotated[int, typer.Option("--snapshot-threshold", min=4, max=10_000_000, metavar="N",
                                                    help="Log entries kept before a snapshot compacts the log "
                                                         "(4 to 10000000).")] = 10_000,
    election_timeout_ms: Annotated[float, typer.Option("--election-timeout-ms", metavar="MS",
                                                       callback=finite_float("--election-timeout-ms", 20.0, 60_000.0),
                                                       help="Minimum election timeout, 20 to 60000 ms (the maximum "
                                                            "is twice it; heartbeats every third of it).")] = 150.0,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed for election timeouts (default: random).")] = None,
    cluster_token: Annotated[str, typer.Option("--cluster-token", metavar="TOKEN",
                                               help="Names this cluster, with the members' ids and addresses: give "
                                                    "every cluster its own (the same on each of its nodes). A data "
                                                    "dir keeps the cluster it was created in and refuses any other.")] = "",
    rejoin: Annotated[bool, typer.Option(
        "--rejoin", help="This node lost its data (an empty or replaced data dir of a node that ran before): it "
                         "campaigns only once it has caught up with a leader, and votes only for a candidate that "
                         "holds the log, so nodes that lost their data cannot elect one of themselves.")] = False,
    rejoin_if_empty: Annotated[bool, typer.Option(
        "--rejoin-if-empty", help="This node has run before: if its data dir is empty (its data was lost), start "
                                  "it as --rejoin does; a dir with data starts as usual. cluster.json's argv has "
                                  "it, so that a restart from that argv is safe either way.")] = False,
) -> None:
    """Run one node until SIGTERM or Ctrl-C."""
    from raftctl.node.main import run_node

    run_node(node_id, peers, data_dir, http, not no_fsync, snapshot_threshold, election_timeout_ms, seed,
             cluster_token, advertise_http, rejoin, rejoin_if_empty)
