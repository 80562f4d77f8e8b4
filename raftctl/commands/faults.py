"""The demo's fault options on the command line: `--fail-at` ticks and `--scenario` names.

Only the CLI-specific part lives here: parsing, the default schedule for a run length, tick
arithmetic and the report's fault entries. What a fault is, which nodes it hits and how it
heals is the scenario library's (raftctl/core/scenarios.py).
"""

from __future__ import annotations

import math
from typing import Any

from raftctl.core import scenarios

DEFAULT_TICKS = 200
DEFAULT_FAIL_AT = (30, 60, 100, 130)
DEFAULT_HEAL_TICKS = 18
# `--scenario` runs: quiet lead-in, gap between scenarios, quiet tail (simulated seconds), so the
# collector shows the healthy cluster first and each scenario's alerts resolve before the next
SCENARIO_LEAD_S = 6.0
SCENARIO_GAP_S = 10.0
SCENARIO_TAIL_S = 6.0


def parse_fail_at(text: str) -> list[int]:
    """``"30,60,100"`` -> ``[30, 60, 100]``; ``""`` or ``"none"`` -> no faults. ValueError otherwise."""
    text = (text or "").strip()
    if text.lower() in ("", "none"):
        return []
    ticks = []
    for part in text.split(","):
        part = part.strip()
        try:
            tick = int(part)
        except ValueError:
            raise ValueError(f"{part!r} is not a tick number (expected a list like 30,60,100,130)") from None
        if tick < 1:
            raise ValueError(f"tick {tick} is not positive (ticks count from 1)")
        ticks.append(tick)
    if len(set(ticks)) != len(ticks):
        raise ValueError("the same tick appears twice")
    return sorted(ticks)


def default_fail_at(ticks: int) -> list[int]:
    """The seed's 30/60/100/130 for 200 ticks, scaled to other run lengths."""
    if ticks == DEFAULT_TICKS:
        return list(DEFAULT_FAIL_AT)
    scaled = sorted({max(1, round(t * ticks / DEFAULT_TICKS)) for t in DEFAULT_FAIL_AT})
    return [t for t in scaled if t <= ticks]


def heal_ticks_for(ticks: int) -> int:
    """How long each fault lasts: 18 of 200 ticks (about 5 s), scaled, at least 1."""
    return max(1, round(DEFAULT_HEAL_TICKS * ticks / DEFAULT_TICKS))


def schedule(fail_at: list[int], ticks: int, tick_s: float) -> scenarios.Scenario:
    """The tick schedule as a library scenario (on a clock where tick k is at k * tick_s)."""
    for tick in fail_at:
        if tick > ticks:
            raise ValueError(f"fault tick {tick} is beyond the last tick ({ticks})")
    return scenarios.demo_scenario(sorted(fail_at), tick_s, heal_ticks_for(ticks), ticks)


def scenario_lineup(names: list[str], tick_s: float) -> tuple[list[tuple[scenarios.Scenario, float]], int]:
    """Named scenarios one after another for the demo, and the ticks they need (tail included)."""
    planned = scenarios.lineup([scenarios.get(n) for n in names], SCENARIO_LEAD_S, SCENARIO_GAP_S)
    last, start = planned[-1]
    return planned, tick_at(start + last.length_s + SCENARIO_TAIL_S, tick_s)


def tick_at(due_s: float, tick_s: float) -> int:
    """The tick at whose start a step due at ``due_s`` runs (the demo applies steps before a tick)."""
    return max(0, math.ceil(due_s / tick_s - 1e-6))


def fault_entry(fault: scenarios.Fault, tick_s: float) -> dict[str, Any]:
    """One fault in the demo report: the keys the report has always had, plus its scenario."""
    return {
        "tick": tick_at(fault.injected.due, tick_s),
        "kind": fault.kind,
        "scenario": fault.scenario,
        "description": fault.label,
        "nodes": fault.nodes,
        "injected_at": round(fault.injected.at, 3),
        "heal_tick": None if fault.heal_due is None else tick_at(fault.heal_due, tick_s),
        "healed_at": None if fault.healed_at is None else round(fault.healed_at, 3),
        "effective": fault.effective,  # False: it found nothing to act on (see note)
        "note": fault.injected.note,
    }


def describe_step(record: Any, when: str) -> str:
    """A progress line for an applied scenario step ('' for a heal that had nothing to heal)."""
    fault = record.fault
    if record.step.is_heal:
        if fault is None or fault.healed is not record:
            return ""
        return f"{when}: healed {fault.kind.replace('_', ' ')} ({', '.join(fault.nodes) or 'network'})"
    text = f"{when}: {record.step.label or record.step.kind.replace('_', ' ')}"
    if record.nodes:
        text += f": {', '.join(record.nodes)}"
    if record.note:
        text += f" ({record.note})"
    return text
