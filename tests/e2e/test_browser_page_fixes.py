"""The dashboard page's fixes, each seen in headless Chromium: a restarted server starts the page
over, the header shows the sample's own time, timeline labels never cover one another, fault texts
keep a partition's groups and one instant's faults together, the health reasons wrap, all-zero
charts get a clean axis, shard cards keep their labels whole, "Leads" says "shard N", and counts
agree with their nouns.

Needs Debian's chromium (scripts/test.sh installs it); never `playwright install`.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from playwright.sync_api import expect
from test_browser import ARTIFACTS, NARROW, SEED, horizontal_overflow, monitored, monitored_shards, step

from raftctl import Cluster, DashboardServer, MetricsCollector, Workload

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1440, "height": 1000}


def new_page(browser, viewport, errors: list[str], **context):
    """A page (in its own context) whose script errors land in ``errors``."""
    page = browser.new_context(viewport=viewport, **context).new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


def close(page) -> None:
    page.context.close()


def name_of(viewport) -> str:
    return "desktop" if viewport["width"] > 1000 else "400px"


# -- 1. a restarted server whose sequence is already higher ---------------------------------------


def test_a_restarted_server_with_a_higher_sequence_starts_the_page_over(browser):
    """The old run: 5 nodes, three crashed (UNHEALTHY, crash faults). The new server on the same
    port: 3 nodes, never UNHEALTHY, with more samples and more events than the old one, so neither
    sequence goes back; only collector.started_at tells it is another run."""
    ARTIFACTS.mkdir(exist_ok=True)
    old_cluster, old = monitored(5, 50.0)
    for _ in range(3):
        step(old_cluster, old)
    for node_id in ("node3", "node4", "node5"):
        old_cluster.crash(node_id)
    for _ in range(3):
        step(old_cluster, old)
    assert old.latest()["cluster"]["health_status"] == "UNHEALTHY", f"seed={SEED}"

    new_cluster, new = monitored(3, 50.0)
    follower = next(n for n in new_cluster.node_ids if n != new_cluster.leader_id)
    for _ in range(4):  # a follower paused and woken: DEGRADED at worst, and many events
        new_cluster.pause(follower)
        for _ in range(2):
            step(new_cluster, new)
        new_cluster.resume(follower)
        for _ in range(3):
            step(new_cluster, new)
    assert new.latest()["cluster"]["health_status"] == "HEALTHY", f"seed={SEED}"
    assert all(s["cluster"]["health_status"] != "UNHEALTHY" for s in new.history(None)), f"seed={SEED}"
    assert new.version > old.version and new.events_sequence > old.events_sequence, \
        (new.version, old.version, new.events_sequence, old.events_sequence)
    assert new.latest()["collector"]["started_at"] != old.latest()["collector"]["started_at"]

    server = DashboardServer(old, port=0).start()
    port = server.port
    errors: list[str] = []
    page = new_page(browser, DESKTOP, errors)
    second = None
    try:
        page.goto(server.url + "/?refresh=1")
        expect(page.locator("#health-status")).to_have_text("UNHEALTHY", timeout=10_000)
        expect(page.locator("#history-window")).to_have_attribute("data-last-sequence", str(old.version))
        # the old run on the page: its UNHEALTHY band, its crashes, node1's history
        expect(page.locator("#tl-health .band-UNHEALTHY").first).to_be_attached()
        expect(page.locator("#event-list li[data-kind='fault']").first).to_contain_text("crash")
        with page.expect_response(lambda r: "/api/node?" in r.url and r.status == 200):
            page.locator(".raft-node[data-node-id='node1']").click()
        expect(page.locator("#node-detail")).to_have_attribute("data-rows", str(len(old.node_history("node1", 300))))

        server.stop()
        expect(page.locator("#connection-status")).to_have_text("disconnected", timeout=10_000)
        second = DashboardServer(new, port=port).start()
        expect(page.locator("#connection-status")).to_have_text("live", timeout=10_000)
        expect(page.locator("#health-status")).to_have_text("HEALTHY", timeout=10_000)
        expect(page.locator("#history-window")).to_have_attribute("data-last-sequence", str(new.version),
                                                                  timeout=10_000)
        expect(page.locator(".raft-node")).to_have_count(3)
        # nothing of the old run is left: no UNHEALTHY band, no crash, only the new run's events
        expect(page.locator("#tl-health .band-UNHEALTHY")).to_have_count(0)
        expect(page.locator("#tl-fault .tl-mark[data-fault~='crash']")).to_have_count(0)
        faults = page.locator("#event-list li[data-kind='fault']").all_inner_texts()
        assert faults and not [f for f in faults if "crash" in f], faults
        held = len(new.events())
        expect(page.locator("#events-caption")).to_have_text(f"newest first · {min(20, held)} of {held}")
        expect(page.locator("#history-window")).to_contain_text(f"{len(new.history(300))} samples")
        # node1's history is the new run's, loaded again
        detail = page.locator("#node-detail")
        expect(detail).to_be_visible()
        expect(detail).to_have_attribute("data-node-id", "node1")
        expect(detail).to_have_attribute("data-rows", str(len(new.node_history("node1", 300))), timeout=10_000)
        page.screenshot(path=str(ARTIFACTS / "dashboard-restarted-server.png"), full_page=True)
        assert errors == [], errors
    finally:
        _stop_all(page, server, second)


def _stop_all(page, *servers) -> None:
    """Stop the servers a restart test started (None: never started) and close its page."""
    for server in servers:
        if server is not None:
            server.stop()
    close(page)


def _run_at(base: float, nodes: int, crash: bool):
    """A seeded cluster whose collector stamps samples at ``base`` + simulated seconds."""
    cluster = Cluster(node_count=nodes, seed=SEED)
    Workload(cluster, rate=50.0, seed=SEED)
    collector = MetricsCollector(collection_interval=1.0, retention_period=300,
                                 wall_clock=lambda: base + cluster.now)
    collector.set_cluster(cluster)
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=10.0), f"seed={SEED}"
    for _ in range(3):
        step(cluster, collector)
    if crash:
        cluster.crash(next(n for n in cluster.node_ids if n != cluster.leader_id))
    for _ in range(3):
        step(cluster, collector)
    return collector


def test_after_a_server_restart_the_event_times_are_the_new_runs(browser):
    """The page reset its charts and events for a restarted server, but kept the old run's clock
    offset for the events it listed: their times were the old run's (08:00 here) until a new
    event came, beside a timeline and a "last updated" of the new run (12:00)."""
    old = _run_at(datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc).timestamp(), 5, crash=True)
    new = _run_at(datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc).timestamp(), 3, crash=False)
    server = DashboardServer(old, port=0).start()
    port = server.port
    errors: list[str] = []
    page = new_page(browser, DESKTOP, errors, timezone_id="UTC")
    second = None
    try:
        page.goto(server.url + "/?refresh=1")
        expect(page.locator("#event-list li").first).to_be_attached(timeout=10_000)
        expect(page.locator("#event-list li .num").first).to_have_text(re.compile(r"^08:0"), timeout=10_000)
        server.stop()
        expect(page.locator("#connection-status")).to_have_text("disconnected", timeout=10_000)
        second = DashboardServer(new, port=port).start()
        expect(page.locator("#history-window")).to_have_attribute("data-last-sequence", str(new.version),
                                                                  timeout=10_000)
        expect(page.locator("#event-list li")).to_have_count(min(20, len(new.events())), timeout=10_000)
        times = page.locator("#event-list li .num").all_inner_texts()
        assert times and all(t.startswith("12:0") for t in times), times
        assert errors == [], errors
    finally:
        _stop_all(page, server, second)


def test_a_blind_monitor_calls_the_shard_leaders_unknown_not_none(browser):
    """Cut off with node1 (it reaches 1 of 5), the monitor sees no shard's leader: the page said
    "0 / 3" in red and "none" for every shard under a health line saying it cannot tell."""
    cluster, collector = monitored_shards(3, warmup=3)
    cluster.partition(["node1", "monitor"], ["node2", "node3", "node4", "node5"])
    for _ in range(3):
        step(cluster, collector)
    latest = collector.latest()
    assert any(r.startswith("monitor_reach:") for r in latest["cluster"]["health_reasons"]), f"seed={SEED}"
    assert all(doc["leader"] is None for doc in latest["shards"]), f"seed={SEED}"
    server = DashboardServer(collector, port=0).start()
    errors: list[str] = []
    page = new_page(browser, DESKTOP, errors)
    try:
        page.goto(server.url + "/?refresh=1")
        page.locator("#shards-body tr[data-shard]").nth(2).wait_for(timeout=10_000)
        expect(page.locator("#leader")).to_have_text("unknown")
        assert "bad" not in (page.locator("#leader").get_attribute("class") or "")
        expect(page.locator("#shards-body .leader-cell")).to_have_text(["unknown"] * 3)
        expect(page.locator("#shards-caption")).to_contain_text("too few nodes to tell")
        assert errors == [], errors
    finally:
        server.stop()
        close(page)


def _check_page(browser, collector, check) -> None:
    """Serve ``collector``, open the page at desktop width, run ``check(page)``; no script error."""
    server = DashboardServer(collector, port=0).start()
    errors: list[str] = []
    page = new_page(browser, DESKTOP, errors)
    try:
        page.goto(server.url + "/?refresh=1")
        check(page)
        assert errors == [], errors
    finally:
        server.stop()
        close(page)


def test_a_quorum_lost_on_evidence_has_no_leader_and_a_firing_alert_is_no_all_clear(browser):
    """Three of five crashed (they refuse the poll): the API said no_leader and quorum_lost, and
    the Leader card "unknown", as for a monitor that cannot see; every shard's Leader cell too.
    And a HEALTHY sample with high_latency firing said "all checks passing"."""
    def three_crashed(cluster, collector):
        for node_id in ("node3", "node4", "node5"):
            cluster.crash(node_id)
        for _ in range(3):
            step(cluster, collector)
        assert "quorum_lost" in collector.latest()["cluster"]["health_reasons"], f"seed={SEED}"
        assert collector.latest()["cluster"]["nodes_reached"] == 2, f"seed={SEED}"
        return collector

    def sharded(page):
        page.locator("#shards-body tr[data-shard]").nth(2).wait_for(timeout=10_000)
        expect(page.locator("#leader")).to_have_text("0 / 3")  # shards led, as when the monitor sees
        expect(page.locator("#shards-body .leader-cell")).to_have_text(["none"] * 3)
        expect(page.locator("#shards-caption")).not_to_contain_text("too few nodes")

    _check_page(browser, three_crashed(*monitored_shards(3, warmup=3)), sharded)
    _check_page(browser, three_crashed(*monitored(5, 50.0)),
                lambda page: expect(page.locator("#leader")).to_have_text("none", timeout=10_000))
    calm, watcher = monitored(3, 50.0)
    watcher.alert_thresholds = {**watcher.alert_thresholds, "max_latency_ms": 0.001}
    for _ in range(3):
        step(calm, watcher)
    latest = watcher.latest()
    assert latest["cluster"]["health_status"] == "HEALTHY", f"seed={SEED}"
    assert [a["name"] for a in latest["alerts"]] == ["high_latency"], f"seed={SEED}: {latest['alerts']}"
    _check_page(browser, watcher, lambda page: expect(page.locator("#health-reasons")).to_have_text(
        "health checks pass; 1 alert firing", timeout=10_000))


def test_stale_card_labels_stay_on_one_line(browser):
    """A stopped server makes the page stale; its tag beside a card's label wrapped "CONSENSUS
    LATENCY · STALE" at 1440 px, so that card's value sat lower than the others'."""
    cluster, collector = monitored(5, 50.0)
    for _ in range(3):
        step(cluster, collector)
    errors: list[str] = []
    for width in (1440, 1280, 1100):
        server = DashboardServer(collector, port=0).start()
        page = new_page(browser, {"width": width, "height": 900}, errors)
        try:
            page.goto(server.url + "/?refresh=1")
            expect(page.locator("#health-status")).to_have_text("HEALTHY", timeout=10_000)
            server.stop()
            expect(page.locator("main")).to_have_class(re.compile(r"\bstale\b"), timeout=15_000)
            tops = page.locator(".overview .card .card-value").evaluate_all(  # within each card
                "els => els.map(e => Math.round(e.getBoundingClientRect().top"
                " - e.closest('.card').getBoundingClientRect().top))")
            assert len(set(tops)) == 1, (width, tops)
            assert "stale" in page.locator(".overview .card-label").first.evaluate(
                "e => getComputedStyle(e, '::before').content").lower(), width
        finally:
            server.stop()
            close(page)
    assert errors == [], errors


# -- 2. "last updated" is the sample's timestamp ---------------------------------------------------


def test_last_updated_is_the_samples_own_time_not_the_fetch(browser):
    """Samples stamped 05:06:07 UTC (a fixed clock, far from now) on a 30 s interval: the header
    says 05:06:07 however often the page asks, and the next sample's time once it comes."""
    stamp = [datetime(2021, 3, 4, 5, 6, 7, tzinfo=timezone.utc).timestamp()]
    cluster = Cluster(node_count=3, seed=SEED)
    Workload(cluster, rate=20.0, seed=SEED)
    collector = MetricsCollector(collection_interval=30.0, retention_period=300, wall_clock=lambda: stamp[0])
    collector.set_cluster(cluster)
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=10.0), f"seed={SEED}"
    step(cluster, collector)
    server = DashboardServer(collector, port=0).start()
    errors: list[str] = []
    page = new_page(browser, DESKTOP, errors, timezone_id="UTC")
    try:
        page.goto(server.url + "/?refresh=1")
        expect(page.locator("#connection-status")).to_have_text("live", timeout=10_000)
        expect(page.locator("#last-updated")).to_have_text("05:06:07")
        for _ in range(2):  # refreshes without a new sample: still the sample's time
            with page.expect_response(lambda r: "/api/summary" in r.url, timeout=10_000):
                pass
        expect(page.locator("#last-updated")).to_have_text("05:06:07")
        stamp[0] += 30.0
        step(cluster, collector, 30.0)
        expect(page.locator("#last-updated")).to_have_text("05:06:37", timeout=10_000)
        assert errors == [], errors
    finally:
        server.stop()
        close(page)


# -- 3-5. timeline labels, fault texts ------------------------------------------------------------


def busy_cluster():
    """Many faults and elections within a minute: crash and restart, the leader crashed, a node
    isolated (a partition of two groups), three nodes crashed at one instant, then restarted."""
    cluster, collector = monitored(5, 50.0)
    for _ in range(3):
        step(cluster, collector)
    leader = cluster.leader_id
    others = [n for n in cluster.node_ids if n != leader]
    cluster.crash(others[0])
    step(cluster, collector, 0.5)
    cluster.restart(others[0])
    step(cluster, collector, 0.5)
    cluster.crash(leader)
    for _ in range(4):
        step(cluster, collector, 0.5)
    cluster.restart(leader)
    step(cluster, collector, 0.5)
    isolated = others[1]
    cluster.isolate(isolated)
    for _ in range(2):
        step(cluster, collector, 0.5)
    cluster.heal()
    for _ in range(2):
        step(cluster, collector, 0.5)
    leader = cluster.leader_id or leader
    trio = sorted([n for n in cluster.node_ids if n != leader][:3], key=lambda n: int(n[4:]))
    for node_id in trio:
        cluster.crash(node_id)
    for _ in range(20):
        step(cluster, collector, 0.5)
    for node_id in trio:
        cluster.restart(node_id)
    for _ in range(20):
        step(cluster, collector, 0.5)
    events = collector.events()
    assert len([e for e in events if e["kind"] == "leader"]) >= 3, f"seed={SEED}"
    assert len([e for e in events if e["kind"] == "fault"]) >= 12, f"seed={SEED}"
    return cluster, collector, isolated, trio


LANE_BOXES = """lane => Array.from(lane.querySelectorAll('.tl-mark')).map(m => {
    const r = m.getBoundingClientRect();
    return {text: m.textContent, left: r.left, right: r.right, flip: m.classList.contains('flip'), title: m.title,
            cut: m.scrollWidth > m.clientWidth + 1};
})"""


def lane_problems(page, lane_id: str) -> tuple[list[str], int]:
    """Labels on one lane that cover another label or another mark's line, or stick out of the
    lane; and how many labels there are."""
    lane = page.locator(lane_id)
    box = lane.bounding_box()
    marks = lane.evaluate(LANE_BOXES)
    labelled = [m for m in marks if m["text"]]
    problems = []
    for m in marks:
        m["line"] = m["right"] - 1 if m["flip"] else m["left"] + 1  # the 2 px line's middle
        if not m["title"]:
            problems.append(f"no title on {m}")
    for i, a in enumerate(labelled):
        if a["left"] < box["x"] - 0.5 or a["right"] > box["x"] + box["width"] + 0.5 or a["cut"]:
            problems.append(f"{a['text']!r} out of the lane or cut")
        for b in labelled[i + 1:]:
            if a["left"] < b["right"] - 0.5 and b["left"] < a["right"] - 0.5:
                problems.append(f"{a['text']!r} overlaps {b['text']!r}")
        for m in marks:
            if m is not a and a["left"] + 0.5 < m["line"] < a["right"] - 0.5:
                problems.append(f"{a['text']!r} covers the line of {m['title']!r}")
    return problems, len(labelled)


def test_timeline_labels_never_cover_each_other_at_any_width(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    cluster, collector, _isolated, _trio = busy_cluster()
    server = DashboardServer(collector, port=0).start()
    found: dict[str, list[str]] = {}
    try:
        for viewport in (DESKTOP, NARROW):
            errors: list[str] = []
            page = new_page(browser, viewport, errors)
            try:
                page.goto(server.url + "/?refresh=1")
                expect(page.locator("#events-caption")).to_contain_text(f"of {len(collector.events())}", timeout=10_000)
                expect(page.locator("#tl-fault-row")).to_be_visible()
                leaders = len([e for e in collector.events() if e["kind"] == "leader"])
                expect(page.locator("#tl-leader .tl-mark")).to_have_count(leaders)
                expect(page.locator("#tl-fault .tl-mark").first).to_be_attached()
                page.locator("#timeline").scroll_into_view_if_needed()
                page.locator("#timeline").screenshot(path=str(ARTIFACTS / f"dashboard-timeline-{name_of(viewport)}.png"))
                for lane in ("#tl-leader", "#tl-fault"):
                    problems, labels = lane_problems(page, lane)
                    if problems:
                        found[f"{name_of(viewport)} {lane}"] = problems
                    assert labels >= 1, (name_of(viewport), lane)  # thinned, not emptied
                assert horizontal_overflow(page) <= 0
                assert errors == [], errors
            finally:
                close(page)
    finally:
        server.stop()
    assert found == {}, found


def test_a_partition_keeps_its_groups(browser):
    cluster, collector = monitored(5, 50.0)
    for _ in range(3):
        step(cluster, collector)
    isolated = cluster.leader_id
    cluster.isolate(isolated)  # partition([leader], [the others])
    for _ in range(3):
        step(cluster, collector)
    cluster.heal()
    step(cluster, collector)
    assert len(collector.events()) < 20, f"seed={SEED}"  # all of them listed
    rest = ",".join(n for n in cluster.node_ids if n != isolated)
    server = DashboardServer(collector, port=0).start()
    errors: list[str] = []
    page = new_page(browser, DESKTOP, errors)
    try:
        page.goto(server.url + "/?refresh=1")
        expect(page.locator("#events-caption")).to_contain_text(f"of {len(collector.events())}", timeout=10_000)
        # in the list and in its mark's tooltip: "partition node2 | node1,node3,node4,node5"
        partition = f"partition {isolated} | {rest}"
        item = page.locator("#event-list li[data-kind='fault']", has_text="partition")
        expect(item).to_have_count(1)
        expect(item.locator(".ev-text")).to_have_text(f"fault: {partition}")
        mark = page.locator("#tl-fault .tl-mark[data-fault='partition']")
        expect(mark).to_have_count(1)
        assert mark.get_attribute("title").endswith(f"fault: {partition}"), mark.get_attribute("title")
        assert errors == [], errors
    finally:
        server.stop()
        close(page)


def test_faults_at_one_instant_are_one_mark_naming_every_node(browser):
    cluster, collector, _isolated, trio = busy_cluster()
    faults = [e for e in collector.events() if e["kind"] == "fault"]
    instants = len({round(e["t"], 6) for e in faults})
    assert instants == len(faults) - 4, f"seed={SEED}"  # three crashes at once, three restarts at once
    server = DashboardServer(collector, port=0).start()
    errors: list[str] = []
    page = new_page(browser, DESKTOP, errors)
    try:
        page.goto(server.url + "/?refresh=1")
        expect(page.locator("#events-caption")).to_contain_text(f"of {len(collector.events())}", timeout=10_000)
        expect(page.locator("#tl-fault .tl-mark")).to_have_count(instants)
        # one mark naming every node, in its label (room for it at 1440 px) and its tooltip
        for kind in ("crash", "restart"):
            together = page.locator(f"#tl-fault .tl-mark[data-fault='{kind}'][data-count='3']")
            expect(together).to_have_count(1)
            assert together.get_attribute("data-nodes") == ",".join(trio)
            assert together.get_attribute("title").endswith(f"fault: {kind} {','.join(trio)}")
            expect(together).to_have_text(f"{kind} {','.join(trio)}")  # room for it at 1440 px
        assert errors == [], errors
    finally:
        server.stop()
        close(page)


# -- 6. the health reasons wrap -------------------------------------------------------------------


def test_many_shards_without_a_leader_are_one_reason_and_the_cards_keep_their_height(browser):
    """A quorum loss in 16 shards gave 35 reasons ('shard1:no_leader; shard1:quorum_lost; ...'),
    all in the Health card, which stretched the whole row of cards to about 600 px."""
    cluster, collector = monitored_shards(16)
    for node_id in cluster.node_ids[:3]:
        cluster.crash(node_id)
    for _ in range(3):
        step(cluster, collector)
    reasons = collector.latest()["cluster"]["health_reasons"]
    assert sum(r.startswith("shard") for r in reasons) >= 20, reasons
    server = DashboardServer(collector, port=0).start()
    errors: list[str] = []
    page = new_page(browser, DESKTOP, errors)
    try:
        page.goto(server.url + "/?refresh=1")
        note = page.locator("#health-reasons")
        expect(note).to_contain_text("shards 1-15: no_leader", timeout=10_000)
        assert note.get_attribute("title").count("\n") == len(reasons) - 1  # every one, in the tooltip
        cards = page.locator(".overview .card")
        heights = [cards.nth(i).bounding_box()["height"] for i in range(cards.count())]
        assert max(heights) < 300, heights
        assert errors == [], errors
    finally:
        server.stop()
        close(page)



def test_health_reasons_are_whole_on_desktop(browser):
    cluster, collector = monitored(5, 100.0)
    for _ in range(10):
        step(cluster, collector)
    for node_id in cluster.node_ids[:3]:
        cluster.crash(node_id)
    for _ in range(4):
        step(cluster, collector)
    reasons = collector.latest()["cluster"]["health_reasons"]
    assert len("; ".join(reasons)) > 40, reasons  # longer than one line of the card
    server = DashboardServer(collector, port=0).start()
    try:
        for viewport in (DESKTOP, NARROW):
            errors: list[str] = []
            page = new_page(browser, viewport, errors)
            try:
                page.goto(server.url + "/?refresh=1")
                note = page.locator("#health-reasons")
                expect(note).to_have_text("; ".join(reasons), timeout=10_000)
                fits = note.evaluate("el => el.scrollWidth <= el.clientWidth + 1 && el.scrollHeight <= el.clientHeight + 1")
                assert fits, name_of(viewport)
                assert note.evaluate("el => getComputedStyle(el).textOverflow") != "ellipsis"
                card, box = page.locator("#health-card").bounding_box(), note.bounding_box()
                assert box["y"] + box["height"] <= card["y"] + card["height"]
                assert box["x"] + box["width"] <= card["x"] + card["width"]
                page.locator(".overview").screenshot(path=str(ARTIFACTS / f"dashboard-health-reasons-{name_of(viewport)}.png"))
                assert errors == [], errors
            finally:
                close(page)
    finally:
        server.stop()


WIDTHS = (1920, 1440, 1280, 1200, 1101, 1100, 1000, 900, 760, 641, 640, 500, 400, 360)


def broken_over_widths(browser, texts: list[tuple[str, str]], screenshot: str) -> tuple[list, list[str]]:
    """Set each (selector, text) in the overview at every width of WIDTHS; the ones that do not
    read on one line, or are cut, as (width, selector, text, shape); and the page's errors."""
    cluster, collector = monitored(3, 50.0)
    for _ in range(3):
        step(cluster, collector)
    server = DashboardServer(collector, port=0).start()
    try:
        errors: list[str] = []
        page = new_page(browser, DESKTOP, errors)
        try:
            page.goto(server.url + "/?refresh=3600")  # nothing redraws the texts set below
            expect(page.locator("#health-status")).to_have_text("HEALTHY", timeout=10_000)
            broken = []
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 900})
                for selector, text in texts:
                    shape = page.locator(selector).evaluate(
                        "(el, text) => { el.textContent = text;"
                        " const line = parseFloat(getComputedStyle(el).lineHeight);"
                        " return {height: el.getBoundingClientRect().height, line: line,"
                        " size: getComputedStyle(el).fontSize, cut: el.scrollWidth > el.clientWidth + 1}; }", text)
                    if shape["cut"] or shape["height"] > 1.5 * shape["line"]:
                        broken.append((width, selector, text, shape))
            page.set_viewport_size({"width": 1280, "height": 900})
            page.locator(".overview").screenshot(path=str(ARTIFACTS / screenshot))
            return broken, errors
        finally:
            close(page)
    finally:
        server.stop()


def test_the_health_word_stays_whole_at_every_width(browser):
    """UNHEALTHY and DEGRADED, the card's one word, read whole on one line at every width and
    column layout (a 1280 px desktop showed "DEGRADE" over "D"); never cut either."""
    broken, errors = broken_over_widths(browser, [("#health-status", "UNHEALTHY"), ("#health-status", "DEGRADED")],
                                        "dashboard-health-word-1280.png")
    assert broken == [], broken
    assert errors == [], errors


def test_every_card_value_stays_on_one_line_at_every_width(browser):
    """The overview's values (leader, term, healthy n/N, throughput, latency) read on one line
    at every width: at 1280 px "100.0 ops/s" broke over two. Wide figures are set on purpose."""
    values = [("#leader", "node12"), ("#term", "1,234"), ("#healthy-nodes", "51 / 51"),
              ("#throughput", "12,345.6 ops/s"), ("#latency", "1,366.7 ms")]
    broken, errors = broken_over_widths(browser, values, "dashboard-card-values-1280.png")
    assert broken == [], broken
    assert errors == [], errors


# -- 7. all-zero charts ---------------------------------------------------------------------------

# Records the y-axis labels each chart draws (right-aligned texts since its last clear).
AXIS_RECORDER = """(() => {
  const drawn = window.__axisLabels = {};
  const proto = CanvasRenderingContext2D.prototype;
  const clear = proto.clearRect, fill = proto.fillText;
  proto.clearRect = function (x, y) {
    if (this.canvas.id && x === 0 && y === 0) drawn[this.canvas.id] = [];
    return clear.apply(this, arguments);
  };
  proto.fillText = function (text, x, y) {
    const list = drawn[this.canvas.id];
    if (list && this.textAlign === 'right') list.push({text: String(text), x: x, y: y});
    return fill.apply(this, arguments);
  };
})();"""


def axis_labels(page, canvas: str) -> list[dict]:
    return page.evaluate("id => (window.__axisLabels || {})[id] || []", canvas)


def test_all_zero_charts_get_a_clean_axis(browser):
    """No load: throughput 0 in every sample, no latency at all, every follower's match lag 0."""
    cluster = Cluster(node_count=3, seed=SEED)
    collector = MetricsCollector(collection_interval=1.0, retention_period=300)
    collector.set_cluster(cluster)
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=10.0), f"seed={SEED}"
    for _ in range(8):
        step(cluster, collector)
    history = collector.history(None)
    assert all(s["performance"]["throughput_ops"] == 0 for s in history), f"seed={SEED}"
    follower = next(n for n in cluster.node_ids if n != cluster.leader_id)
    assert all(r["replication_lag"] == 0 for r in collector.node_history(follower, 300)), f"seed={SEED}"
    server = DashboardServer(collector, port=0).start()
    errors: list[str] = []
    page = new_page(browser, DESKTOP, errors)
    page.add_init_script(AXIS_RECORDER)
    clean = ["0", "0.25", "0.5", "0.75", "1"]
    try:
        page.goto(server.url + "/?refresh=1")
        expect(page.locator("#history-window")).to_have_attribute("data-last-sequence", str(collector.version),
                                                                  timeout=10_000)
        with page.expect_response(lambda r: "/api/node?" in r.url and r.status == 200):
            page.locator(f".raft-node[data-node-id='{follower}']").click()
        expect(page.locator("#node-detail")).to_have_attribute("data-rows", str(len(collector.node_history(follower, 300))))
        expect(page.locator("#node-chart-lag-last")).to_have_text("0")
        for canvas in ("chart-throughput", "chart-latency", "node-chart-lag"):
            labels = axis_labels(page, canvas)
            assert [label["text"] for label in labels] == clean, (canvas, labels)
            # bottom to top, evenly spaced, the top one whole inside the canvas (11 px text, centred)
            ys = [label["y"] for label in labels]
            assert ys == sorted(ys, reverse=True) and min(ys) >= 6, (canvas, ys)
        page.locator("#history-charts").screenshot(path=str(ARTIFACTS / "dashboard-zero-charts.png"))
        assert errors == [], errors
    finally:
        server.stop()
        close(page)


def test_a_term_chart_labels_every_gridline_with_a_whole_term(browser):
    """Terms up to 6: the axis went to a "nice" 10 in quarters (0, 2.5, 5, 7.5, 10) and, being a
    chart of whole numbers, labelled only 0, 5 and 10. Now every gridline is a whole term."""
    cluster = Cluster(node_count=3, seed=SEED)
    collector = MetricsCollector(collection_interval=1.0, retention_period=300)
    collector.set_cluster(cluster)
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=10.0), f"seed={SEED}"
    step(cluster, collector)
    while collector.latest()["cluster"]["current_term"] < 6:
        leader = cluster.leader_id
        cluster.crash(leader)
        step(cluster, collector, 2.0)
        cluster.restart(leader)
        assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=10.0), f"seed={SEED}"
        step(cluster, collector)
        assert collector.version < 60, f"seed={SEED}: terms do not rise"
    top_term = max(s["cluster"]["current_term"] for s in collector.history(None))
    server = DashboardServer(collector, port=0).start()
    errors: list[str] = []
    page = new_page(browser, DESKTOP, errors)
    page.add_init_script(AXIS_RECORDER)
    try:
        page.goto(server.url + "/?refresh=1")
        expect(page.locator("#history-window")).to_have_attribute("data-last-sequence", str(collector.version),
                                                                  timeout=10_000)
        labels = [int(label["text"]) for label in axis_labels(page, "chart-term")]
        assert len(labels) >= 4, labels
        assert labels[0] == 0 and labels[-1] >= top_term and labels[-1] < top_term + 4, (labels, top_term)
        steps = {b - a for a, b in zip(labels, labels[1:])}
        assert len(steps) == 1, labels  # evenly spaced whole terms
        assert errors == [], errors
    finally:
        server.stop()
        close(page)


# -- 8, 9. shard cards at 400 px, "Leads" ----------------------------------------------------------

# Per table cell shown as a card: its label (the ::before of data-label) laid out alone in the cell;
# lines > 1 is a word broken in two, wider than the cell is a label sticking out.
LABEL_FIT = """cells => cells.map(td => {
    const before = getComputedStyle(td, '::before');
    if (before.content === 'none' || !td.dataset.label) return null;
    const probe = document.createElement('span');
    probe.style.display = 'block';
    for (const k of ['fontFamily', 'fontSize', 'fontWeight', 'letterSpacing', 'textTransform', 'lineHeight'])
      probe.style[k] = before[k];
    probe.textContent = td.dataset.label;
    td.appendChild(probe);
    const out = {label: td.dataset.label, lines: probe.getBoundingClientRect().height / parseFloat(before.lineHeight),
                 wide: probe.scrollWidth > td.clientWidth + 1};
    probe.remove();
    return out;
}).filter(x => x)"""


def test_shard_cards_keep_their_labels_whole_and_leads_names_the_shards(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    cluster, collector = monitored_shards(4, warmup=5)
    # one node leads two shards, one leads none: crash shard 1's leader and let a leader take it over
    victim = cluster.shard_leaders()[1]
    cluster.crash(victim)
    assert cluster.run_until(lambda: None not in cluster.shard_leaders().values(), timeout=10.0), f"seed={SEED}"
    step(cluster, collector, 0.2)
    leaders = {s["shard"]: s["leader"] for s in collector.latest()["shards"]}
    led = {n: sorted(g for g, leader in leaders.items() if leader == n) for n in cluster.node_ids}
    assert any(len(g) > 1 for g in led.values()) and led[victim] == [], f"seed={SEED} {leaders}"

    def expected(groups: list[int]) -> str:
        if not groups:
            return "—"
        return ("shard " if len(groups) == 1 else "shards ") + ", ".join(str(g) for g in groups)

    server = DashboardServer(collector, port=0).start()
    try:
        for viewport in (NARROW, DESKTOP):
            errors: list[str] = []
            page = new_page(browser, viewport, errors)
            try:
                page.goto(server.url + "/?refresh=1")
                page.locator("#shards-body tr[data-shard]").nth(3).wait_for(timeout=10_000)
                page.locator("#nodes-body tr[data-node-id]").nth(4).wait_for(timeout=10_000)
                if viewport is NARROW:
                    assert page.locator("#shards-table thead").is_hidden()  # cards
                    page.locator("#shards-panel").screenshot(path=str(ARTIFACTS / "dashboard-shards-400px.png"))
                    for table in ("#shards-body td", "#nodes-body td"):
                        fits = page.locator(table).evaluate_all(LABEL_FIT)
                        assert fits and all(f["lines"] < 1.5 and not f["wide"] for f in fits), \
                            [f for f in fits if f["lines"] >= 1.5 or f["wide"]]
                    assert horizontal_overflow(page) <= 0
                for node_id, groups in led.items():
                    cell = page.locator(f"#nodes-table tr[data-node-id='{node_id}'] td[data-col='leads']")
                    expect(cell).to_have_text(expected(groups), timeout=10_000)
                page.locator("#nodes-table").screenshot(path=str(ARTIFACTS / f"dashboard-leads-{name_of(viewport)}.png"))
                assert errors == [], errors
            finally:
                close(page)
    finally:
        server.stop()


# -- 11. one sample, one order, one leader change ---------------------------------------------------


def test_counts_of_one_read_in_the_singular(browser):
    cluster = Cluster(node_count=3, seed=SEED)
    collector = MetricsCollector(collection_interval=1.0, retention_period=300)
    collector.set_cluster(cluster)
    assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=10.0), f"seed={SEED}"
    cluster.submit({"symbol": "AAPL", "side": "buy", "price": 100, "qty": 1})
    step(cluster, collector)
    perf = collector.latest()["performance"]
    assert (perf["total_orders"], perf["total_trades"]) == (1, 0), perf
    server = DashboardServer(collector, port=0).start()
    errors: list[str] = []
    page = new_page(browser, DESKTOP, errors)
    try:
        page.goto(server.url + "/?refresh=1")
        expect(page.locator("#history-window")).to_have_text("last 60 s · 1 sample", timeout=10_000)
        expect(page.locator("#orders")).to_have_text("1 order · 0 trades")
        expect(page.locator("#leader-changes")).to_have_text("0 leader changes")
        follower = next(n for n in cluster.node_ids if n != cluster.leader_id)
        with page.expect_response(lambda r: "/api/node?" in r.url and r.status == 200):
            page.locator(f".raft-node[data-node-id='{follower}']").click()
        expect(page.locator("#node-detail-caption")).to_contain_text("· 1 sample ·")

        # a matching sell (two orders, one trade) and the leader crashed: one leader change
        cluster.submit({"symbol": "AAPL", "side": "sell", "price": 100, "qty": 1})
        step(cluster, collector)
        old_leader = cluster.leader_id
        cluster.crash(old_leader)
        assert cluster.run_until(lambda: cluster.leader_id not in (None, old_leader), timeout=10.0), f"seed={SEED}"
        step(cluster, collector)
        doc = collector.latest()
        assert doc["cluster"]["leader_changes"] == 1 and doc["performance"]["total_trades"] == 1, doc
        expect(page.locator("#leader-changes")).to_have_text("1 leader change", timeout=10_000)
        expect(page.locator("#orders")).to_have_text("2 orders · 1 trade")
        expect(page.locator("#history-window")).to_have_text("last 60 s · 3 samples")
        assert errors == [], errors
    finally:
        server.stop()
        close(page)


# -- a source that reports no state digest ---------------------------------------------------------


class _DigestlessSource:
    """Three members that answer as etcd's do: indexes and roles, no state digest."""

    name = "digestless"

    def __init__(self) -> None:
        self.now = 0.0

    def members(self) -> list[str]:
        return ["m1", "m2", "m3"]

    def close(self) -> None:
        pass

    def poll(self, since=None):
        from raftctl.core.source import ClientView, NodeAnswer, Poll

        self.now += 1.0
        answers = {}
        for nid in self.members():
            report = {"state": "LEADER" if nid == "m1" else "FOLLOWER", "term": 2, "leader_id": "m1",
                      "commit_index": 40, "last_applied": 40, "log_length": 40, "peers_connected": 2}
            if nid == "m1":
                report["match_index"] = {"m2": 40, "m3": 40}
                report["last_contact_ms"] = {"m2": 0.0, "m3": 0.0}
            answers[nid] = NodeAnswer(nid, report)
        return Poll(self.now, answers, ClientView(proposals_committed=40, latencies_ms=[1.5]))


def test_consensus_is_not_called_aligned_when_no_node_reports_a_digest(browser):
    """On etcd the card said "consensus aligned" though no digest was ever compared, and showed its
    one probe read as p50 and p99."""
    collector = MetricsCollector(collection_interval=1.0, retention_period=300)
    collector.set_source(_DigestlessSource())
    for _ in range(2):
        collector.collect()
    assert collector.latest()["cluster"]["consensus_aligned"] is True  # no divergence seen: the contract
    def unchecked(page):
        expect(page.locator("#aligned")).to_have_text("consensus unchecked", timeout=10_000)
        expect(page.locator("#aligned")).to_have_attribute("title", re.compile("no node reports a state digest"))
        # and one probe read per interval has no percentiles ("p50 1.5 ms · p99 1.5 ms" before)
        expect(page.locator("#latency-detail")).to_have_text("1 measurement")

    _check_page(browser, collector, unchecked)
    cluster, compared = monitored(3, 50.0)
    for _ in range(2):
        step(cluster, compared)
    def aligned(page):
        expect(page.locator("#aligned")).to_have_text("consensus aligned", timeout=10_000)
        expect(page.locator("#latency-detail")).to_have_text(re.compile(r"^p50 [\d.]+ ms · p99 [\d.]+ ms$"))

    _check_page(browser, compared, aligned)
