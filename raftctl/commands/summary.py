"""`raftctl summary`: one look at a running server's /api/summary."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from raftctl.commands._common import URL_ENV, normalize_url

HELP = "Print a one-shot summary of a running raftctl server (or the raw /api/summary JSON)."
EPILOG = (
    "Examples:\n\n"
    "  raftctl summary\n\n"
    "  raftctl summary --url http://10.0.0.5:8080\n\n"
    "  raftctl summary --json | jq .performance.throughput_ops"
)

UrlOption = Annotated[
    Optional[str],
    typer.Option("--url", help=f"Server URL \\[env {URL_ENV}; default http://127.0.0.1:8080].", show_default=False),
]


def url_or_usage_error(url: Optional[str]) -> str:
    """Validate --url (or RAFTCTL_URL); a bad one is a usage error (exit 2)."""
    try:
        return normalize_url(url)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="'--url'") from None


def command(
    url: UrlOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print exactly the /api/summary JSON document.")] = False,
) -> None:
    """Print a one-shot summary of a running raftctl server."""
    base = url_or_usage_error(url)
    from raftctl.commands._common import BadAnswer, check_summary, http_get_bytes, stdout_console, write_raw_json

    if json_output:
        import orjson

        _status, body = http_get_bytes(base, "/api/summary")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise BadAnswer(f"{base}/api/summary did not answer with JSON (is this a raftctl server?)") from None
        check_summary(doc, base + "/api/summary")
        write_raw_json(body)  # the body unchanged, so scripts see exactly what the API serves
        return
    from raftctl.commands._common import fetch_summary, replay_banner
    from raftctl.commands.render import alerts_block, health_header, node_table, performance_lines, shard_table

    doc = fetch_summary(base)
    console = stdout_console()
    replay = replay_banner(base)
    if replay is not None:
        console.print(replay, style="bold magenta")
    console.print(health_header(doc, max_width=console.width))
    console.print(node_table(doc, title=None, max_width=console.width))
    if doc.get("shards"):
        console.print(shard_table(doc, title=None))
    console.print(performance_lines(doc))
    console.print(alerts_block(doc))
