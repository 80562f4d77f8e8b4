"""The OpenAPI 3.0 description of the dashboard's HTTP API (served at /api/openapi.json)."""

from __future__ import annotations

from typing import Any

from raftctl import __version__
from raftctl.core import sample

_JSON = "application/json"
_SECTION = "(cluster|performance|nodes|alerts_firing)"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _nullable(kind: str) -> dict[str, Any]:
    return {"type": kind, "nullable": True}


# The sample documents' schemas are derived from their types (raftctl/core/sample.py), so the
# published schema cannot drift from what the collector publishes.
_DOCUMENTS = {
    "ClusterMetrics": sample.ClusterDoc,
    "PerformanceMetrics": sample.PerformanceDoc,
    "NodeMetrics": sample.NodeDoc,
    "NodeShardMetrics": sample.NodeShardDoc,
    "ShardMetrics": sample.ShardDoc,
    "Alert": sample.AlertDoc,
    "CollectorMetrics": sample.CollectorDoc,
    "LatencyHistogram": sample.LatencyHistogramDoc,
    "Sample": sample.Sample,
    "HistoryClusterMetrics": sample.HistoryCluster,
    "HistoryPerformanceMetrics": sample.HistoryPerformance,
    "HistoryNodeMetrics": sample.HistoryNode,
    "HistorySample": sample.HistorySample,
}
_DESCRIPTIONS = {
    ("ClusterMetrics", "shard_count"): "Raft groups; present only in a sharded (Multi-Raft) cluster",
    ("ClusterMetrics", "healthy_nodes"): "Nodes up and, with a leader, heard from by it within max_follower_contact_ms",
    ("ShardMetrics", None): "One Raft group of a sharded cluster; leader and indexes are its leader's.",
    ("Sample", None): "One collection of the whole cluster; GET /api/summary returns the newest.",
    ("Sample", "timestamp"): "Unix time of the sample",
    ("Sample", "sim_time"): "Collector clock used for history windows",
    ("Sample", "shards"): "Present only in a sharded cluster: one entry per Raft group, by shard number. "
                          "Cluster health is the worst shard's; top-level leader and term are shard 0's.",
    ("Sample", "latency_histogram"): "Cumulative consensus-latency buckets (seconds) since the collector started",
    ("PerformanceMetrics", "total_committed"): "What throughput_ops is the rate of: orders the client saw committed "
                                                "(etcd: proposals the cluster committed) since the source started",
    ("PerformanceMetrics", "avg_latency_ms"): "Average consensus latency over the last interval",
    ("PerformanceMetrics", "proposals_pending"): "Orders submitted and not yet acknowledged",
    ("PerformanceMetrics", "latency_count"): "How many latencies avg/p50/p99 come from in the interval: the orders "
                                              "committed, or one probe read on etcd (its percentiles are that read); "
                                              "0 when none",
    ("PerformanceMetrics", "latency_note"): "Why no latency was measured in the interval, when the source probes "
                                             "latency itself and the probe failed (etcd: its read refused or "
                                             "timed out); null otherwise",
    ("PerformanceMetrics", "proposals_failed"): "Client proposals refused (no leader, a leadership transfer, a full queue)",
    ("NodeMetrics", "last_contact_ms"): "Milliseconds since the leader last heard from this follower; null for the leader",
    ("HistorySample", None): "A retained sample: like Sample, without digests and with alerts reduced to a count.",
}


def _document_schemas() -> dict[str, Any]:
    refs = {tp: name for name, tp in _DOCUMENTS.items()}
    out: dict[str, Any] = {}
    for name, tp in _DOCUMENTS.items():
        schema = sample.json_schema(tp, {k: v for k, v in refs.items() if k is not tp})
        for (doc, field), text in _DESCRIPTIONS.items():
            if doc != name:
                continue
            if field is None:
                schema["description"] = text
            else:
                schema["properties"][field]["description"] = text
        out[name] = schema
    return out


def _sections_schema(history_sample: dict[str, Any]) -> dict[str, Any]:
    """HistorySample with only timestamp, sim_time and sequence required (what ``fields=`` returns)."""
    schema = dict(history_sample)
    schema["required"] = [name for name in ("timestamp", "sim_time", "sequence") if name in schema["properties"]]
    schema["description"] = "A HistorySample reduced to the sections named by `fields`"
    return schema


def _schemas() -> dict[str, Any]:
    number = {"type": "number"}
    integer = {"type": "integer"}
    documents = _document_schemas()
    documents["HistorySampleSections"] = _sections_schema(documents["HistorySample"])
    return {
        "Error": {
            "type": "object",
            "required": ["error", "status"],
            "properties": {"error": {"type": "string"}, "status": {"type": "integer", "minimum": 400, "maximum": 599}},
        },
        "Health": {
            "type": "object",
            "required": ["status", "leader", "healthy_nodes", "cluster_size", "timestamp"],
            "properties": {
                "status": {"type": "string", "enum": ["HEALTHY", "DEGRADED", "UNHEALTHY"]},
                "leader": _nullable("string"),
                "healthy_nodes": integer,
                "cluster_size": integer,
                "timestamp": number,
                "reasons": {"type": "array", "items": {"type": "string"}},
            },
        },
        **documents,
        "History": {
            "type": "object",
            "required": ["duration", "interval", "samples"],
            "properties": {
                "duration": {"type": "number", "description": "Window actually applied, in seconds"},
                "interval": {"type": "number", "nullable": True, "description": "Collection interval in seconds"},
                "samples": {
                    "type": "array",
                    "items": {"anyOf": [_ref("HistorySample"), _ref("HistorySampleSections")]},
                    "description": "Oldest first; whole HistorySample documents unless `fields` names the sections to keep",
                },
            },
        },
        "NodeDetail": {
            "type": "object",
            "required": ["node_id", "current", "history"],
            "properties": {
                "node_id": {"type": "string"},
                "current": {"allOf": [_ref("NodeMetrics")], "nullable": True},
                "history": {"type": "array", "items": {"type": "object"}, "description": "Oldest first"},
            },
        },
        "Alerts": {
            "type": "object",
            "required": ["active", "resolved"],
            "properties": {
                "active": {"type": "array", "items": _ref("Alert")},
                "resolved": {"type": "array", "items": _ref("Alert"), "description": "Newest first"},
            },
        },
    }


# Durations up to this many times the retention (and never less than an hour) are clamped to the
# retention; beyond that the caller has almost certainly made a mistake (units, extra zeros).
ABSURD_DURATION_FACTOR = 10
NEVER_ABSURD_DURATION = 3600.0


def max_duration(retention: float) -> float:
    """The largest ``duration`` (seconds) the API takes: asking for the last hour is never a
    mistake, whatever the retention (``--retention 1`` still answers ``duration=60``)."""
    return max(ABSURD_DURATION_FACTOR * retention, NEVER_ABSURD_DURATION)


def build_openapi(retention: float) -> dict[str, Any]:
    """The OpenAPI document; ``retention`` (seconds) sets the documented duration bounds."""
    limit = max_duration(retention)
    duration = {
        "name": "duration",
        "in": "query",
        "required": False,
        "description": (
            f"Window in seconds (default 60), written as a plain decimal number in ASCII digits "
            f"(60, 0.5, 1e3; no '+', spaces, underscores or non-ASCII digits). Values above the retention "
            f"({retention:g} s) are clamped to it; values above {limit:g} s, zero, negative, NaN, "
            f"infinite or non-numeric are a 400."
        ),
        "schema": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": limit, "default": 60},
    }
    since = {
        "name": "since",
        "in": "query",
        "required": False,
        "description": (
            "Only samples whose `sequence` is greater than this (the last sequence the caller has), within "
            "`duration`. ASCII digits only; anything else is a 400. A page loads the window once, then asks "
            "with since= its newest sequence."
        ),
        "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
    }
    fields = {
        "name": "fields",
        "in": "query",
        "required": False,
        "description": (
            "Comma-separated sections of each sample to keep, from cluster, performance, nodes and alerts_firing "
            "(timestamp, sim_time and sequence always stay; the others are then absent). Default: all. "
            "An unknown or empty name is a 400. History keeps no per-shard data: /api/summary's shards has it."
        ),
        "schema": {"type": "string", "pattern": f"^{_SECTION}(,{_SECTION})*$", "maxLength": 128},
    }
    no_sample = _error("No sample has been collected yet")
    bad_request = _error("Invalid parameter")
    paths = {
        "/api/health": {
            "get": {
                "operationId": "getHealth",
                "summary": "Cluster health for load balancers and scripts",
                "description": "HTTP 200 when HEALTHY or DEGRADED, 503 when UNHEALTHY or before the first sample.",
                "responses": {
                    "200": _json(_ref("Health"), "HEALTHY or DEGRADED"),
                    "503": _json({"oneOf": [_ref("Health"), _ref("Error")]}, "UNHEALTHY, or no sample yet"),
                },
            }
        },
        "/api/summary": {
            "get": {
                "operationId": "getSummary",
                "summary": "The newest sample: cluster, performance, nodes, alerts",
                "description": (
                    "Carries a weak ETag that changes with every sample; a request whose If-None-Match "
                    "matches it gets 304 with no body."
                ),
                "parameters": [
                    {
                        "name": "If-None-Match",
                        "in": "header",
                        "required": False,
                        "description": "The ETag of the summary the caller has (or *)",
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {**_json(_ref("Sample"), "Newest sample"), "headers": {"ETag": {"schema": {"type": "string"}}}},
                    "304": {
                        "description": "Not modified: no sample since the ETag given",
                        "headers": {"ETag": {"schema": {"type": "string"}}},
                    },
                    "503": no_sample,
                },
            }
        },
        "/api/metrics/history": {
            "get": {
                "operationId": "getHistory",
                "summary": "Samples of the last `duration` seconds, oldest first",
                "parameters": [duration, since, fields],
                "responses": {"200": _json(_ref("History"), "Samples in the window"), "400": bad_request},
            }
        },
        "/api/node": {
            "get": {
                "operationId": "getNode",
                "summary": "One node's current metrics and its history",
                "parameters": [
                    {
                        "name": "node_id",
                        "in": "query",
                        "required": True,
                        "description": "Node id such as node1; an empty value is a 400, any other unknown one a 404",
                        "schema": {"type": "string", "minLength": 1},
                    },
                    duration,
                ],
                "responses": {
                    "200": _json(_ref("NodeDetail"), "The node's metrics"),
                    "400": bad_request,
                    "404": _error("Unknown node_id"),
                },
            }
        },
        "/api/alerts": {
            "get": {
                "operationId": "getAlerts",
                "summary": "Firing alerts and recently resolved ones",
                "responses": {"200": _json(_ref("Alerts"), "Alerts")},
            }
        },
        "/api/events": {
            "get": {
                "operationId": "getEvents",
                "summary": "The timeline: faults the source injected, leader changes (elections with their "
                           "terms), nodes going DOWN or stale, health changes, alerts firing and resolving",
                "parameters": [{
                    "name": "since", "in": "query", "required": False,
                    "description": "Only events with a seq above this one (ASCII digits)",
                    "schema": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1},
                }],
                "responses": {
                    "200": _json({
                        "type": "object", "required": ["events", "last"],
                        "properties": {
                            "events": {"type": "array", "items": {
                                "type": "object", "required": ["seq", "t", "timestamp", "kind"],
                                "properties": {
                                    "seq": {"type": "integer"}, "t": {"type": "number"},
                                    "timestamp": {"type": "number"},
                                    "kind": {"type": "string",
                                             "enum": ["fault", "leader", "node", "health", "alert"]},
                                },
                                "additionalProperties": True,
                            }},
                            "last": {"type": "integer", "description": "The newest event's seq (0: none yet)"},
                        },
                    }, "Events, oldest first"),
                    "400": _json(_ref("Error"), "Bad since"),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "getMetrics",
                "summary": "Prometheus exposition (text 0.0.4; OpenMetrics 1.0.0 when Accept asks for it)",
                "responses": {
                    "200": {
                        "description": "Metrics of the newest sample",
                        "content": {
                            "text/plain": {"schema": {"type": "string"}},
                            "application/openmetrics-text": {"schema": {"type": "string"}},
                        },
                    }
                },
            }
        },
        "/api/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3 document")},
            }
        },
        "/": {
            "get": {
                "operationId": "getDashboard",
                "summary": "The web dashboard",
                "responses": {"200": {"description": "HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}},
            }
        },
        "/static/{file}": {
            "get": {
                "operationId": "getStaticFile",
                "summary": "The dashboard's scripts and styles",
                "parameters": [
                    {"name": "file", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
                ],
                "responses": {
                    "200": {
                        "description": "File",
                        "content": {
                            "text/html": {"schema": {"type": "string"}},
                            "text/javascript": {"schema": {"type": "string"}},
                            "text/css": {"schema": {"type": "string"}},
                        },
                    },
                    "400": bad_request,
                    "404": _error("No such file"),
                },
            }
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "raftctl dashboard API",
            "version": __version__,
            "description": (
                "Monitoring API of a Raft exchange cluster (simulated, raftctl node processes or etcd). "
                "Every path answers GET and HEAD, and POST only where its path item lists it (a replay "
                "server's /api/replay); other methods get 405 with an Allow header. "
                "Every error is JSON {\"error\": ..., \"status\": N}. "
                "JSON, /metrics and page answers of 512 bytes or more are gzip-compressed (Content-Encoding: "
                "gzip) when the request's Accept-Encoding allows gzip; they all carry Vary: Accept-Encoding."
            ),
        },
        "paths": paths,
        "components": {"schemas": _schemas()},
    }
