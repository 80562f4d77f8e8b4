"""`raftctl sinks`: list the sink plugins found under the ``raftctl.sinks`` entry-point group."""

from __future__ import annotations

from typing import Annotated, Any

import typer

HELP = "List the sink plugins and their spec syntax."
EPILOG = (
    "Examples:\n\n"
    "  raftctl sinks\n\n"
    "  raftctl sinks --json\n\n"
    "  raftctl serve --sink stdout --sink jsonl:metrics.jsonl --sink webhook:http://127.0.0.1:9093/hook\n\n"
    "  raftctl serve --sink 'alertmanager:http://127.0.0.1:9093?cluster=prod'\n\n"
    "  raftctl serve --sink 'webhook:http://127.0.0.1:5001/hook?receiver=ops&group_by=alertname,shard'"
)

# shown when a plugin does not describe itself; the built-ins' syntax is part of the product
KNOWN_SYNTAX = {
    "stdout": ("stdout | stdout:json", "a human line per sample, or one JSON object per line"),
    "jsonl": ("jsonl:PATH", "one JSON object per line per sample and per alert event, appended"),
    "webhook": ("webhook:URL[?OPTIONS]", "alert groups POSTed in the Alertmanager webhook (v4) format"),
    "alertmanager": ("alertmanager:URL[?OPTIONS]", "alerts pushed to Alertmanager's API v2"),
}


def command(
    json_output: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
) -> None:
    """List the sink plugins and their spec syntax."""
    rows = list_sinks()
    if json_output:
        from raftctl.commands._common import write_json

        write_json(rows)
        return
    from rich.table import Table

    from raftctl.commands._common import stdout_console

    table = Table(header_style="bold", pad_edge=False, box=None)
    table.add_column("name", no_wrap=True)
    table.add_column("spec", no_wrap=True)
    table.add_column("description")
    for row in rows:
        table.add_row(row["name"], row["spec"], row["description"])
    console = stdout_console()
    console.print(table)
    with_options = [row for row in rows if row["options"]]
    if with_options:
        options = Table(header_style="bold", pad_edge=False, box=None)
        options.add_column("name", no_wrap=True)
        options.add_column("options (after the argument: ?name=value&name=value)")
        for row in with_options:
            options.add_row(row["name"], ", ".join(row["options"]))
        console.print()
        console.print(options)


def list_sinks() -> list[dict[str, Any]]:
    """Name, spec syntax, description and options of every registered sink, sorted by name.

    Uses ``raftctl.sinks.base.available_sinks(with_options=True)``: the options are the sorted
    names of each sink class's ``spec_options``, the very table its spec is parsed with.
    """
    from raftctl.sinks.base import available_sinks

    rows = []
    for info in available_sinks(with_options=True):
        name = str(info.get("name", ""))
        spec, description = KNOWN_SYNTAX.get(name, (name, ""))
        rows.append({
            "name": name,
            "spec": info.get("spec") or spec,
            "description": info.get("description") or description,
            "options": list(info.get("options") or []),
        })
    rows.sort(key=lambda row: row["name"])
    return rows
