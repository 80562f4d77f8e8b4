"""Sink plugins: stream samples and alert events out of the collector.

Only the base module is imported here; concrete sinks load on demand through the
``raftctl.sinks`` entry-point group.
"""

from raftctl.sinks.base import (ENTRY_POINT_GROUP, Sink, SinkWorker, available_sinks, build_sink,
                                parse_spec, sink_names)

__all__ = ["ENTRY_POINT_GROUP", "Sink", "SinkWorker", "available_sinks", "build_sink",
           "parse_spec", "sink_names"]
