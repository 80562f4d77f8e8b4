"""`raftctl alerts` as a Nagios plugin: the range syntax, thresholds, perfdata and the text line."""

from __future__ import annotations

import math

import pytest

from raftctl.commands.alerts import MAX_TEXT, evaluate, health_reason_text, parse_range


def summary(health="HEALTHY", healthy=5, latency=4.5, reasons=(), alerts=(), leader="node1"):
    return {"cluster": {"cluster_size": 5, "healthy_nodes": healthy, "leader_node": leader,
                        "health_status": health, "health_reasons": list(reasons), "current_term": 2},
            "performance": {"avg_latency_ms": latency, "throughput_ops": 10.0},
            "nodes": {}, "alerts": list(alerts)}


# The table of the Nagios plugin guidelines ("Threshold and ranges"): generate an alert if x ...
@pytest.mark.parametrize("spec, alerting, quiet", [
    ("10", [-1, 10.5, 11], [0, 5, 10]),               # < 0 or > 10
    ("10:", [9.9, -3], [10, 11, 1e9]),                 # < 10
    ("~:10", [10.1, 11], [10, -1e9, 0]),               # > 10
    ("10:20", [9, 21], [10, 15, 20]),                  # < 10 or > 20
    ("@10:20", [10, 15, 20], [9.9, 20.1]),             # >= 10 and <= 20
    ("@~:2", [2, 0, -5], [2.1, 5]),                    # <= 2
])
def test_range_semantics_follow_the_plugin_guidelines(spec, alerting, quiet):
    parsed = parse_range(spec)
    assert all(parsed.alerts(x) for x in alerting), spec
    assert not any(parsed.alerts(x) for x in quiet), spec


@pytest.mark.parametrize("bad", ["", "abc", "10:5", "@", "1:2:3", "nan", "inf", "~", "10:x"])
def test_bad_ranges_are_refused(bad):
    with pytest.raises(ValueError):
        parse_range(bad)


def test_range_bounds():
    assert parse_range("10:").end == math.inf and parse_range("~:10").start == -math.inf


def test_thresholds_raise_the_verdict_and_land_in_perfdata():
    limits = {"healthy_nodes": (parse_range("5:"), parse_range("3:")),
              "avg_latency_ms": (parse_range("10"), parse_range("100"))}
    ok = evaluate(summary(), limits)
    assert ok["exit_code"] == 0
    perf = ok["text"].split(" | ")[1].split()
    assert "healthy_nodes=5;5:;3:;0;5" in perf and "avg_latency_ms=4.5ms;10;100;0;" in perf
    assert evaluate(summary(latency=50.0), limits)["exit_code"] == 1
    assert evaluate(summary(latency=500.0), limits)["exit_code"] == 2
    assert evaluate(summary(healthy=4), limits)["exit_code"] == 1
    assert evaluate(summary(healthy=2), limits)["exit_code"] == 2
    # a threshold never lowers the existing verdict: UNHEALTHY stays CRITICAL
    assert evaluate(summary("UNHEALTHY", healthy=5), limits)["exit_code"] == 2


def test_null_latency_is_U_and_never_judged():
    limits = {"avg_latency_ms": (parse_range("10"), parse_range("100"))}
    result = evaluate(summary(latency=None), limits)
    assert result["exit_code"] == 0
    perf = result["text"].split(" | ")[1].split()
    assert "avg_latency_ms=U;10;100;0;" in perf
    assert "avg_latency_ms=U" in evaluate(summary(latency=None))["text"].split(" | ")[1].split()


def test_a_latency_threshold_the_monitor_cannot_measure_is_unknown_not_ok():
    """Session 23's etcd tester: auth on and no credentials (or a wrong password, a revoked role):
    the probe measures nothing and `alerts --warning-latency 50` said OK, exit 0, for ever. With a
    note saying why, the latency check is UNKNOWN; an idle cluster (no note) stays OK; a CRITICAL
    cluster stays CRITICAL."""
    limits = {"avg_latency_ms": (parse_range("50"), parse_range("200"))}
    doc = summary(latency=None)
    doc["performance"]["latency_note"] = "etcd refused user 'monitor': authentication failed"
    result = evaluate(doc, limits)
    assert result["exit_code"] == 3 and "latency not measured" in result["text"].split(" | ")[0], result
    assert result["latency_note"].startswith("etcd refused user"), result
    assert evaluate(doc)["exit_code"] == 0  # no latency threshold asked: nothing to judge
    assert evaluate(summary(latency=None), limits)["exit_code"] == 0  # nothing committed: no note
    down = summary("UNHEALTHY", healthy=2, latency=None)
    down["performance"]["latency_note"] = "refused: connection refused"
    assert evaluate(down, limits)["exit_code"] == 2


def test_reason_texts():
    assert health_reason_text("node_down:node3") == "node3 down"
    assert health_reason_text("follower_lagging:node2") == "node2 lagging"
    assert health_reason_text("quorum_lost") == "quorum lost"
    assert health_reason_text("shard1:no_leader") == "shard1 no leader"
    # every code the health rules make reads as words, none half converted ("node isolated:node2")
    assert health_reason_text("node_isolated:node2") == "node2 cut off"
    assert health_reason_text("stale_leader:node1") == "node1 stale leader"
    assert health_reason_text("monitor_reach:1/3") == "monitor reaches 1/3"
    assert health_reason_text("shard2:node_isolated:node4") == "shard2 node4 cut off"


@pytest.mark.parametrize("doc", [
    summary("DEGRADED", healthy=4, reasons=["node_down:node3"], leader="node5"),
    summary("DEGRADED", healthy=3, reasons=[f"node_down:node{i}" for i in range(10, 30)]),
    summary("UNHEALTHY", healthy=2, leader=None,
            reasons=["no_leader", "quorum_lost", "node_down:node1", "node_down:node2", "node_down:node3"],
            alerts=[{"name": n, "severity": "critical", "status": "firing"} for n in
                    ("quorum_loss", "cluster_unhealthy", "leader_election_failure", "low_healthy_nodes")]),
    summary(alerts=[{"name": "x" * 120, "severity": "warning", "status": "firing"}]),
])
def test_text_line_stays_under_80_and_says_why(doc):
    result = evaluate(doc)
    text = result["text"].split(" | ")[0]
    assert len(text) <= MAX_TEXT < 80, text
    if result["exit_code"] == 1:
        assert ":" in text.split(" - ", 1)[1] or "firing" in text, text  # a reason follows the state


def test_degraded_says_which_node():
    text = evaluate(summary("DEGRADED", healthy=4, reasons=["node_down:node3"], leader="node5"))["text"]
    assert text.startswith("RAFTCTL WARNING - DEGRADED: node3 down; 4/5 nodes healthy, leader node5 |"), text


def test_the_unknown_line_keeps_the_cause_of_a_usage_error_or_a_bad_answer(monkeypatch, capsys):
    """The plugin's one line (under 80 characters) says why: Click's filler, the help hint and the
    checked server's own URL go before the cause does."""
    from raftctl import cli
    from raftctl.commands import _common

    def line(argv):
        code = cli.run(argv)
        out = capsys.readouterr().out.strip()
        assert code == 3 and len(out) <= MAX_TEXT and "\n" not in out, out
        return out

    assert line(["alerts", "-w", "5:3", "--url", "http://127.0.0.1:1"]) == \
        "RAFTCTL UNKNOWN - usage: -w '5:3': its start is above its end"
    assert line(["alerts", "--url", "http://"]) == "RAFTCTL UNKNOWN - usage: --url 'http://': the host is missing"
    assert line(["alerts", "--source", "x"]) == \
        "RAFTCTL UNKNOWN - usage: No such option: --source (Possible options: --url)"
    # an option given last without its value: Click raises it with no context, and it was exit 2
    # (CRITICAL to Nagios) with nothing on stdout
    for option in ("--url", "-w", "-c", "-t", "--sink", "--state-file"):
        assert line(["alerts", option]) == f"RAFTCTL UNKNOWN - usage: Option '{option}' requires an argument."
    assert line(["alerts", "-t", "abc"]) == "RAFTCTL UNKNOWN - usage: --timeout 'abc' is not a number"

    def not_found(base, path, timeout=0):
        raise _common.CliError(f"{base}{path} answered HTTP 404: File not found")

    monkeypatch.setattr(_common, "http_get_json", not_found)
    assert line(["alerts", "--url", "http://exchange-monitor.example.internal:28600"]) == \
        "RAFTCTL UNKNOWN - /api/summary answered HTTP 404: File not found"



def test_a_value_of_the_wrong_type_is_named_in_our_words(capsys):
    """The type checker said "Input should be a valid integer, unable to parse string as an
    integer", without the value, and a missing value was told by "raftctl", not the command."""
    from raftctl import cli

    assert cli.run(["serve", "--nodes", "abc"]) == 2
    assert "raftctl serve: error: Invalid value for '--nodes': 'abc' is not a whole number." in capsys.readouterr().err
    assert cli.run(["demo", "--ticks=1.5"]) == 2
    assert "'1.5' is not a whole number" in capsys.readouterr().err
    assert cli.run(["serve", "--interval", "soon"]) == 2
    assert "'soon' is not a number" in capsys.readouterr().err
    assert cli.run(["serve", "--port"]) == 2
    assert capsys.readouterr().err.strip() == ("raftctl serve: error: Option '--port' requires an argument. "
                                              "(see 'raftctl serve --help')")


def test_a_value_out_of_range_is_named_in_our_words(capsys):
    """The type checker said "Input should be greater than or equal to 1", not which value."""
    from raftctl import cli

    assert cli.run(["demo", "--nodes", "0"]) == 2
    assert capsys.readouterr().err.strip() == ("raftctl demo: error: Invalid value for '--nodes': 0 is below 1, "
                                              "the least allowed. (see 'raftctl demo --help')")
    assert cli.run(["serve", "--port=99999"]) == 2
    assert "'--port': 99999 is above 65535, the most allowed." in capsys.readouterr().err
    assert cli.run(["cluster", "up", "--nodes", "12"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("raftctl cluster up: error:") and "12 is above 9, the most allowed" in err
    assert "Input should" not in err


def test_an_option_taken_as_another_options_value_is_named(capsys):
    """`raftctl node --id a --peers --data-dir d` said only "Missing option '--data-dir'" (the
    operator tester): --peers had taken '--data-dir' as its value."""
    from raftctl import cli

    assert cli.run(["node", "--id", "a", "--peers", "--data-dir", "d"]) == 2
    assert capsys.readouterr().err.strip() == (
        "raftctl node: error: --peers took '--data-dir' as its value, so --data-dir is missing: give --peers "
        "a value. (see 'raftctl node --help')")
    assert cli.run(["node", "--id", "a", "--peers", "a=127.0.0.1:1"]) == 2  # missing, and not swallowed
    assert "Missing option '--data-dir'" in capsys.readouterr().err


def test_a_cut_list_is_set_off_by_a_comma():
    """``monitor reaches 1/3 +3 more`` read as arithmetic: ``monitor reaches 1/3, +3 more``."""
    reasons = ["monitor_reach:1/9"] + [f"node_down:node{i}" for i in range(2, 10)]
    doc = summary("UNHEALTHY", healthy=1, reasons=reasons, leader=None,
                  alerts=[{"name": "node_down", "severity": "warning", "status": "firing"}])
    text = evaluate(doc)["text"].split(" | ")[0]
    assert len(text) <= MAX_TEXT and "1/9 +" not in text, text
    assert "monitor reaches 1/9, +" in text and " more" in text, text


def test_a_sample_too_old_to_judge_is_unknown_not_a_verdict():
    """`alerts` against `raftctl replay` of last night's file said CRITICAL from the recording
    (and forwarded its alerts), or OK for ever on a paused replay: a stale sample is UNKNOWN."""
    from raftctl.commands.alerts import stale_sample

    now = 1_800_000_000.0
    fresh = {"timestamp": now - 5, "collector": {"collection_interval": 1.0}}
    assert stale_sample(fresh, now) is None
    assert stale_sample({"timestamp": now - 29, "collector": {"collection_interval": 1.0}}, now) is None
    said = stale_sample({"timestamp": now - 31, "collector": {"collection_interval": 1.0}}, now)
    assert said is not None and said.startswith("the newest sample is 31 s old"), said
    # a slow collector gets three of its intervals
    assert stale_sample({"timestamp": now - 100, "collector": {"collection_interval": 60}}, now) is None
    assert "3 h 0 min old" in stale_sample({"timestamp": now - 10_800, "collector": {}}, now)
    assert "370 days old" in stale_sample({"timestamp": now - 370 * 86400}, now)
    # demo --fast stamps simulated time ahead of the clock; no timestamp: nothing to judge
    assert stale_sample({"timestamp": now + 3600}, now) is None
    assert stale_sample({}, now) is None and stale_sample({"timestamp": "x"}, now) is None


def test_the_threshold_that_raised_the_status_is_named_first():
    """A node down (WARNING) and -c on the latency (CRITICAL): the line read "RAFTCTL CRITICAL -
    DEGRADED: node4 down, +1 more", the reason for CRITICAL hidden in the "+1 more"."""
    from raftctl.commands.alerts import evaluate, parse_range

    doc = {"cluster": {"cluster_size": 5, "healthy_nodes": 4, "leader_node": "node1", "health_status": "DEGRADED",
                       "health_reasons": ["node_down:node4"]},
           "performance": {"avg_latency_ms": 40.0},
           "nodes": {"node4": {"up": False, "down_reason": "refused"}}, "alerts": []}
    result = evaluate(doc, {"avg_latency_ms": (None, parse_range("1"))})
    assert result["exit_code"] == 2
    text = result["text"]
    assert text.index("latency 40") < text.index("node4"), text
