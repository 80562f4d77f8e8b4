"""`raftctl replay`: a demo run recorded with --sink jsonl: is served again through the API and page.

The ground truth is the demo's own report (its health_timeline), not the recording: the replay
must show each health transition at the offset the demo saw it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cli_helpers import RAFTCTL, run_cli

from raftctl.runtime.replay import RecordingError, ReplayClock, ReplayCollector, load_recording

SEED = 7
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """(path, report) of `raftctl demo --fast --no-dashboard --sink jsonl:PATH --json`."""
    path = tmp_path_factory.mktemp("replay") / "demo.jsonl"
    proc = run_cli("demo", "--fast", "--no-dashboard", "--no-browser", "--json", "--seed", str(SEED),
                   "--ticks", "160", "--sink", f"jsonl:{path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert len({t["status"] for t in report["health_timeline"]}) == 3, report["health_timeline"]
    return path, report


def test_a_fast_recording_is_stamped_on_one_timeline(recording):
    # --fast runs a minute of simulated time in well under a second; its samples, alerts and
    # events are stamped as if it ran in real time, so wall stamps and sim_time move together
    path, _report = recording
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    samples = [r for r in rows if "cluster" in r]
    alerts = [r for r in rows if r.get("type") == "alert"]
    assert len(samples) > 40 and alerts
    first = samples[0]
    for sample in samples:
        assert sample["timestamp"] - first["timestamp"] == pytest.approx(sample["sim_time"] - first["sim_time"])
        assert sample["collector"]["started_at"] == first["timestamp"]
    for alert in alerts:
        assert alert["started_at"] - first["timestamp"] == pytest.approx(alert["started_at_sim"] - first["sim_time"])


def transitions(report):
    """[(offset from the first sample, status)] where the demo saw its health change."""
    timeline = report["health_timeline"]
    start = timeline[0]["sim_time"]
    return [(round(t["sim_time"] - start, 6), t["status"]) for t in timeline]


class Replay:
    """A `raftctl replay` process on a free port; stopped with SIGTERM."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "NO_COLOR": "1"}
        self.proc = subprocess.Popen([*RAFTCTL, "replay", *args, "--port", "0"], stderr=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()  # the banner comes once the server listens
        match = re.search(r"dashboard at (http://127\.0\.0\.1:\d+)/", line)
        if match is None:
            self.proc.kill()
            raise AssertionError(f"no dashboard line: {line!r} {self.proc.stderr.read()!r}")
        self.banner = line
        self.url = match.group(1)

    def get(self, path: str):
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as err:
            if err.code != 503:  # /api/health answers UNHEALTHY with 503
                raise
            return json.loads(err.read())

    def control(self, query: str, header: bool = True):
        headers = {"X-Raftctl-Replay": "1"} if header else {}
        request = urllib.request.Request(self.url + "/api/replay?" + query, method="POST", headers=headers)
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.loads(answer.read())

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def wait_for(condition, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_api_shows_each_health_transition_at_its_offset(recording):
    path, report = recording
    marks = transitions(report)
    replay = Replay(str(path), "--paused")
    try:
        state = replay.get("/api/replay")
        assert state["paused"] and state["position"] == 0 and state["runs"] == 1
        assert state["samples"] == report["samples"]
        assert [tuple(m) for m in state["health"]] == marks
        previous = None
        for offset, status in marks:
            if previous is not None:  # just before: still the previous state
                replay.control(f"action=seek&position={offset - 0.5}")
                assert replay.get("/api/summary")["cluster"]["health_status"] == previous, (offset, status)
            state = replay.control(f"action=seek&position={offset}")
            assert state["offset"] == pytest.approx(offset) and state["paused"]
            assert replay.get("/api/summary")["cluster"]["health_status"] == status, (offset, status)
            assert replay.get("/api/health")["status"] == status
            previous = status
        # the alerts as of a moment: the quorum loss fires in the UNHEALTHY stretch with 3 nodes down
        unhealthy = [offset for offset, status in marks if status == "UNHEALTHY"]
        replay.control(f"action=seek&position={unhealthy[-1] + 1}")
        firing = {a["name"] for a in replay.get("/api/alerts")["active"]}
        assert "quorum_loss" in firing or "cluster_unhealthy" in firing, firing
        history = replay.get("/api/metrics/history?duration=300&fields=cluster")["samples"]
        assert history[-1]["sequence"] == replay.get("/api/summary")["sequence"]  # nothing from the future
    finally:
        assert replay.stop() == 0


def test_alerts_calls_a_fresh_replay_unknown_and_forwards_none_of_its_alerts(recording, tmp_path):
    """demo --fast stamps its samples ahead of the wall clock, so a replay of a fresh recording
    passed the stale-sample check: `alerts` said CRITICAL and paged the recording's quorum loss."""
    import http.server
    import threading

    path, report = recording
    received: list[bytes] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
            received.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    replay = Replay(str(path), "--paused")
    try:
        unhealthy = [offset for offset, status in transitions(report) if status == "UNHEALTHY"]
        replay.control(f"action=seek&position={unhealthy[-1] + 1}")
        assert replay.get("/api/alerts")["active"], "the recording has alerts firing at this moment"
        proc = run_cli("alerts", "--url", replay.url, "--sink", f"webhook:http://127.0.0.1:{receiver.server_port}/",
                       "--state-file", str(tmp_path / "state.json"))
        assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr)
        assert proc.stdout.startswith("RAFTCTL UNKNOWN - not a live cluster: raftctl replay of demo.jsonl"), proc.stdout
        assert received == [], received
    finally:
        receiver.shutdown()
        receiver.server_close()
        assert replay.stop() == 0


def test_playing_moves_the_clock_at_the_speed_and_pause_holds_it(recording):
    path, _report = recording
    replay = Replay(str(path), "--speed", "20")
    try:
        first = replay.get("/api/summary")["sequence"]
        moved = wait_for(lambda: replay.get("/api/summary")["sequence"] >= first + 10, what="10 samples at 20x")
        assert moved
        start, t0 = replay.get("/api/replay")["position"], time.monotonic()
        wait_for(lambda: replay.get("/api/replay")["position"] >= start + 10, what="10 s of recording")
        elapsed = time.monotonic() - t0
        assert 0.3 < elapsed < 3.0, elapsed  # 10 recorded seconds at 20x: about 0.5 s
        held = replay.control("action=pause")["position"]
        assert replay.get("/api/replay")["position"] == held
        replay.control("action=speed&speed=1000")
        state = replay.control("action=play")
        state = wait_for(lambda: (s := replay.get("/api/replay"))["ended"] and s, what="the end")
        assert state["paused"] and state["position"] == state["duration"]
        assert replay.get("/api/summary")["sequence"] == state["sequence"]
    finally:
        assert replay.stop() == 0


def test_control_refuses_what_it_should(recording):
    path, _report = recording
    replay = Replay(str(path), "--paused")
    try:
        for query, header, status in (("action=pause", False, 403), ("action=jump", True, 400),
                                      ("action=seek", True, 400), ("action=seek&position=abc", True, 400),
                                      ("action=speed&speed=0", True, 400), ("action=speed&speed=nan", True, 400)):
            with pytest.raises(urllib.error.HTTPError) as info:
                replay.control(query, header=header)
            assert info.value.code == status, query
            assert json.loads(info.value.read())["status"] == status
        request = urllib.request.Request(replay.url + "/api/replay", method="PUT")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=5)
        assert info.value.code == 405
        # numbers as the rest of the API takes them (ASCII digits), and nothing silently ignored
        for query, fragment in (("action=seek&position=%EF%BC%95", "ASCII digits"),
                                ("action=seek&position=30&speed=5", "seek takes position, not speed"),
                                ("action=play&position=3", "play takes no other parameter")):
            with pytest.raises(urllib.error.HTTPError) as info:
                replay.control(query)
            assert info.value.code == 400 and fragment in json.loads(info.value.read())["error"], query
        assert replay.control("action=seek&position=-5")["position"] == 0  # clamped to the recording
        assert replay.control("action=seek&position=1e9")["position"] == replay.get("/api/replay")["duration"]
    finally:
        replay.stop()


def test_the_replay_servers_openapi_document_describes_api_replay(recording):
    from openapi_spec_validator import validate

    path, _report = recording
    replay = Replay(str(path), "--paused")
    try:
        spec = replay.get("/api/openapi.json")
        validate(spec)
        assert "POST only where its path item lists it" in spec["info"]["description"]
        item = spec["paths"]["/api/replay"]
        state = replay.get("/api/replay")
        schema = item["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert set(schema["required"]) <= set(state) and set(state) <= set(schema["properties"]), state
        post = item["post"]
        assert {p["name"] for p in post["parameters"]} == {"x-raftctl-replay", "action", "position", "speed"}
        assert set(post["responses"]) == {"200", "400", "403"}
        actions = next(p for p in post["parameters"] if p["name"] == "action")["schema"]["enum"]
        for action in actions:  # every documented action is accepted
            query = {"seek": "action=seek&position=1", "speed": "action=speed&speed=2"}.get(action, f"action={action}")
            assert replay.control(query)["file"] == path.name
    finally:
        replay.stop()


@pytest.mark.browser
def test_the_page_shows_the_same_transitions_with_its_time_control(recording, browser):
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    path, report = recording
    marks = transitions(report)
    replay = Replay(str(path), "--paused")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(replay.url + "/")
        bar = page.locator("#replay-bar")
        expect(bar).to_be_visible(timeout=10_000)
        expect(page.locator("#connection-status")).to_have_text("replay", timeout=10_000)
        assert page.locator("#replay-bands span").count() == len(marks)
        seek = page.locator("#replay-seek")
        position = page.locator("#replay-position")
        for offset, status in marks:
            seek.evaluate("(el, v) => { el.value = String(v); el.dispatchEvent(new Event('change')); }", offset)
            expect(position).to_have_attribute("data-offset", repr(float(offset)).removesuffix(".0")
                                               if float(offset).is_integer() else repr(offset), timeout=10_000)
            expect(page.locator("#health-status")).to_have_text(status, timeout=10_000)
            if status == "UNHEALTHY":
                page.screenshot(path=str(ARTIFACTS / "replay-unhealthy.png"), full_page=True)
        # play, then pause from the page
        play = page.locator("#replay-play")
        seek.evaluate("(el) => { el.value = '0'; el.dispatchEvent(new Event('change')); }")
        page.locator("#replay-speed").select_option("10")
        play.click()
        expect(play).to_have_attribute("data-playing", "true", timeout=10_000)
        wait_for(lambda: replay.get("/api/replay")["position"] > 3, what="the page's play")
        play.click()
        expect(play).to_have_attribute("data-playing", "false", timeout=10_000)
        state = replay.get("/api/replay")
        assert state["paused"] and state["speed"] == 10
        assert errors == [], errors
    finally:
        page.close()
        replay.stop()


@pytest.mark.browser
def test_the_page_timeline_follows_the_replay_clock(recording, browser):
    """The page's event timeline is the run's up to the clock, and starts over after a seek back."""
    from playwright.sync_api import expect

    path, _report = recording
    replay = Replay(str(path), "--paused")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(replay.url + "/?refresh=0.5")
        expect(page.locator("#connection-status")).to_have_text("replay", timeout=10_000)
        at_start = replay.get("/api/events")
        caption = page.locator("#events-caption")
        expect(caption).to_have_text(re.compile(rf"of {len(at_start['events'])}$"), timeout=10_000)
        seek = page.locator("#replay-seek")
        seek.evaluate("(el) => { el.value = el.max; el.dispatchEvent(new Event('change')); }")
        expect(page.locator("#replay-play")).to_have_attribute("aria-label", "Play again", timeout=10_000)
        whole = replay.get("/api/events")
        assert len(whole["events"]) > len(at_start["events"])
        expect(caption).to_have_text(re.compile(rf"of {len(whole['events'])}$"), timeout=10_000)
        newest = whole["events"][-1]
        expect(page.locator("#event-list li").first).to_have_attribute("data-seq", str(newest["seq"]))
        elections = [e for e in whole["events"] if e["kind"] == "leader" and e["previous"] is not None and e["leader"]]
        assert elections, whole["events"]
        term = elections[-1]["term"]
        expect(page.locator(f"#tl-leader .tl-mark[data-term='{term}']").first).to_be_attached()
        # back to the start: the timeline starts over with what had happened by then
        seek.evaluate("(el) => { el.value = '0'; el.dispatchEvent(new Event('change')); }")
        expect(caption).to_have_text(re.compile(rf"of {len(at_start['events'])}$"), timeout=10_000)
        expect(page.locator("#event-list li").first).to_have_attribute("data-seq", str(at_start["events"][-1]["seq"]))
        assert errors == [], errors
    finally:
        page.close()
        replay.stop()


@pytest.mark.browser
def test_a_live_server_shows_no_replay_bar(browser):
    from playwright.sync_api import expect

    from raftctl import Cluster, DashboardServer, MetricsCollector

    cluster = Cluster(node_count=3, seed=SEED)
    collector = MetricsCollector(collection_interval=1.0, retention_period=300)
    collector.set_cluster(cluster)
    cluster.run_for(1.0)
    collector.collect()
    server = DashboardServer(collector, port=0).start()
    page = browser.new_page()
    try:
        page.goto(server.url + "/?refresh=1")
        expect(page.locator("#connection-status")).to_have_text("live", timeout=10_000)
        assert page.locator("#replay-bar").is_hidden()
    finally:
        server.stop()
        page.close()


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("", "is empty"),
    ("\n\n", "is empty"),
    ("hello world\n", "line 1 is not JSON"),
    ('{"type":"sample","sim_time":1,"sequence":1,"cluster":{},"performance":{},"nodes":{}}\nnot json\n',
     "line 2 is not JSON"),
    ('{"a": 1}\n', "not a raftctl jsonl record"),
    ('[1, 2]\n', "not a raftctl jsonl record"),
    ('{"type":"alert","name":"x"}\n', "holds no samples"),
    ('{"type":"sample","sequence":1}\n', "needs sim_time, sequence, cluster, performance and nodes (no sim_time,"),
    # what summary, watch and alerts would refuse is refused here, by line, not served (nor a crash)
    ('{"type":"sample","sequence":1,"timestamp":1,"sim_time":1,"cluster":{},"performance":{},"nodes":[1,2]}\n',
     "line 1: a sample's nodes must be an object, got list"),
    ('{"type":"sample","sequence":1,"timestamp":1,"sim_time":1,"cluster":{},"performance":{},"nodes":{"n1":5}}\n',
     "line 1: node 'n1''s document must be an object, got int"),
    ('{"type":"sample","sequence":1,"sim_time":1,"cluster":{},"performance":{},"nodes":{}}\n'
     '{"type":"sample","sequence":2,"sim_time":2,"cluster":{}}\n', "line 2: a sample needs"),
    ('{"type":"sample","sequence":"x","sim_time":"zz","cluster":5,"performance":{},"nodes":{}}\n',
     "sim_time must be a number of seconds, got 'zz'"),
    ('{"type":"sample","sequence":"x","sim_time":3,"cluster":5,"performance":{},"nodes":{}}\n',
     "sequence must be an integer, got 'x'"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not JSON"),
])
def test_bad_files_are_one_line_and_exit_2(tmp_path, content, message):
    path = tmp_path / "run.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    proc = run_cli("replay", str(path), "--port", "0", timeout=30)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("raftctl replay: error:"), proc.stderr
    assert message in lines[0], lines[0]


def test_a_directory_is_refused(tmp_path):
    proc = run_cli("replay", str(tmp_path), timeout=30)
    assert proc.returncode == 2 and "is a directory" in proc.stderr


def test_two_runs_in_one_file_and_a_torn_tail(recording, tmp_path):
    path, report = recording
    data = path.read_bytes()
    both = tmp_path / "two.jsonl"
    both.write_bytes(data + data + data[:200])  # the sink appends; the last run's writer died mid-line
    recording2 = load_recording(str(both))
    assert len(recording2.runs) == 2
    assert recording2.skipped_torn_tail
    replay = Replay(str(both), "--paused", "--run", "1")
    try:
        assert "run 1 of" in replay.banner and "torn last line" in replay.banner
        state = replay.get("/api/replay")
        assert state["run"] == 1 and state["samples"] == report["samples"]
    finally:
        replay.stop()
    proc = run_cli("replay", str(both), "--run", "9", timeout=30)
    assert proc.returncode == 2 and "holds" in proc.stderr


# -- the clock and the collector alone (no process) --------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_clock_plays_pauses_seeks_and_stops_at_the_end():
    fake = FakeTime()
    clock = ReplayClock(60.0, speed=10.0, monotonic=fake)
    fake.now += 2.0
    assert clock.position() == pytest.approx(20.0)
    clock.pause()
    fake.now += 5.0
    assert clock.position() == pytest.approx(20.0)
    clock.seek(50.0)
    clock.play()
    fake.now += 0.5
    assert clock.position() == pytest.approx(55.0)
    clock.set_speed(2.0)
    fake.now += 1.0
    assert clock.position() == pytest.approx(57.0)
    fake.now += 100.0
    state = clock.state()
    assert state["position"] == 60.0 and state["ended"] and state["paused"]
    clock.play()  # at the end: from the start again
    assert clock.position() == 0.0
    with pytest.raises(ValueError):
        clock.set_speed(0)
    with pytest.raises(ValueError):
        clock.seek(float("nan"))


def test_collector_answers_as_of_the_clock(recording):
    path, report = recording
    run = load_recording(str(path)).runs[0]
    fake = FakeTime()
    collector = ReplayCollector(run, speed=1.0, monotonic=fake)
    collector.clock.pause()
    assert collector.latest()["sequence"] == run.samples[0]["sequence"]
    collector.clock.seek(10.0)
    latest = collector.latest()
    assert latest["sim_time"] - run.samples[0]["sim_time"] == pytest.approx(10.0)
    assert [s["sequence"] for s in collector.history(None)][-1] == latest["sequence"]
    assert all("state_digest" not in n for n in collector.history(5)[-1]["nodes"].values())
    rows = collector.node_history("node1", 5)
    assert rows and rows[-1]["node_id"] == "node1"
    with pytest.raises(KeyError):
        collector.node_history("nope", 5)
    assert collector.version == 10


def test_samples_are_kept_as_the_files_bytes_and_read_back_as_recorded(recording, tmp_path):
    """A long recording is kept about at its size (as JSON bytes, parsed when read), and what a
    replay serves is what was recorded, whatever the order of a line's keys."""
    import orjson

    path, _ = recording
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    recorded = [{k: v for k, v in row.items() if k != "type"} for row in lines if row["type"] == "sample"]
    run = load_recording(str(path)).runs[0]
    samples = run.samples
    assert len(samples) == len(recorded)
    assert samples.nbytes() < os.path.getsize(path)  # kept as bytes, not as documents
    assert [orjson.loads(samples.body(i)) for i in range(len(samples))] == recorded
    assert list(samples) == recorded and samples[-1] == recorded[-1] and samples[2:4] == recorded[2:4]
    assert samples.node_ids == list(recorded[0]["nodes"])
    assert samples.health == [s["cluster"]["health_status"] for s in recorded]
    collector = ReplayCollector(run, paused=True)
    collector.clock.seek(collector.clock.duration)
    assert orjson.loads(collector.latest_bytes()) == recorded[-1]
    assert [e["sequence"] for e in collector.history(None)] == [s["sequence"] for s in recorded]
    # another writer's key order (type last): the same samples
    moved = tmp_path / "moved.jsonl"
    moved.write_bytes(b"".join(orjson.dumps({**row, "type": row["type"]} if row["type"] != "sample"
                                            else {**{k: v for k, v in row.items() if k != "type"}, "type": "sample"})
                               + b"\n" for row in lines))
    again = load_recording(str(moved)).runs[0].samples
    assert [orjson.loads(again.body(i)) for i in range(len(again))] == recorded


def test_load_recording_errors_name_the_file(tmp_path):
    with pytest.raises(RecordingError, match="no such file"):
        load_recording(str(tmp_path / "missing.jsonl"))


def test_replay_timeline_is_the_recorded_run_up_to_the_clock(recording):
    """events(since) / events_sequence: the live timeline rebuilt from the samples, cut at the clock."""
    from raftctl.core.event_log import EventLog

    path, report = recording
    run = load_recording(str(path)).runs[0]
    collector = ReplayCollector(run, speed=1.0, monotonic=FakeTime(), paused=True)
    assert collector.events_sequence == len(collector.events(None)) > 0  # the first sample: health None -> X
    collector.clock.seek(collector.offsets[-1])
    everything = collector.events(None)
    assert [e["seq"] for e in everything] == list(range(1, len(everything) + 1))
    assert collector.events_sequence == everything[-1]["seq"]
    assert not [e for e in everything if e["kind"] == "fault"]  # a recording knows no injected faults
    # the health events are the demo's own health timeline, at the same offsets
    start = run.samples[0]["sim_time"]
    health = [(round(e["t"] - start, 6), e["to"]) for e in everything if e["kind"] == "health"]
    assert health == transitions(report)
    # elections with their terms, as the samples say
    leaders = [e for e in everything if e["kind"] == "leader"]
    assert leaders and all(e["term"] is not None for e in leaders if e["leader"] is not None)
    assert len({e["term"] for e in leaders if e["leader"]}) >= 2, leaders
    # alerts firing and resolving, from the recorded alert events
    alerts = [e for e in everything if e["kind"] == "alert"]
    assert {"firing", "resolved"} <= {e["status"] for e in alerts}
    # the same as a live EventLog fed the same samples (without the alerts)
    log = EventLog(limit=10_000)
    previous = None
    for sample in run.samples:
        log.record(previous, sample)
        previous = sample
    strip = lambda events: [{k: v for k, v in e.items() if k != "seq"} for e in events if e["kind"] != "alert"]  # noqa: E731
    assert strip(everything) == strip(log.since(None))
    # since= and the clock: only what happened by the position, only after `since`
    middle = collector.offsets[len(collector.offsets) // 2]
    collector.clock.seek(middle)
    upto = collector.events_sequence
    assert 0 < upto < everything[-1]["seq"]
    assert collector.events(None) == [e for e in everything if e["seq"] <= upto]
    assert all(e["t"] - start <= middle + 1e-6 for e in collector.events(None))
    assert collector.events(upto - 1) == [everything[upto - 1]]
    assert collector.events(upto) == []
    collector.clock.seek(0)  # back: the sequence goes back with it
    assert collector.events_sequence < upto


def test_replay_serves_its_timeline_at_api_events(recording):
    path, _report = recording
    replay = Replay(str(path), "--paused")
    try:
        first = replay.get("/api/events")
        assert first["last"] == len(first["events"]) >= 1
        assert replay.control("action=seek&position=1e9")["ended"]
        whole = replay.get("/api/events")
        assert whole["last"] > first["last"]
        newer = replay.get(f"/api/events?since={first['last']}")
        assert newer["events"] == whole["events"][first["last"]:] and newer["last"] == whole["last"]
        assert replay.get(f"/api/events?since={whole['last']}") == {"events": [], "last": whole["last"]}
    finally:
        replay.stop()


def test_summary_and_watch_say_a_replay_is_no_live_cluster(recording):
    """`summary` and `watch` against `raftctl replay` showed the recording as a live cluster: no
    word of a replay, so yesterday's UNHEALTHY read as today's. Both now say REPLAY, what and
    where; a live server shows no such line."""
    from raftctl.commands.watch import Watcher

    path, report = recording
    replay = Replay(str(path), "--paused")
    try:
        replay.control("action=seek&position=5")
        proc = run_cli("summary", "--url", replay.url)
        assert proc.returncode == 0, proc.stderr
        first = proc.stdout.splitlines()[0]
        assert first.startswith(f"REPLAY of {path.name}") and "paused" in first, proc.stdout
        assert f"of {report['samples']}" in first and "not a live cluster" in first, first
        watcher = Watcher(replay.url, 1.0)
        assert watcher.poll()
        assert watcher.replay is not None and watcher.replay.startswith(f"REPLAY of {path.name}")
        from rich.console import Console

        console = Console(width=100, record=True, force_terminal=False)
        console.print(watcher.frame(100))
        assert "REPLAY of" in console.export_text()
    finally:
        assert replay.stop() == 0
    from raftctl import Cluster, DashboardServer, MetricsCollector
    from raftctl.commands._common import replay_banner

    cluster = Cluster(node_count=3, seed=SEED)
    collector = MetricsCollector(collection_interval=1.0)
    collector.set_cluster(cluster)
    cluster.run_for(1.0)
    collector.collect()
    server = DashboardServer(collector, port=0).start()
    try:
        assert replay_banner(server.url) is None  # a live server has no /api/replay
    finally:
        server.stop()
