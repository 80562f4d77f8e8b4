"""The client gateway: tickets, sessions, routing to shard leaders, retries with back-off.

Every order gets a ticket ``(client_id, seq)``; the pair is the order's identity in the Raft log
and in every node's session table, so a retry after a leader change applies at most once. A
ticket is acknowledged when a leader applies it. Unacknowledged tickets are resent after a
timeout that doubles per attempt (capped) with seeded jitter, so a slow network does not turn
retries into a flood; a leader that already holds the entry does not append it again
(``NodeHost.propose``).
"""

from __future__ import annotations

import random
from array import array
from collections import deque
from typing import TYPE_CHECKING, Any

from raftctl.core.exchange import validate_order

if TYPE_CHECKING:
    from raftctl.core.node import Replica
    from raftctl.core.sim.simulation import Simulation

__all__ = ["OrderTicket", "LatencyRing", "ClientGateway", "MAX_BACKOFF"]

MAX_BACKOFF = 8  # the retry timeout grows to at most 8x retry_after_s


class OrderTicket:
    """A client's handle on one submitted order: when it was sent, committed and acknowledged."""

    __slots__ = ("client_id", "seq", "shard", "command", "submitted_at", "committed_at",
                 "latency_ms", "acked", "rejected", "attempts", "last_sent", "retry_at", "held", "entry")

    def __init__(self, client_id: str, seq: int, command: dict[str, Any], submitted_at: float,
                 shard: int = 0) -> None:
        self.client_id = client_id
        self.seq = seq
        self.shard = shard
        self.command = command
        self.submitted_at = submitted_at  # simulated seconds
        self.committed_at: float | None = None
        self.latency_ms: float | None = None
        self.acked = False
        self.rejected = False  # the exchange refused it (e.g. a cancel of an unknown order)
        self.attempts = 0
        self.last_sent = -1e18
        self.retry_at = -1e18
        self.held = False  # waiting in the client's queue for a leader with room
        # What goes into the Raft log: (client id, sequence, command, order id).
        self.entry = (client_id, seq, command, f"{client_id}:{seq}")

    @property
    def order_id(self) -> str:
        """The id the exchange gives the order (unique within its shard)."""
        return f"{self.client_id}:{self.seq}"

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"<OrderTicket {self.order_id} shard={self.shard} acked={self.acked} latency_ms={self.latency_ms}>"


class LatencyRing:
    """The last ``size`` acknowledged orders' (time, latency, shard), preallocated so memory is flat."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("latency_window must be >= 1")
        self.size = size
        self.at_ms = array("d", bytes(8 * size))
        self.latency_ms = array("d", bytes(8 * size))
        self.shard = array("H", bytes(2 * size))
        self.count = 0  # total ever appended

    def append(self, at_ms: float, latency_ms: float, shard: int) -> None:
        i = self.count % self.size
        self.at_ms[i] = at_ms
        self.latency_ms[i] = latency_ms
        self.shard[i] = shard
        self.count += 1

    def appended_from(self, position: int, shard: int | None) -> list[float]:
        """Latencies appended at or after ``position`` (a past ``count``), oldest first, as far as
        the ring still holds them: unlike a time cutoff, this misses no order acknowledged at the
        very instant of the previous read, after it."""
        size = self.size
        lat, sh = self.latency_ms, self.shard
        out = []
        for n in range(max(position, self.count - size, 0), self.count):
            i = n % size
            if shard is None or sh[i] == shard:
                out.append(lat[i])
        return out

    def since(self, cutoff_ms: float, shard: int | None) -> list[float]:
        out = []
        size = self.size
        at, lat, sh = self.at_ms, self.latency_ms, self.shard
        for n in range(self.count - 1, max(self.count - size, 0) - 1, -1):
            i = n % size
            if at[i] <= cutoff_ms:
                break
            if shard is None or sh[i] == shard:
                out.append(lat[i])
        out.reverse()
        return out


class ClientGateway:
    """Routes client orders to their shard's leader and retries until a leader applies them."""

    def __init__(self, sim: "Simulation", retry_after_s: float, latency_window: int, seed: int) -> None:
        if retry_after_s <= 0:
            raise ValueError("retry_after_s must be positive")
        self.sim = sim
        self.retry_after_ms = retry_after_s * 1000.0
        # its own stream, so retry jitter never shifts the network's random draws
        self.rng = random.Random(seed * 2_654_435_761 + 97)
        self.random = self.rng.random
        self.client_seq: dict[tuple[str, int], int] = {}
        self.outstanding: dict[tuple[int, str, int], OrderTicket] = {}
        # orders waiting for their shard to have a leader with room, oldest first, per shard
        self.pending: list[deque[OrderTicket]] = [deque() for _ in range(sim.shards)]
        self.latencies = LatencyRing(latency_window)
        self.acked_by_shard = [0] * sim.shards
        self.retry_ticks = 0

    # ---- submitting ----------------------------------------------------------------------

    def prepare(self, orders: list[tuple[dict[str, Any], str]]) -> list[tuple[dict[str, Any], str, int]]:
        """Validate every order (ValueError on the first bad one) and find its shard."""
        sim = self.sim
        commands = []
        for order, client_id in orders:
            if not isinstance(client_id, str) or not client_id or ":" in client_id:
                raise ValueError("client_id must be a non-empty string without ':'")
            command = validate_order(order)
            if sim.shards == 1:
                shard = 0
            elif command["op"] == "cancel":
                symbol = order.get("symbol")
                if not isinstance(symbol, str) or not symbol:
                    raise ValueError("in a sharded cluster a cancel needs the order's 'symbol' to find its shard")
                shard = sim.shard_of(symbol)
            else:
                shard = sim.shard_of(command["symbol"])
            commands.append((command, client_id, shard))
        return commands

    def submit(self, commands: list[tuple[dict[str, Any], str, int]]) -> list[OrderTicket]:
        sim = self.sim
        leaders = [sim.leader_replica(g) for g in range(sim.shards)]
        client_seq = self.client_seq
        outstanding = self.outstanding
        now = sim.now
        tickets = []
        for command, client_id, shard in commands:
            key = (client_id, shard)
            seq = client_seq.get(key, 0) + 1
            client_seq[key] = seq
            ticket = OrderTicket(client_id, seq, command, now, shard)
            outstanding[(shard, client_id, seq)] = ticket
            self.dispatch(ticket, leaders[shard])
            tickets.append(ticket)
        sim.counters["orders_submitted"] += len(tickets)
        return tickets

    def dispatch(self, ticket: OrderTicket, leader: "Replica | None", requeue_front: bool = False) -> bool:
        sim = self.sim
        now_ms = sim.events.now_ms
        # the simulator's hosts are ExchangeNodes (with busy_until); Any spares a cast() per order
        node: Any = leader.node if leader is not None else None
        if node is None or node.paused or (sim.costly and node.busy_until - now_ms > sim.costs.max_queue_ms):
            if node is not None:
                sim.counters["orders_backpressured"] += 1
            self.hold(ticket, requeue_front)
            return False
        if node.propose(ticket.shard, ticket.entry) is None:
            self.hold(ticket, requeue_front)  # leader is handing over leadership
            return False
        if sim.costly:
            node.busy_until = max(node.busy_until, now_ms) + sim.costs.client_request_us / 1000.0
        ticket.attempts += 1
        if ticket.attempts > 1:
            sim.counters["orders_retried"] += 1
        ticket.last_sent = now_ms
        if ticket.attempts == 1:
            # the first timeout's jitter comes from the sequence number (no random call per order:
            # this is the hottest client path); retries draw from the seeded stream
            spread = ((ticket.seq * 0x9E3779B1) & 0xFFFF) / 131072.0  # in [0, 0.5)
            ticket.retry_at = now_ms + self.retry_after_ms * (0.75 + spread)
        else:
            ticket.retry_at = now_ms + self.retry_timeout_ms(ticket.attempts)
        assert leader is not None  # node is leader.node
        if not leader.flush_pending:
            leader.flush_pending = True
            sim.schedule_flush(leader)
        return True

    def retry_timeout_ms(self, attempts: int) -> float:
        """Capped exponential back-off with jitter in [0.75, 1.25) of the nominal timeout."""
        backoff = min(1 << max(0, attempts - 1), MAX_BACKOFF)
        return self.retry_after_ms * backoff * (0.75 + 0.5 * self.rng.random())

    def hold(self, ticket: OrderTicket, front: bool) -> None:
        """Keep an order the cluster could not take now (a failed proposal) for later."""
        self.sim.counters["proposals_failed"] += 1
        ticket.held = True
        if front:
            self.pending[ticket.shard].appendleft(ticket)
        else:
            self.pending[ticket.shard].append(ticket)

    def dispatch_pending(self) -> None:
        """Send held orders, oldest first, to each shard's leader until it has no room."""
        sim = self.sim
        for group, queue in enumerate(self.pending):
            if not queue:
                continue
            leader = sim.leader_replica(group)
            if leader is None:
                continue
            while queue:
                ticket = queue.popleft()
                ticket.held = False
                if ticket.acked:
                    continue
                if not self.dispatch(ticket, leader, requeue_front=True):
                    break

    def retry(self) -> None:
        """Called every 10 ms: send held orders, and every 50 ms resend timed-out ones."""
        if any(self.pending):
            self.dispatch_pending()
        self.retry_ticks += 1
        if not self.outstanding or self.retry_ticks % 5:
            return
        sim = self.sim
        now_ms = sim.events.now_ms
        leaders = [sim.leader_replica(g) for g in range(sim.shards)]
        for ticket in list(self.outstanding.values()):
            leader = leaders[ticket.shard]
            if ticket.retry_at <= now_ms and leader is not None:
                if ticket.held:
                    # held back: wait a full period before it counts as timed out again
                    ticket.retry_at = now_ms + self.retry_timeout_ms(ticket.attempts)
                else:
                    self.dispatch(ticket, leader)

    # ---- completion ----------------------------------------------------------------------

    def ack(self, shard: int, client_id: str, seq: int, rejected: bool) -> None:
        ticket = self.outstanding.pop((shard, client_id, seq), None)
        if ticket is None:
            return
        sim = self.sim
        now_ms = sim.events.now_ms
        ticket.acked = True
        ticket.rejected = rejected
        ticket.committed_at = now_ms / 1000.0
        ticket.latency_ms = (ticket.committed_at - ticket.submitted_at) * 1000.0
        sim.counters["orders_acknowledged"] += 1
        if rejected:
            sim.counters["orders_rejected"] += 1
        self.acked_by_shard[shard] += 1
        self.latencies.append(now_ms, ticket.latency_ms, shard)
        checker = sim._checker
        if checker is not None:
            checker.on_ack(ticket)
