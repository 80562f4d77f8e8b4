"""The deterministic simulator: N node hosts on a simulated clock and network.

``Simulation`` (simulation.py) composes the parts, each in its own module: the clock and event
queue (events.py), the network model (network.py), the CPU-cost model (costs.py), the client
gateway (gateway.py), the shard-leader balancer (balancer.py), the fault injector (faults.py) and
the status views (views.py). One ``random.Random`` seeded by the caller drives every choice.
"""

from raftctl.core.sim.costs import NodeCosts
from raftctl.core.sim.gateway import OrderTicket
from raftctl.core.sim.network import NetworkConfig
from raftctl.core.sim.simulation import ExchangeNode, Simulation

__all__ = ["ExchangeNode", "NetworkConfig", "NodeCosts", "OrderTicket", "Simulation"]
