"""The checker, checked: every planted-bug Raft variant is caught; the real code on the same seeds is not."""

from __future__ import annotations

import dataclasses
import json

import pytest

from raftctl.core import mutants as mutants_module
from raftctl.core.mutants import MUTANTS, mutant_names, run_mutant, run_mutant_campaign
from raftctl.core.sim.simulation import ExchangeNode

# the detector each mutant is expected to trip first (several are the ones added for them)
EXPECTED = {
    "double_vote": ("one vote per term", "election safety"),
    "commit_old_term": ("commit rule",),
    "keep_conflicts": ("state machine safety", "log matching", "leader completeness", "final state digests"),
    "apply_before_commit": ("apply before commit",),
    "forget_vote": ("forgot its vote",),
    "stale_append": ("current leaders only",),
    "apply_twice": ("exactly once",),
}


def test_the_catalogue_has_the_seven_bugs():
    assert mutant_names() == list(EXPECTED)
    assert all(m.description for m in MUTANTS)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_the_checker_catches_the_mutant(name):
    (result,) = run_mutant_campaign([name])
    seeds = [m for m in MUTANTS if m.name == name][0].seeds
    assert result.caught, f"{name}: no violation on seeds {seeds}"
    assert result.seed in seeds and result.violation is not None
    assert f"seed={result.seed}:" in result.violation, result.violation
    assert any(kind in result.violation for kind in EXPECTED[name]), \
        f"{name} seed {result.seed}: caught by an unexpected check: {result.violation}"
    assert "node code raised" not in result.violation, result.violation


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_the_unmutated_cluster_on_the_same_seeds_and_faults_has_no_violation(mutant):
    for seed in mutant.seeds:
        violations = run_mutant(mutant, seed, node_class=ExchangeNode)
        assert violations == [], f"{mutant.name} schedule, seed {seed}, real code: {violations[:3]}"


def test_the_campaign_is_deterministic():
    names = ["stale_append", "keep_conflicts"]
    assert run_mutant_campaign(names) == run_mutant_campaign(names)


def _cli(args, capsys):
    from raftctl.cli import run

    code = run(args)
    return code, capsys.readouterr()


def test_cli_mutants_json_and_exit_code(capsys):
    code, out = _cli(["chaos", "--mutants", "--json"], capsys)
    doc = json.loads(out.out)
    assert code == 0, doc
    assert list(doc) == ["mutants"]
    assert [r["name"] for r in doc["mutants"]] == list(EXPECTED)
    for row in doc["mutants"]:
        assert set(row) == {"name", "caught", "seed", "violation"}
        assert row["caught"] is True and isinstance(row["seed"], int) and isinstance(row["violation"], str)


def test_cli_exits_1_and_says_missed_when_a_mutant_escapes(capsys, monkeypatch):
    # "double_vote" running the real Raft code: nothing to catch, so it must be reported MISSED
    defanged = tuple(dataclasses.replace(m, node_class=ExchangeNode, seeds=(1, 2)) if m.name == "double_vote"
                     else m for m in MUTANTS)
    monkeypatch.setattr(mutants_module, "MUTANTS", defanged)
    code, out = _cli(["chaos", "--mutants", "--json"], capsys)
    assert code == 1
    rows = {r["name"]: r for r in json.loads(out.out)["mutants"]}
    assert rows["double_vote"] == {"name": "double_vote", "caught": False, "seed": None, "violation": None}
    assert all(r["caught"] for name, r in rows.items() if name != "double_vote")
    code, out = _cli(["chaos", "--mutants"], capsys)
    assert code == 1
    lines = out.out.splitlines()
    assert lines[0].startswith("MISSED  double_vote")
    assert sum(line.startswith("CAUGHT") for line in lines) == 6
    assert lines[-1] == "6/7 mutants caught by the safety checker"
