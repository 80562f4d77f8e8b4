"""Every --help is free of Typer's type tags (<bool>, <int range>, ...): issue 15, part 4."""

from __future__ import annotations

import re

import pytest
import typer

from raftctl.cli import app, run
from raftctl.commands._common import plain_metavars

# Typer's own tags: <bool>, <int>, <float>, <str>, <int range>, <float range>, <path>, <none|demo>, ...
TYPE_TAG = re.compile(r"<[A-Za-z_|. ]+>")


def command_paths() -> list[list[str]]:
    """Every command path of the CLI: [], ["demo"], ..., ["cluster"], ["cluster", "up"]."""
    paths: list[list[str]] = []

    def walk(command, path: list[str]) -> None:
        paths.append(path)
        for name, sub in sorted((getattr(command, "commands", None) or {}).items()):
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


def help_text(path: list[str], capsys) -> str:
    code = run([*path, "--help"])
    out = capsys.readouterr().out
    assert code == 0, (path, out)
    return out


@pytest.fixture(autouse=True)
def wide_plain_terminal(monkeypatch):
    # a wide terminal keeps each option on one line; no colour codes in the captured text
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)


def test_every_command_is_covered():
    names = {path[0] for path in command_paths() if path}
    assert {"demo", "serve", "watch", "summary", "alerts", "sinks", "chaos", "node", "cluster"} <= names


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "raftctl")
def test_help_has_no_type_tags(path, capsys):
    out = help_text(path, capsys)
    assert "--help" in out
    tags = sorted(set(TYPE_TAG.findall(out)))
    assert tags == [], f"raftctl {' '.join(path)} --help shows {tags}"


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "raftctl")
def test_help_at_80_columns_cuts_no_option_name_or_default(path, capsys, monkeypatch):
    # rich shortens what does not fit with an ellipsis: an option name, a metavar or a default
    # cut that way cannot be read or typed
    monkeypatch.setenv("COLUMNS", "80")
    out = help_text(path, capsys)
    cut = [line for line in out.splitlines() if "…" in line]
    assert cut == [], f"raftctl {' '.join(path)} --help at 80 columns:\n" + "\n".join(cut)


def test_flags_have_no_placeholder_and_values_a_plain_one(capsys):
    out = help_text(["serve"], capsys)
    lines = {line.split()[1]: line for line in out.splitlines() if line.strip().startswith("│ --")}
    assert re.search(r"--port\s+PORT\b", lines["--port"])
    assert re.search(r"--chaos\s+none\|demo\|random\b", lines["--chaos"])
    assert re.search(r"--rate\s+ORDERS_PER_S\b", lines["--rate"])  # a declared metavar stays
    out = help_text(["demo"], capsys)
    flag = next(line for line in out.splitlines() if "--fast" in line)
    assert re.search(r"--fast\s+Run simulated time", flag), flag


def test_the_check_catches_typer_tags_without_the_fix(capsys, monkeypatch):
    """The checker itself: with plain_metavars switched off the tags are back, and found."""
    import raftctl.commands._common as common

    monkeypatch.setattr(common, "plain_metavars", lambda command: command)
    out = help_text(["demo"], capsys)
    tags = set(TYPE_TAG.findall(out))
    assert "<bool>" in tags and "<int range>" in tags, tags


def test_plain_metavars_keeps_declared_metavars():
    command = plain_metavars(typer.main.get_command(app))
    sink = next(p for p in command.commands["serve"].params if p.name == "sink")
    assert sink.metavar == "SPEC"
