"""raftctl/core is pure: no threads, sockets, processes or wall clock, and it knows no sinks.

Threads, sockets, processes and the wall clock live in raftctl/runtime, raftctl/dashboard and
raftctl/commands; core modules get time, randomness and I/O handed in.
"""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "raftctl" / "core"

FORBIDDEN_MODULES = ("threading", "socket", "selectors", "asyncio", "multiprocessing", "concurrent",
                     "time", "raftctl.sinks", "raftctl.runtime", "raftctl.dashboard", "raftctl.commands",
                     "raftctl.cli")


def forbidden_imports(source: str) -> list[str]:
    """Every import of a forbidden module (or of a name from one) in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN_MODULES):
                found.append(f"line {node.lineno}: {name}")
    return found


def test_no_core_module_imports_threads_sockets_processes_clocks_or_sinks():
    modules = sorted(CORE.rglob("*.py"))
    assert len(modules) >= 20, "core/ modules not found"
    bad = {str(p.relative_to(CORE)): forbidden_imports(p.read_text()) for p in modules}
    assert {k: v for k, v in bad.items() if v} == {}


def test_no_core_module_is_over_600_lines():
    sizes = {str(p.relative_to(CORE)): len(p.read_text().splitlines()) for p in CORE.rglob("*.py")}
    assert {k: n for k, n in sizes.items() if n > 600} == {}


def test_the_scan_catches_planted_imports():
    planted = "import os\nimport threading\nfrom time import monotonic\nfrom raftctl.sinks.base import Sink\n" \
              "def f():\n    import socket\n"
    assert forbidden_imports(planted) == ["line 2: threading", "line 3: time", "line 4: raftctl.sinks.base",
                                          "line 6: socket"]
    assert forbidden_imports("from raftctl.core.raft import Ready\nimport timeit\n") == []
