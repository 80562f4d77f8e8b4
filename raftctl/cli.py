"""The ``raftctl`` command line: one command per module in ``raftctl.commands``.

Command modules import their heavy dependencies (simulator, server) inside the command
functions, so ``raftctl --help`` and ``raftctl sinks`` stay fast. ``main()`` maps every known
failure to a one-line message on stderr and an exit code; users never see a traceback.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Annotated, Optional

import typer

from raftctl import __version__
from raftctl.commands import alerts, chaos, cluster, demo, node, replay, serve, sinks, summary, watch

app = typer.Typer(
    name="raftctl",
    help="A simulated Raft exchange cluster with real-time monitoring, a dashboard and metric sinks.",
    epilog="Start with:  raftctl demo --nodes 5 --ticks 200",
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

for _name, _module in (
    ("demo", demo),
    ("serve", serve),
    ("watch", watch),
    ("summary", summary),
    ("alerts", alerts),
    ("sinks", sinks),
    ("chaos", chaos),
    ("node", node),
    ("replay", replay),
):
    app.command(name=_name, help=_module.HELP, epilog=_module.EPILOG)(_module.command)
app.add_typer(cluster.app, name="cluster", help=cluster.HELP)


def _version_callback(value: bool) -> None:
    if value:
        print(f"raftctl {__version__}")
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[
        Optional[bool],
        typer.Option("--version", "-V", callback=_version_callback, is_eager=True, help="Show the version and exit."),
    ] = None,
) -> None:
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(0)


def _error(prefix: str, message: str) -> None:
    from raftctl.commands._common import stderr_line

    stderr_line(f"{prefix}: error: {message}")  # one line, whatever the message holds


def run(argv: Optional[list[str]] = None) -> int:
    """Run the CLI with ``argv`` (default: sys.argv[1:]) and return the exit code."""
    from raftctl.commands._common import CliError, plain_metavars

    command = plain_metavars(typer.main.get_command(app))
    prog = "raftctl"
    try:
        result = command.main(args=argv, prog_name=prog, standalone_mode=False)
    except typer.TyperException as err:  # usage errors (exit 2) and other Click errors
        ctx = getattr(err, "ctx", None)
        # Click raises some parse errors without a context ("Option '--url' requires an argument"):
        # the command is then the one argv names
        command_name = ctx.info_name if ctx is not None else _subcommand(argv).split(" ")[0]
        where = ctx.command_path if ctx is not None else f"{prog} {_subcommand(argv)}".strip()
        message = _plain_words(err, argv, err.format_message().strip())
        exit_code = getattr(err, "exit_code", 1)
        if not message:
            # Click's "no arguments is help" (`raftctl cluster`): the help above says it all
            return exit_code
        bare = message  # the Nagios line has no room for the hint
        if exit_code == 2:
            help_hint = f" (see '{where} --help')"
            # one full stop: a message's own ending (".", "...", "?") is kept, never doubled or cut
            message = (message if message.endswith((".", "?", "!")) else message + ".") + help_hint
        _error(where, message)
        if exit_code == 2 and command_name == "alerts":
            return alerts.usage_error_exit(bare)  # a Nagios plugin's usage error is UNKNOWN (3)
        return exit_code
    except CliError as err:
        _error(f"{prog} {_subcommand(argv)}".strip(), err.message)
        return err.exit_code
    except typer.Abort:
        _error(prog, "aborted")
        return 1
    except KeyboardInterrupt:
        _error(prog, "interrupted")
        return 130
    except BrokenPipeError:
        # a reader such as `head` went away; stop quietly like other Unix tools
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 1
    except ValueError as err:  # bad input detected below the CLI layer
        _error(f"{prog} {_subcommand(argv)}".strip(), str(err))
        return 2
    except OSError as err:
        _error(f"{prog} {_subcommand(argv)}".strip(), err.strerror or str(err))
        return 1
    except Exception as err:  # a bug: still one line, with a way to see the traceback
        if os.environ.get("RAFTCTL_DEBUG"):
            raise
        _error(prog, f"internal error: {type(err).__name__}: {err} (set RAFTCTL_DEBUG=1 for the traceback)")
        return 1
    return result if isinstance(result, int) else 0


# the coercion's words for a value of the wrong type -> ours, which name the value given
_NOT_OF_TYPE = {
    "Input should be a valid integer, unable to parse string as an integer": "is not a whole number",
    "Input should be a valid number, unable to parse string as a number": "is not a number",
    "Input should be a valid integer, got a number with a fractional part": "is not a whole number",
}


_OUT_OF_RANGE = (  # the type checker's range wording, and ours (the value given first)
    (re.compile(r"Input should be greater than or equal to (\S+?)\.?$"), "is below {}, the least allowed"),
    (re.compile(r"Input should be greater than (\S+?)\.?$"), "must be above {}"),
    (re.compile(r"Input should be less than or equal to (\S+?)\.?$"), "is above {}, the most allowed"),
    (re.compile(r"Input should be less than (\S+?)\.?$"), "must be below {}"),
)


def _plain_words(err: Exception, argv: Optional[list[str]], message: str) -> str:
    """``message`` with the type checker's wording ("Input should be a valid integer, unable to
    parse string as an integer") replaced by one that names the value: "'abc' is not a whole
    number", "0 is below 1, the least allowed"."""
    for words, ours in _NOT_OF_TYPE.items():
        if words in message:
            given = _given(err, argv)
            return message.replace(words, f"{given!r} {ours}" if given is not None else ours.removeprefix("is "))
    swallowed = _swallowed(err, argv)
    if swallowed is not None:
        return swallowed
    for pattern, ours in _OUT_OF_RANGE:
        found = pattern.search(message)
        if found:
            given = _given(err, argv)
            said = ours.format(found.group(1))
            if given is None:
                said = "the value " + said
            elif not said.startswith("is "):
                said = f"{given} given: it {said}"
            else:
                said = f"{given} {said}"
            return message[:found.start()] + said
    return message


def _swallowed(err: Exception, argv: Optional[list[str]]) -> Optional[str]:
    """For "Missing option '--data-dir'" when the command line has ``--data-dir`` right after an
    option that takes a value (``--peers --data-dir d``): that option took it as its value."""
    param, ctx = getattr(err, "param", None), getattr(err, "ctx", None)
    if type(err).__name__ != "MissingParameter" or param is None or ctx is None:
        return None
    args = sys.argv[1:] if argv is None else argv
    takes_value = {opt for p in ctx.command.params if getattr(p, "opts", None) and not getattr(p, "is_flag", True)
                   for opt in p.opts}
    for at in range(1, len(args)):
        if args[at] in (getattr(param, "opts", None) or ()) and args[at - 1] in takes_value:
            return (f"{args[at - 1]} took {args[at]!r} as its value, so {args[at]} is missing: "
                    f"give {args[at - 1]} a value")
    return None


def _given(err: Exception, argv: Optional[list[str]]) -> Optional[str]:
    """The value the command line gave the option ``err`` names (the last one: Click's)."""
    opts = getattr(getattr(err, "param", None), "opts", None) or []
    args = sys.argv[1:] if argv is None else argv
    given = None
    for at, arg in enumerate(args):
        if arg in opts and at + 1 < len(args):
            given = args[at + 1]
        elif "=" in arg and arg.split("=", 1)[0] in opts:
            given = arg.split("=", 1)[1]
    return given


def _subcommand(argv: Optional[list[str]]) -> str:
    args = sys.argv[1:] if argv is None else argv
    names = {"demo", "serve", "watch", "summary", "alerts", "sinks", "chaos", "replay", "node", "cluster"}
    groups = {"cluster": {"up"}}  # a group's command is named too: "cluster up", as Click names it
    for at, arg in enumerate(args):
        if arg in names:
            following = args[at + 1] if at + 1 < len(args) else None
            return f"{arg} {following}" if following in groups.get(arg, ()) else arg
    return ""


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())


if __name__ == "__main__":
    main()
