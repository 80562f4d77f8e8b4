"""One exchange node as an OS process: the simulator's NodeHost on the wall clock.

Threads: the transport's (one sender per peer, one reader per inbound connection), the HTTP
server's (one per client connection) and the *loop*, which alone touches the NodeHost. Every
other thread talks to the loop through one queue: Raft messages, client orders, and calls such
as "give me your report".

One turn of the loop::

    take what is queued (waiting at most until the next Raft deadline)
    step every message, propose every order, tick if a timer is due, flush new entries
    store.sync()            # one write + fsync for every Ready of this turn (group commit)
    send what the host queued, then answer the clients whose orders were applied

so nothing leaves the process — a vote, an acknowledgement, a commit index, an answer to a
client — before the state it promises is on disk (the persist-before-send rule of
``raftctl/core/raft_messages.py``, kept for a whole batch of Readys at once).
"""

from __future__ import annotations

import logging
import os
import queue
import random
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

from raftctl.core.node import NodeHost
from raftctl.core.raft import LEADER, Message, RaftConfig
from raftctl.node.transport import Transport
from raftctl.node.wal import DiskLogStore

__all__ = ["NodeConfig", "NodeProcess", "OrderBatch", "MAX_TURN_ITEMS", "address_text"]

log = logging.getLogger(__name__)

MAX_TURN_ITEMS = 4096  # queue items handled per turn before syncing (bounds an answer's wait)
MAX_WAITING = 200_000  # orders waiting for their commit at most; beyond, 503
# orders proposed per loop turn: a big request is spread over turns, and between them the loop
# ticks, sends heartbeats and answers its peers (20,000 orders proposed in one turn held it past
# the election timeout, and the followers deposed a leader that was only busy)
PROPOSE_PER_TURN = 200
# log entries stepped per turn before syncing and answering: a follower sent a large batch acknowledges
# it in parts, so its leader hears from it within an election timeout even on a loaded machine
STEP_ENTRIES_PER_TURN = 1000
# committed entries applied per turn at most: a leader whose followers acknowledged thousands at
# once applies them over several turns, and ticks and answers its peers in between
APPLY_PER_TURN = 1000
# the loop publishes its report this often (ms of wall time), so /api/status answers at once
# even while the loop is busy with a backlog: a poll never queues behind a thousand orders
REPORT_EVERY_MS = 5.0
REPORT_MAX_AGE_MS = 100.0
SWITCH_INTERVAL_S = 0.001


@dataclass
class NodeConfig:
    """Everything ``raftctl node`` is told."""

    node_id: str
    peers: dict[str, tuple[str, int]]
    data_dir: str
    http: tuple[str, int] | None = None
    fsync: bool = True
    snapshot_threshold: int = 10_000
    raft: RaftConfig = field(default_factory=RaftConfig)
    seed: int | None = None
    cluster_token: str = ""  # with the peers' ids and addresses, the cluster's identity
    advertise_http: tuple[str, int] | None = None  # the HTTP address others are told (default: http)
    rejoin: bool = False  # lost its state: campaigns once caught up, votes only for a full log (raft.py)
    rejoin_if_empty: bool = False  # ran before: an empty data dir means its state was lost (rejoin then)


class CannotListen(OSError):
    """A node could not bind one of its addresses; the message names it and why."""


def address_text(address: tuple[str, int]) -> str:
    """``host:port`` (``[v6]:port``): how an address enters the cluster id."""
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class OrderBatch:
    """Orders of one HTTP request, ``(client_id, seq, command)`` each, and their answer.

    ``future`` resolves to ``(status, document)``: 200 with one result per order once every
    order is applied (or known applied before), else 421 / 503 with the reason.
    """

    __slots__ = ("orders", "future", "results", "remaining", "created", "proposed")

    def __init__(self, orders: list[tuple[str, int, dict[str, Any]]]) -> None:
        self.orders = orders
        self.future: Future[tuple[int, dict[str, Any]]] = Future()
        self.results: list[dict[str, Any] | None] = [None] * len(orders)
        self.remaining = 0  # orders proposed and not yet applied
        self.created = time.monotonic()
        self.proposed = 0  # orders looked at so far (proposed, or found applied before)


class NodeProcess:
    """A node host, its disk log, its transport and (optionally) its HTTP API, run by one loop."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.node_id = config.node_id
        members = sorted(config.peers)
        self.store = DiskLogStore(config.data_dir, config.node_id,
                                  {nid: address_text(addr) for nid, addr in config.peers.items()},
                                  token=config.cluster_token, fsync=config.fsync, rejoin=config.rejoin,
                                  rejoin_if_empty=config.rejoin_if_empty)
        self.cluster_id = self.store.cluster_id
        try:
            storages = self.store.load()
        except Exception:
            self.store.close()
            raise
        # (shard, client_id, seq) -> [(batch, position), ...] for orders proposed and not yet applied
        self.waiting: dict[tuple[int, str, int], list[tuple[OrderBatch, int]]] = {}
        self.host = NodeHost(config.node_id, members, config=config.raft, store=self.store,
                             waiting=self.waiting, snapshot_threshold=config.snapshot_threshold,
                             index=members.index(config.node_id))
        self.host.replicas[0].storage = storages[0]
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.http_url: str | None = None
        if config.http is not None:
            host, port = config.advertise_http or config.http
            shown = f"[{host}]" if ":" in host else host
            self.http_url = f"http://{shown}:{port}"
        self.transport = Transport(config.node_id, self.cluster_id, config.peers, self._deliver,
                                   http_url=self.http_url)
        self.http_server: Any = None
        self._t0 = time.monotonic()
        self._stopped = threading.Event()
        self._running = False
        self._flush = False
        self._answers: list[tuple[OrderBatch, tuple[int, dict[str, Any]]]] = []
        # batches not proposed whole yet, in arrival order (PROPOSE_PER_TURN)
        self._backlog: deque[OrderBatch] = deque()
        self.started_at = time.time()
        self.published: tuple[float, dict[str, Any]] | None = None  # (now_ms, report) of a recent turn
        self.counters = {
            "orders_received": 0, "orders_acknowledged": 0, "orders_duplicate": 0, "orders_redirected": 0,
            "orders_unavailable": 0, "batches": 0, "turns": 0, "messages_stepped": 0, "leader_terms": 0,
        }

    # ---- clock -----------------------------------------------------------------------------

    def now_ms(self) -> float:
        return (time.monotonic() - self._t0) * 1000.0

    # ---- inputs from other threads ---------------------------------------------------------

    def _deliver(self, msgs: list[Message]) -> None:
        self.inbox.put(msgs)

    def submit(self, orders: list[tuple[str, int, dict[str, Any]]]) -> Future[tuple[int, dict[str, Any]]]:
        """Hand validated orders to the loop; the future gives ``(status, document)``."""
        batch = OrderBatch(orders)
        self.inbox.put(batch)
        return batch.future

    def call(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run ``fn()`` on the loop thread (where the host may be read) and give its result."""
        fut: Future[Any] = Future()
        self.inbox.put((fn, fut))
        return fut

    def report(self) -> dict[str, Any]:
        """This node's own report (loop thread only): ``NodeHost.report`` plus process figures."""
        out = self.host.report(self.now_ms(), self.transport.peers_connected())
        out["node_id"] = self.node_id
        out["http"] = self.http_url
        out["pid"] = os.getpid()
        out["cluster_id"] = self.cluster_id
        out["leader_url"] = self.leader_url()
        out["members"] = list(self.host.member_ids)
        out["peer_urls"] = dict(self.transport.peer_http)
        return out

    def recent_report(self) -> dict[str, Any] | None:
        """The report the loop published at the end of a recent turn (any thread), or None if stale."""
        published = self.published
        if published is None or self.now_ms() - published[0] > REPORT_MAX_AGE_MS:
            return None
        return published[1]

    def leader_url(self) -> str | None:
        raft = self.host.replicas[0].raft
        if raft is None or raft.leader_id is None:
            return None
        if raft.leader_id == self.node_id:
            return self.http_url
        return self.transport.peer_http.get(raft.leader_id)

    def stats(self) -> dict[str, Any]:
        """Counters for /metrics (loop thread only)."""
        rep = self.host.replicas[0]
        t = self.transport.stats
        return {
            **self.counters, **self.store.stats(),
            "orders_waiting": len(self.waiting),
            "proposals_deduplicated": rep.proposals_deduplicated,
            "duplicates_skipped": rep.duplicates_skipped,
            "snapshots_taken": rep.snapshots_taken, "snapshots_installed": rep.snapshots_installed,
            "transport_frames_sent": t.frames_sent, "transport_messages_sent": t.messages_sent,
            "transport_bytes_sent": t.bytes_sent, "transport_frames_received": t.frames_received,
            "transport_messages_received": t.messages_received,
            "transport_dropped_queue_full": t.dropped_queue_full,
            "transport_dropped_unreachable": t.dropped_unreachable,
            "transport_dropped_isolated": t.dropped_isolated,
            "transport_connects": t.connects, "transport_connect_failures": t.connect_failures,
            "transport_bad_frames": t.bad_frames,
            "isolated_peers": sorted(self.transport.isolated),
        }

    # ---- life cycle ------------------------------------------------------------------------

    def start(self) -> "NodeProcess":
        """Listen (Raft and HTTP) and boot the host from disk; :meth:`run` then drives it.
        :class:`CannotListen` names the address that could not be bound."""
        what = f"Raft address {address_text(self.config.peers[self.node_id])}"
        try:
            self.transport.start()
            if self.config.http is not None:
                from raftctl.node.http_api import NodeHttpServer

                what = f"HTTP address {address_text(self.config.http)}"
                host, port = self.config.http
                self.http_server = NodeHttpServer(self, host, port)
                self.http_server.start()
        except OSError as err:
            self.transport.stop()
            # a node that never ran leaves no data dir of its own making behind: a retry with a
            # free port (other --peers) would find it bound to the taken one
            self.store.discard_new()
            raise CannotListen(f"cannot listen on the {what}: {err.strerror or err}") from err
        except Exception:
            self.transport.stop()
            self.store.close()
            raise
        # The loop thread is CPU-bound under load: with the default 5 ms switch interval a thread
        # waiting for the GIL (an HTTP answer, a transport read) waits up to 5 ms per blocking call.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        rng = random.Random(self.config.seed if self.config.seed is not None else os.urandom(16))
        self.host.boot(self.now_ms(), rng)
        for rep in self.host.replicas:
            rep.live_raft.rejoining = self.store.rejoining
        self.host.restore_commit({rep.group: self.store.durable_commit(rep.group) for rep in self.host.replicas})
        return self

    def stop(self) -> None:
        """Ask the loop to finish (safe from any thread and from a signal handler)."""
        self._stopped.set()
        self.inbox.put(None)

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: Any) -> None:
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self) -> None:
        """The loop; returns after :meth:`stop`, with the log synced and every socket closed."""
        self._running = True
        try:
            self._loop()
        finally:
            self._running = False
            self._shutdown()

    def _shutdown(self) -> None:
        if self.http_server is not None:
            self.http_server.stop()
        self.transport.stop()
        try:
            self.store.sync()
        finally:
            self.store.close()
        # whoever still waits gets an answer: retry elsewhere
        for waits in self.waiting.values():
            for batch, _i in waits:
                if not batch.future.done():
                    batch.future.set_result((503, {"error": "node stopping; retry with the same client_id and seq"}))
        self.waiting.clear()
        for batch in self._backlog:
            if not batch.future.done():
                batch.future.set_result((503, {"error": "node stopping; retry with the same client_id and seq"}))
        self._backlog.clear()
        while True:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, OrderBatch):
                item.future.set_result((503, {"error": "node stopping; retry with the same client_id and seq"}))
            elif isinstance(item, tuple) and not item[1].done():
                item[1].set_exception(RuntimeError("node stopping"))

    def _loop(self) -> None:
        inbox = self.inbox
        host = self.host
        store = self.store
        transport = self.transport
        counters = self.counters
        rep = host.replicas[0]
        backlog = self._backlog
        was_leader = False
        while not self._stopped.is_set():
            now = self.now_ms()
            wait_s = (host.next_deadline() - now) / 1000.0 if not backlog and not host.unapplied() else 0.0
            try:
                if wait_s > 0:
                    item = inbox.get(timeout=min(wait_s, 0.5))
                else:
                    item = inbox.get_nowait()
            except queue.Empty:
                item = False
            handled = 0
            entries = 0
            host.apply_budget = APPLY_PER_TURN
            budget = PROPOSE_PER_TURN
            while backlog and budget > 0:  # what earlier turns left, first: orders keep their order
                head = backlog[0]
                if head.future.done():  # answered already (its leader lost its leadership)
                    backlog.popleft()
                    continue
                taken = head.proposed
                finished = self._propose(head, budget)
                budget -= max(1, head.proposed - taken)
                if not finished:
                    break
                backlog.popleft()
            if item is False and budget < PROPOSE_PER_TURN:
                # proposing took time: what arrived meanwhile is stepped before the tick, or the
                # leader's quorum check would find no follower heard from and depose a busy leader
                try:
                    item = inbox.get_nowait()
                except queue.Empty:
                    pass
            while item is not False:
                if item is None:
                    return
                if type(item) is list:
                    now = self.now_ms()
                    for msg in item:
                        host.step(msg, now)
                        if msg.entries:
                            entries += len(msg.entries)
                    counters["messages_stepped"] += len(item)
                elif type(item) is OrderBatch:
                    if backlog or budget <= 0:
                        backlog.append(item)
                    else:
                        finished = self._propose(item, budget)
                        budget -= max(1, item.proposed)
                        if not finished:
                            backlog.append(item)
                else:
                    fn, fut = item
                    try:
                        fut.set_result(fn())
                    except Exception as err:  # a call's failure is the caller's, not the loop's
                        fut.set_exception(err)
                handled += 1
                if handled >= MAX_TURN_ITEMS or entries >= STEP_ENTRIES_PER_TURN:
                    break
                try:
                    item = inbox.get_nowait()
                except queue.Empty:
                    break
            now = self.now_ms()
            if host.next_deadline() <= now:
                host.tick(now)
            if host.apply_budget:  # what earlier turns' budgets held back
                host.apply_pending()
            if self._flush:
                self._flush = False
                host.flush(0)
            raft = rep.raft
            is_leader = raft is not None and raft.state == LEADER
            if host.elected:
                counters["leader_terms"] += len(host.elected)
                host.elected = []
            if was_leader and not is_leader and self.waiting:
                self._fail_waiting()
            was_leader = is_leader
            store.sync()
            counters["turns"] += 1
            if store.rejoining and not any(rep.live_raft.rejoining for rep in host.replicas):
                store.rejoined()
                raft = host.replicas[0].live_raft
                # news, not a warning: said as the start line is, on stderr (the node's log)
                sys.stderr.write(f"raftctl node {self.node_id}: caught up with leader {raft.leader_id} at index "
                                 f"{raft.commit_index}: a voter again\n")
                sys.stderr.flush()
            outgoing = host.take_outgoing()
            for dst, msgs in outgoing.items():
                transport.send(dst, msgs)
            if host.completions:
                self._complete(host.completions)
                host.completions = []
            answers = self._answers
            now = self.now_ms()
            # publish before answering: a client that got its 200 then reads a report that has it
            if answers or self.published is None or now - self.published[0] >= REPORT_EVERY_MS:
                self.published = (now, self.report())
            if answers:
                self._answers = []
                for batch, answer in answers:
                    if not batch.future.done():
                        batch.future.set_result(answer)

    # ---- orders ----------------------------------------------------------------------------

    def _not_leader(self) -> tuple[int, dict[str, Any]]:
        raft = self.host.replicas[0].raft
        leader = raft.leader_id if raft is not None else None
        url = self.leader_url()
        if leader is not None and leader != self.node_id and url is not None:
            self.counters["orders_redirected"] += 1
            return 421, {"error": f"{self.node_id} is not the leader; send orders to {leader}",
                         "leader": leader, "leader_url": url}
        self.counters["orders_unavailable"] += 1
        if leader is not None and leader != self.node_id:
            # it knows its leader, but no address to send a client to: retrying here cannot help
            return 503, {"error": f"{self.node_id} follows {leader} but knows no HTTP address for it (was {leader} "
                                  "started without --http?); orders go to the leader only",
                         "leader": leader, "leader_url": None}
        return 503, {"error": f"{self.node_id} knows no leader right now; retry shortly", "leader": None,
                     "leader_url": None}

    def _propose(self, batch: OrderBatch, budget: int) -> bool:
        """Propose up to ``budget`` more of ``batch``'s orders; True once it needs no more turns
        (every order proposed, or the batch answered). A batch that meets a lost leadership part
        way is answered 503 as a whole: its client retries with the same ids, and the orders
        already committed are found duplicates then."""
        host = self.host
        rep = host.replicas[0]
        raft = rep.raft
        first = batch.proposed == 0
        if first:
            self.counters["batches"] += 1
            self.counters["orders_received"] += len(batch.orders)
        if raft is None or raft.state != LEADER:
            self._answers.append((batch, self._not_leader()))
            return True
        if first and len(self.waiting) + len(batch.orders) > MAX_WAITING:
            batch.future.set_result((503, {"error": "too many orders waiting for commit; retry shortly"}))
            return True
        waiting = self.waiting
        results = batch.results
        orders = batch.orders
        start = batch.proposed
        end = min(len(orders), start + budget)
        for i in range(start, end):
            client_id, seq, command = orders[i]
            if rep.session_has(client_id, seq):
                results[i] = {"client_id": client_id, "seq": seq, "index": None, "duplicate": True}
                self.counters["orders_duplicate"] += 1
                continue
            index = host.propose(0, (client_id, seq, command, f"{client_id}:{seq}"))
            if index is None:  # a leadership transfer stopped the log
                for key in [k for k, waits in waiting.items() if any(b is batch for b, _ in waits)]:
                    waits = [w for w in waiting[key] if w[0] is not batch]
                    if waits:
                        waiting[key] = waits
                    else:
                        del waiting[key]
                batch.future.set_result((503, {"error": "leadership is moving; retry shortly"}))
                return True
            results[i] = {"client_id": client_id, "seq": seq, "index": index}
            key = (0, client_id, seq)
            queued = waiting.get(key)
            if queued is None:
                waiting[key] = [(batch, i)]
            else:
                queued.append((batch, i))
            batch.remaining += 1
        batch.proposed = end
        if batch.remaining:
            self._flush = True
        if end < len(orders):
            return False
        if batch.remaining == 0:
            self._answers.append((batch, (200, self._document(batch))))
        return True

    def _document(self, batch: OrderBatch) -> dict[str, Any]:
        return {"node_id": self.node_id, "results": batch.results}

    def _complete(self, completions: list[tuple[int, str, int, bool]]) -> None:
        waiting = self.waiting
        answers = self._answers
        acknowledged = 0
        for shard, client_id, seq, rejected in completions:
            done = waiting.pop((shard, client_id, seq), None)
            if done is None:
                continue
            for batch, i in done:
                result = batch.results[i]
                assert result is not None
                result["rejected"] = rejected
                acknowledged += 1
                batch.remaining -= 1
                if batch.remaining == 0 and batch.proposed == len(batch.orders) and not batch.future.done():
                    answers.append((batch, (200, self._document(batch))))
        self.counters["orders_acknowledged"] += acknowledged

    def _fail_waiting(self) -> None:
        """Leadership was lost: nobody will complete these here; the clients retry elsewhere."""
        status, doc = self._not_leader()
        doc = {**doc, "error": f"{self.node_id} lost leadership before the orders were applied; "
                              "retry with the same client_id and seq"}
        seen: set[int] = set()
        for waits in self.waiting.values():
            for batch, _i in waits:
                if id(batch) not in seen:
                    seen.add(id(batch))
                    self._answers.append((batch, (status, doc)))
        self.waiting.clear()
