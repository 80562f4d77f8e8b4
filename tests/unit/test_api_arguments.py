"""The simulator's scheduling and running calls refuse bad arguments at once, with a ValueError
that names them: a step of 0 hung run_until for ever, and a non-callable given to every(),
at() or add_observer() failed later, deep inside the next run or in the middle of a fault."""

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
