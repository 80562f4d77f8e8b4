"""The scenario library behind the CLI: `demo --scenario`, its help and errors, `serve --chaos`."""

from __future__ import annotations

import json

from raftctl.core import scenarios

from cli_helpers import run_cli

SEED = 5


run = run_cli


def test_demo_plays_a_named_scenario():
    proc = run("demo", "--scenario", "quorum_loss", "--fast", "--json", "--no-browser", "--no-dashboard",
               "--seed", str(SEED))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["ok"] is True, f"seed {SEED}"
    assert "UNHEALTHY" in report["health_states_visited"] and report["final"]["health_status"] == "HEALTHY"
    (fault,) = report["faults"]
    assert fault["scenario"] == "quorum_loss" and fault["kind"] == "crash_majority", fault
    assert len(fault["nodes"]) == 3 and fault["healed_at"] is not None and fault["heal_tick"] > fault["tick"]
    quorum = [a for a in report["alerts"] if a["name"] == "quorum_loss"]
    assert quorum and all(a["fired_at"] is not None and a["resolved_at"] is not None for a in quorum), quorum
    assert f"tick {fault['tick']}: a majority crashes (quorum loss): {', '.join(fault['nodes'])}" in proc.stderr


def test_demo_plays_scenarios_in_order_and_sizes_the_run():
    proc = run("demo", "--scenario", "follower_crash,flapping_leader", "--scenario", "lossy_network",
               "--fast", "--json", "--no-dashboard", "--seed", str(SEED))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["ok"] is True and report["final"]["digests_equal"] is True, f"seed {SEED}"
    assert [f["scenario"] for f in report["faults"]] == ["follower_crash"] + ["flapping_leader"] * 3 + ["lossy_network"]
    ticks = [f["tick"] for f in report["faults"]]
    assert ticks == sorted(ticks) and ticks[-1] < report["ticks"]
    assert all(f["healed_at"] is not None for f in report["faults"] if f["nodes"] or f["kind"] == "network")
    assert report["leader_changes"] >= 3, f"seed {SEED}: the flapping leader must change leaders"


def test_unknown_scenario_is_a_one_line_usage_error_listing_the_names():
    proc = run("demo", "--scenario", "quorum_loss,meteor_strike", "--fast", "--no-dashboard")
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--scenario" in lines[0] and "meteor_strike" in lines[0], proc.stderr
    assert all(name in lines[0] for name in scenarios.names()), lines[0]
    assert proc.stdout == ""


def test_demo_help_lists_every_scenario(capsys):
    from raftctl.cli import run as run_in_process

    assert run_in_process(["demo", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps lines; compare word sequences
    assert "--scenario" in out
    for scenario in scenarios.SCENARIOS.values():
        assert f"{scenario.name}: {' '.join(scenario.description.split()[:4])}" in out, scenario.name


def _serve(chaos: str, seed: int, ticks: int, capsys):
    from raftctl.commands.serve import Server, TICK_SECONDS

    server = Server(nodes=5, rate=20.0, chaos=chaos, seed=seed, interval=1.0, retention=120, sinks=[])
    server.setup()
    health = set()
    try:
        for _ in range(ticks):  # simulated clock only: no pacing
            server.step()
            health.add(server.collector.latest()["cluster"]["health_status"])
    finally:
        server.close()
    assert server.cluster.now >= ticks * TICK_SECONDS
    return server, health, capsys.readouterr().err


def test_serve_chaos_random_plays_seeded_library_scenarios(capsys):
    seed = 8
    server, health, err = _serve("random", seed, 600, capsys)  # 3 simulated minutes
    faults = server.chaos_loop.faults
    runs = server.chaos_loop.runs
    assert len(runs) >= 3, f"seed {seed}: {len(runs)} scenarios in 3 minutes"
    assert {r.scenario.name for r in runs} <= set(scenarios.names())
    for before, after in zip(runs, runs[1:]):  # one at a time, with a quiet gap between
        assert after.start_at >= before.end_at + 15.0 - 1e-9, f"seed {seed}"
    for run_ in runs[:-1]:
        assert run_.done and not run_.active, f"seed {seed}"
    assert health - {"HEALTHY"}, f"seed {seed}: the collector never saw the chaos"
    first = runs[0].faults[0]
    assert f"chaos [{first.scenario}]: {first.label}" in err, err
    again, _h, _e = _serve("random", seed, 600, capsys)
    assert [(f.scenario, f.nodes) for f in again.chaos_loop.faults] == [(f.scenario, f.nodes) for f in faults], \
        f"seed {seed}: the same seed must give the same chaos"


def test_serve_chaos_demo_repeats_the_demo_schedule(capsys):
    seed = 3
    server, health, err = _serve("demo", seed, 420, capsys)  # two 200-tick cycles and a bit
    faults = server.chaos_loop.faults
    assert [round(f.injected.due / 0.3) for f in faults] == [30, 60, 100, 130, 230, 260, 300, 330], f"seed {seed}"
    assert [f.kind for f in faults[:4]] == ["crash_follower", "crash_leader", "crash_majority", "isolate_leader"]
    assert {"DEGRADED", "UNHEALTHY"} <= health, f"seed {seed}: {health}"
    assert "chaos [demo]: a majority crashes (quorum loss)" in err


def test_demo_paused_leader_shows_it_down_then_stale_and_a_new_leader_in_time():
    proc = run("demo", "--scenario", "paused_leader", "--fast", "--json", "--no-dashboard", "--seed", str(SEED))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    (fault,) = report["faults"]
    (old,) = fault["nodes"]
    lines = proc.stderr.splitlines()
    frozen = next(i for i, line in enumerate(lines) if "the leader freezes" in line)
    assert f"{old} DOWN (timeout)" in lines[frozen + 1], lines[frozen:frozen + 3]
    woken = next(i for i, line in enumerate(lines) if f"healed pause leader ({old})" in line)
    assert f"{old} STALE_LEADER in term" in lines[woken + 1], lines[woken:woken + 3]
    # the first regular sample after the freeze already names another leader: within the
    # election timeout (0.3 s) plus one interval (1 s)
    after = [line for line in lines[frozen + 2:woken] if line.startswith("[")]
    assert after and f"Leader: {old}" not in after[0] and "Leader: none" not in after[0], after[:2]
    assert report["ok"] is True and report["final"]["health_status"] == "HEALTHY", f"seed {SEED}"
    assert {"node_down"} <= {a["name"] for a in report["alerts"]}


def test_demo_monitor_partition_says_what_the_monitor_reaches():
    proc = run("demo", "--scenario", "monitor_partition", "--fast", "--json", "--no-dashboard", "--seed", str(SEED))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["ok"] is True, f"seed {SEED}"
    assert "quorum_loss" not in {a["name"] for a in report["alerts"]}, report["alerts"]
    assert "the monitor sees no leader" in proc.stderr or "the monitor sees leader" in proc.stderr
