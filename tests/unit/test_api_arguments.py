"""The library refuses bad arguments at the call, with a ValueError naming them. A step of 0
hung run_until for ever; a non-callable given to every(), at() or add_observer() failed later,
deep inside the next run or in the middle of a fault; a Workload, a collector or a dashboard
given nonsense failed on first use (a TypeError, an AttributeError, a 500 per request)."""

from __future__ import annotations

import pytest

from raftctl import Cluster


@pytest.mark.parametrize("call, message", [
    (lambda c: c.run_until(lambda: False, timeout=0.1, step=0), "step > 0"),
    (lambda c: c.run_until(lambda: False, timeout=0.1, step=-1), "step > 0"),
    (lambda c: c.run_until(lambda: False, timeout=-1), "timeout >= 0"),
    (lambda c: c.run_until(5), "run_until needs a function"),
    (lambda c: c.run_until(lambda: False, timeout="x"), "timeout needs a finite number"),
    (lambda c: c.run_for("x"), "run_for needs a finite number"),
    (lambda c: c.run_for(float("nan")), "run_for needs a finite number"),
    (lambda c: c.every(1, 5), "every needs a function"),
    (lambda c: c.every("x", print), "interval needs a finite number"),
    (lambda c: c.every(1, print, start_s="soon"), "start_s needs a finite number"),
    (lambda c: c.at("x", print), "at needs a finite number"),
    (lambda c: c.at(1, None), "at needs a function"),
    (lambda c: c.add_observer(5), "add_observer needs a function"),
])
def test_bad_arguments_are_refused_at_the_call(call, message):
    cluster = Cluster(3, seed=1)
    with pytest.raises(ValueError, match=message):
        call(cluster)
    # nothing was scheduled or registered: the cluster runs and faults on as before
    cluster.run_for(1.0)
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=5)
    cluster.crash(cluster.leader_id)


def test_good_arguments_still_work():
    cluster = Cluster(3, seed=1)
    seen: list[float] = []
    cluster.every(0.5, lambda c: seen.append(c.now), start_s=0)
    cluster.at(1, lambda c: seen.append(-1.0))
    events: list[str] = []
    cluster.add_observer(lambda event, details: events.append(event))
    assert cluster.run_until(lambda: False, timeout=0) is False
    cluster.run_for(2)
    assert -1.0 in seen and len(seen) >= 4
    cluster.crash("node1")
    assert events


@pytest.mark.parametrize("kwargs, message", [
    ({"cluster": None}, "needs a raftctl Cluster"),
    ({"max_outstanding": "x"}, "max_outstanding must be an integer"),
    ({"max_outstanding": -1}, "max_outstanding must be an integer"),
    ({"traders": "x"}, "traders must be an integer"),
    ({"tick_s": "x"}, "tick_s must be a positive number"),
    ({"rate": float("inf")}, "rate must be"),
    ({"symbols": [""]}, "symbols must be"),
])
def test_a_workload_refuses_bad_arguments_at_once(kwargs, message):
    from raftctl.core.workload import Workload

    args = {"cluster": Cluster(3, seed=1), **kwargs}
    with pytest.raises(ValueError, match=message):
        Workload(**args)


def test_a_workload_given_one_symbol_as_a_string_trades_that_symbol():
    from raftctl.core.workload import Workload

    workload = Workload(Cluster(3, seed=1), symbols="BTC-USD")
    assert workload.symbols == ["BTC-USD"]  # it traded 'B', 'T', 'C', ...


def test_a_dashboard_refuses_what_is_not_a_collector():
    from raftctl.dashboard.server import DashboardServer

    with pytest.raises(ValueError, match="needs a MetricsCollector, got int"):
        DashboardServer(5, port=0)  # it started and answered every request 500


def test_a_collector_refuses_bad_sinks_and_event_numbers():
    from raftctl import MetricsCollector

    with pytest.raises(ValueError, match="sinks must be a list"):
        MetricsCollector(sinks=5)
    collector = MetricsCollector()
    with pytest.raises(ValueError, match="since must be an event number"):
        collector.events("x")
    assert collector.events(None) == [] and collector.events(0) == []
