"""``stdout`` sink: a human line per sample (the seed's format) or JSON lines."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

import orjson

from raftctl.sinks.base import Sink

__all__ = ["StdoutSink", "format_sample_line", "format_alert_line"]

log = logging.getLogger(__name__)


def format_sample_line(sample: dict) -> str:
    """``[12] Healthy: 3/3, Leader: node1, Status: healthy`` (the seed's line)."""
    cluster = sample["cluster"]
    leader = cluster.get("leader_node") or "none"
    return (f"[{sample.get('sequence', '?')}] Healthy: {cluster['healthy_nodes']}/"
            f"{cluster['cluster_size']}, Leader: {leader}, "
            f"Status: {str(cluster['health_status']).lower()}")


def format_alert_line(alert: dict) -> str:
    """``ALERT firing quorum_loss (critical): message``."""
    return f"ALERT {alert['status']} {alert['name']} ({alert['severity']}): {alert['message']}"


class StdoutSink(Sink):
    """Print samples and alert events to standard output."""

    name = "stdout"
    spec_syntax = "stdout[:json]"
    description = "a human line per sample (stdout:json = one JSON object per line)"

    def __init__(self, arg: str | None = None, stream: TextIO | None = None, **options: Any) -> None:
        super().__init__(arg, **options)
        if arg not in (None, "", "json", "text"):
            raise ValueError(f"stdout sink takes 'json' or nothing, got {arg!r} "
                             "(use 'stdout' or 'stdout:json')")
        self.json = arg == "json"
        self._stream = stream
        self.closed_by_reader = False  # the reader of a pipe went away (`raftctl serve ... | head`)

    @property
    def stream(self) -> TextIO:
        # resolved late so pytest's capsys and redirected stdout are honoured
        return self._stream if self._stream is not None else sys.stdout

    def _write(self, line: str) -> None:
        if self.closed_by_reader:
            return
        stream = self.stream
        try:
            stream.write(line + "\n")
            stream.flush()
        except BrokenPipeError:
            # the reader has gone: nothing written now can reach anyone. Say so once, without a
            # traceback, and write nothing more; the process goes on (the dashboard, other sinks)
            self.closed_by_reader = True
            log.warning("stdout sink: standard output was closed by its reader (broken pipe); "
                        "it writes nothing more")
            self._silence(stream)

    @staticmethod
    def _silence(stream: TextIO) -> None:
        """Point the closed pipe's descriptor at /dev/null, so the interpreter's flush of what
        is still buffered at exit finds no broken pipe either."""
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):  # a stream without a descriptor (a test's)
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, fd)
        finally:
            os.close(devnull)

    def emit_sample(self, sample: dict) -> None:
        if self.json:
            self._write(orjson.dumps({"type": "sample", **sample}).decode())
        else:
            self._write(format_sample_line(sample))

    def emit_alert(self, alert: dict) -> None:
        if self.json:
            self._write(orjson.dumps({"type": "alert", **alert}).decode())
        else:
            self._write(format_alert_line(alert))
