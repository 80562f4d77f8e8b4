"""Headless Chromium loads the dashboard, sees the nodes, a fault's alert and a lost server.

Needs Debian's chromium (scripts/test.sh installs it). Never `playwright install`: the system
browser is driven through Playwright's executable_path.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from raftctl import Cluster, DashboardServer, MetricsCollector, Workload

SEED = 2024
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
pytestmark = pytest.mark.browser


def monitored(nodes: int, rate: float, leader: bool = True):
    """A seeded simulated cluster with a workload and a collector on it (once it has a leader)."""
    cluster = Cluster(node_count=nodes, seed=SEED)
    Workload(cluster, rate=rate, seed=SEED)
    collector = MetricsCollector(collection_interval=1.0, retention_period=300)
    collector.set_cluster(cluster)
    if leader:
        assert cluster.run_until(lambda: cluster.leader_id is not None, timeout=10.0), f"seed={SEED}"
    return cluster, collector


def monitored_shards(shards: int = 4, warmup: int = 10):
    """A seeded 5-node cluster of ``shards`` Raft groups with a workload, every group led, and a
    collector that has taken ``warmup`` samples."""
    from raftctl.commands._common import sharded_symbols

    symbols, shard_map = sharded_symbols(shards)
    cluster = Cluster(node_count=5, seed=SEED, shards=shards, shard_map=shard_map)
    Workload(cluster, rate=100.0, seed=SEED, symbols=symbols)
    collector = MetricsCollector(collection_interval=1.0, retention_period=300)
    collector.set_cluster(cluster)
    assert cluster.run_until(lambda: None not in cluster.shard_leaders().values(), timeout=10.0), f"seed={SEED}"
    for _ in range(warmup):
        step(cluster, collector)
    return cluster, collector


def desktop_page(browser, errors: list[str]):
    """A 1400x1000 page whose script errors land in ``errors``."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page


def step(cluster, collector, seconds=1.0):
    cluster.run_for(seconds)
    collector.collect()


def test_dashboard_shows_nodes_alerts_and_disconnection(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    cluster, collector = monitored(5, 100.0)
    for _ in range(30):
        step(cluster, collector)
    leader = cluster.leader_id

    server = DashboardServer(collector, port=0).start()
    errors: list[str] = []
    page = desktop_page(browser, errors)
    try:
        page.goto(server.url + "/?refresh=1")
        rows = page.locator("#nodes-table tbody tr[data-node-id]")
        rows.nth(4).wait_for(timeout=10_000)
        assert rows.count() == 5
        assert sorted(rows.evaluate_all("rows => rows.map(r => r.dataset.nodeId)")) == sorted(cluster.node_ids)
        leader_row = page.locator("#nodes-table tr.leader")
        assert leader_row.count() == 1
        assert leader_row.get_attribute("data-node-id") == leader
        assert "LEADER" in leader_row.inner_text()
        expect(page.locator("#health-status")).to_have_text("HEALTHY", timeout=10_000)
        assert "live" in page.locator("#connection-status").inner_text()
        assert page.locator("#alerts .alert.firing").count() == 0
        page.screenshot(path=str(ARTIFACTS / "dashboard-healthy.png"), full_page=True)
        assert not page.locator("#reach-banner").is_visible()

        # a paused leader: DOWN with its reason, then, woken, a stale leader (amber, not the leader row)
        cluster.pause(leader)
        for _ in range(3):
            step(cluster, collector)
        paused = page.locator(f"#nodes-table tr[data-node-id='{leader}']")
        expect(paused.locator(".state")).to_have_text("DOWN (timeout)", timeout=10_000)
        assert paused.get_attribute("data-down-reason") == "timeout"
        # the Raft view: greyed, with when it was last seen and its last known values marked so
        raft_row = page.locator(f".raft-node[data-node-id='{leader}']")
        expect(raft_row).to_have_attribute("data-state", "DOWN")
        expect(raft_row.locator(".rn-facts")).to_contain_text(re.compile(r"last seen \d\d:\d\d:\d\d \(\d+ s ago\)"))
        expect(raft_row.locator(".rn-log-note")).to_contain_text("last known:")
        assert raft_row.evaluate("el => getComputedStyle(el).filter") == "grayscale(1)"
        assert collector.latest()["cluster"]["leader_node"] not in (None, leader), f"seed={SEED}"
        cluster.resume(leader)
        collector.collect()  # at the instant it wakes, before it hears the new term
        assert collector.latest()["nodes"][leader]["state"] == "STALE_LEADER", f"seed={SEED}"
        expect(paused.locator(".state")).to_have_text("STALE LEADER", timeout=10_000)
        assert paused.get_attribute("data-state") == "STALE_LEADER"
        assert "leader" not in (paused.get_attribute("class") or "").split()
        assert page.locator("#nodes-table tr.leader").count() == 1
        # set apart in the Raft view too: dashed amber, its term against the cluster's, never the leader's row
        expect(raft_row).to_have_attribute("data-state", "STALE_LEADER")
        assert "is-leader" not in (raft_row.get_attribute("class") or "").split()
        assert page.locator(".raft-node.is-leader").count() == 1
        assert raft_row.evaluate("el => getComputedStyle(el).borderTopStyle") == "dashed"
        expect(raft_row.locator(".rn-facts")).to_contain_text("thinks it leads term")
        assert page.locator("#nodes-table .state-STALE_LEADER").evaluate(
            "el => getComputedStyle(el).color") != page.locator("#nodes-table .state-LEADER").evaluate(
            "el => getComputedStyle(el).color")
        page.screenshot(path=str(ARTIFACTS / "dashboard-stale-leader.png"), full_page=True)
        for _ in range(3):
            step(cluster, collector)
        expect(paused.locator(".state")).to_have_text("FOLLOWER", timeout=10_000)

        for node_id in cluster.node_ids[:3]:
            cluster.crash(node_id)
        for _ in range(4):
            step(cluster, collector)
        firing = page.locator("#alerts .alert.firing[data-alert='quorum_loss']")
        firing.wait_for(timeout=10_000)
        expect(page.locator("#health-status")).to_have_text("UNHEALTHY", timeout=10_000)
        assert page.locator("#nodes-table tr.down").count() == 3
        assert set(page.locator("#nodes-table tr.down .state").all_inner_texts()) == {"DOWN (refused)"}
        expect(page.locator("#reach-banner")).to_be_visible()
        expect(page.locator("#reach-detail")).to_have_text("Monitor reaches 2/5 nodes")
        expect(page.locator("#quorum")).to_have_text("quorum lost")  # three refused: evidence
        page.screenshot(path=str(ARTIFACTS / "dashboard-quorum-loss.png"), full_page=True)

        server.stop()
        # Locator waits, not wait_for_function: the page's CSP forbids eval, as it should.
        expect(page.locator("#connection-status")).to_contain_text("disconnected", timeout=10_000)
        assert page.locator("#disconnected-banner").is_visible()
        page.screenshot(path=str(ARTIFACTS / "dashboard-disconnected.png"), full_page=True)
        assert errors == [], errors
    finally:
        server.stop()
        page.close()


def test_dashboard_shows_shards_and_the_shards_each_node_leads(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    cluster, collector = monitored_shards(4, warmup=10)
    leaders = cluster.shard_leaders()

    server = DashboardServer(collector, port=0).start()
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(server.url + "/?refresh=1")
        rows = page.locator("#shards-body tr[data-shard]")
        rows.nth(3).wait_for(timeout=10_000)
        assert page.locator("#shards-panel").is_visible()
        for shard, leader in leaders.items():
            row = page.locator(f"#shards-body tr[data-shard='{shard}']")
            assert row.locator("td").nth(1).inner_text() == leader
            assert row.get_attribute("data-health") == "HEALTHY"
        expect(page.locator("#leader")).to_have_text("4 / 4")
        assert page.locator("#nodes-table th.c-leads").is_visible()
        for node_id in cluster.node_ids:
            led = ",".join(str(g) for g, leader in sorted(leaders.items()) if leader == node_id)
            assert page.locator(f"#nodes-table tr[data-node-id='{node_id}']").get_attribute("data-leads") == led
        page.screenshot(path=str(ARTIFACTS / "dashboard-shards.png"), full_page=True)

        # the node leading shard 1 crashes: that group shows leaderless and UNHEALTHY, then re-elects
        victim = leaders[1]
        cluster.crash(victim)
        cluster.run_for(0.05)
        collector.collect()
        expect(page.locator("#shards-body tr[data-shard='1']")).to_have_attribute("data-health", "UNHEALTHY",
                                                                                  timeout=10_000)
        assert page.locator("#shards-body tr[data-shard='1'] .no-leader").count() == 1
        page.screenshot(path=str(ARTIFACTS / "dashboard-shard-leaderless.png"), full_page=True)
        assert cluster.run_until(lambda: cluster.shard_leaders()[1] is not None, timeout=5.0), f"seed={SEED}"
        step(cluster, collector)
        new_leader = cluster.shard_leaders()[1]
        expect(page.locator("#shards-body tr[data-shard='1'] td").nth(1)).to_have_text(new_leader, timeout=10_000)
        assert errors == [], errors
    finally:
        server.stop()
        page.close()


def test_single_shard_page_has_no_shard_parts(browser):
    cluster, collector = monitored(3, 50.0, leader=False)
    for _ in range(3):
        step(cluster, collector)
    server = DashboardServer(collector, port=0).start()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(server.url + "/?refresh=1")
        page.locator("#nodes-table tbody tr[data-node-id]").nth(2).wait_for(timeout=10_000)
        expect(page.locator("#health-status")).to_have_text("HEALTHY", timeout=10_000)
        assert not page.locator("#shards-panel").is_visible()
        assert not page.locator("#nodes-table th.c-leads").is_visible()
        assert not page.locator("#nodes-shard-note").is_visible()
        assert page.locator("#leader-label").inner_text().lower() == "leader"
    finally:
        server.stop()
        page.close()


# -- light on the wire (issue 15) ------------------------------------------------------------

FIRST_LOAD_BUDGET = 150 * 1024
REFRESH_BUDGET = 20 * 1024
WIRE_RETENTION = 3600


def transferred(request) -> int:
    """Bytes of one response as received: headers plus the body as encoded on the wire."""
    sizes = request.sizes()
    return sizes["responseHeadersSize"] + max(0, sizes["responseBodySize"])


def test_dashboard_is_light_on_the_wire(browser):
    """First load at --retention 3600 and every 1 s refresh after it, counted in bytes received."""
    cluster = Cluster(node_count=5, seed=SEED)
    Workload(cluster, rate=20.0, seed=SEED)
    collector = MetricsCollector(collection_interval=1.0, retention_period=WIRE_RETENTION)
    collector.set_cluster(cluster)
    for _ in range(WIRE_RETENTION):  # simulated time: a full hour of samples in the history
        step(cluster, collector)
    assert len(collector.history(None)) >= WIRE_RETENTION - 1

    server = DashboardServer(collector, port=0).start()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    finished: list = []
    errors: list[str] = []
    page.on("requestfinished", lambda request: finished.append(request))
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def is_history(request) -> bool:
        return "/api/metrics/history" in request.url

    try:
        with page.expect_event("requestfinished", predicate=is_history, timeout=30_000):
            page.goto(server.url + "/?refresh=1")
        window = page.locator("#history-window")
        expect(window).to_have_attribute("data-last-sequence", str(collector.version), timeout=10_000)
        first = list(finished)
        first_load = sum(transferred(r) for r in first)

        rounds: list[int] = []
        for _ in range(8):
            start = len(finished)
            step(cluster, collector)
            # one refresh: the page's next history request after the new sample, then its answer shown
            with page.expect_event("requestfinished", predicate=is_history, timeout=10_000):
                pass
            expect(window).to_have_attribute("data-last-sequence", str(collector.version), timeout=10_000)
            rounds.append(sum(transferred(r) for r in finished[start:]))
        # a refresh with no new sample: summary 304, an empty since= answer
        start = len(finished)
        with page.expect_event("requestfinished", predicate=is_history, timeout=10_000):
            pass
        with page.expect_event("requestfinished", predicate=is_history, timeout=10_000):
            pass
        idle = sum(transferred(r) for r in finished[start:]) / 2
        held = len(collector.history(float(WIRE_RETENTION)))
        expect(window).to_contain_text(f"{held:,} samples")
        expect(page.locator("#health-status")).to_have_text("HEALTHY")

        by_path: dict[str, int] = {}
        for request in first:
            path = request.url.removeprefix(server.url).partition("?")[0]
            by_path[path] = by_path.get(path, 0) + transferred(request)
        print(f"\nfirst load at retention {WIRE_RETENTION} ({held} samples): {first_load} B "
              f"({first_load / 1024:.1f} KB) {by_path}")
        print(f"per 1 s refresh with a new sample: mean {sum(rounds) / len(rounds):.0f} B, "
              f"max {max(rounds)} B; without one: {idle:.0f} B")
        assert first_load <= FIRST_LOAD_BUDGET, (first_load, by_path)
        assert max(rounds) <= REFRESH_BUDGET, rounds
        assert idle <= REFRESH_BUDGET
        assert errors == [], errors
    finally:
        server.stop()
        page.close()


# -- any screen (issue 15, part 4) -------------------------------------------------------------

NARROW = {"width": 400, "height": 900}


def horizontal_overflow(page) -> int:
    """How many CSS pixels the page is wider than the window (0: no sideways scroll)."""
    return page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")


def cut_texts(page, selector: str) -> list[str]:
    """Texts of the elements matching ``selector`` that do not fit their box (ellipsis or clipped)."""
    return page.locator(selector).evaluate_all(
        "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)")


def boxes_overlap(a, b) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def quorum_loss_cluster():
    """A 5-node cluster with a leader named longer than 'nodeN', 3 nodes crashed: UNHEALTHY, alerts firing."""
    cluster, collector = monitored(5, 100.0)
    for _ in range(20):
        step(cluster, collector)
    for node_id in cluster.node_ids[:3]:
        cluster.crash(node_id)
    for _ in range(4):
        step(cluster, collector)
    assert collector.latest()["cluster"]["health_status"] == "UNHEALTHY", f"seed={SEED}"
    return cluster, collector


def test_narrow_screen_has_no_sideways_scroll_and_alerts_come_first(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    cluster, collector = quorum_loss_cluster()
    server = DashboardServer(collector, port=0).start()
    page = browser.new_page(viewport=NARROW)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(server.url + "/?refresh=1")
        page.locator("#alerts .alert.firing[data-alert='quorum_loss']").wait_for(timeout=10_000)
        expect(page.locator("#health-status")).to_have_text("UNHEALTHY", timeout=10_000)
        page.locator("#nodes-table tbody tr[data-node-id]").nth(4).wait_for(timeout=10_000)
        assert horizontal_overflow(page) <= 0, horizontal_overflow(page)
        # the health value, the node names and states, and the alerts are whole
        assert cut_texts(page, "#health-status") == []
        assert cut_texts(page, "#nodes-table .node-name, #nodes-table .state") == []
        assert cut_texts(page, "#alerts .alert-head span, #alerts .alert-msg") == []
        names = page.locator("#nodes-table .node-name").all_inner_texts()
        assert sorted(names) == sorted(cluster.node_ids)
        assert page.locator("#nodes-table thead").is_hidden()  # rows became cards, each value labelled
        commit = page.locator("#nodes-table tr[data-node-id] td[data-col='commit_index']").first
        assert commit.get_attribute("data-label") == "Commit"
        # firing alerts above the cards and the node table
        alerts_top = page.locator("#alerts").bounding_box()["y"]
        assert alerts_top < page.locator("#health-card").bounding_box()["y"]
        assert alerts_top < page.locator("#nodes-table").bounding_box()["y"]
        assert page.locator("#alerts").bounding_box()["width"] <= NARROW["width"]
        page.screenshot(path=str(ARTIFACTS / "dashboard-400px-quorum-loss.png"), full_page=True)
        assert errors == [], errors
    finally:
        server.stop()
        page.close()


def test_narrow_check_catches_a_wide_page(browser):
    """The sideways-scroll check itself: a planted 700 px element at 400 px is caught."""
    cluster, collector = quorum_loss_cluster()
    server = DashboardServer(collector, port=0).start()
    page = browser.new_page(viewport=NARROW)
    try:
        page.goto(server.url + "/?refresh=1")
        page.locator("#nodes-table tbody tr[data-node-id]").nth(4).wait_for(timeout=10_000)
        assert horizontal_overflow(page) <= 0
        page.locator("#health-status").evaluate("el => { el.style.whiteSpace = 'nowrap'; el.style.overflow = 'hidden';"
                                                " el.style.width = '40px'; }")
        assert cut_texts(page, "#health-status") == ["UNHEALTHY"]
        page.locator("#main").evaluate("el => { el.style.minWidth = '700px'; }")
        assert horizontal_overflow(page) > 0
    finally:
        server.stop()
        page.close()


def test_stale_data_is_unmistakable_and_covers_nothing(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    cluster, collector = monitored(3, 50.0, leader=False)
    for _ in range(5):
        step(cluster, collector)
    server = DashboardServer(collector, port=0).start()
    for viewport in ({"width": 1400, "height": 1000}, NARROW):
        page = browser.new_page(viewport=viewport)
        try:
            if not server.running:
                server = DashboardServer(collector, port=0).start()
            page.goto(server.url + "/?refresh=1")
            expect(page.locator("#health-status")).to_have_text("HEALTHY", timeout=10_000)
            expect(page.locator("#alerts-none")).to_be_visible()
            assert page.locator("#alerts-stale").is_hidden()
            server.stop()
            expect(page.locator("#connection-status")).to_have_text("disconnected", timeout=10_000)
            banner = page.locator("#disconnected-banner")
            expect(banner).to_be_visible()
            # no green "No alerts firing" on stale data: unknown instead
            assert page.locator("#alerts-none").is_hidden()
            expect(page.locator("#alerts-stale")).to_contain_text("Unknown — data is stale")
            assert page.locator("#alerts-count").inner_text() == "?"
            # the banner covers no card label (it is in the flow, not over the cards)
            banner_box = banner.bounding_box()
            for label in page.locator(".card-label").all():
                assert not boxes_overlap(banner_box, label.bounding_box()), label.inner_text()
            assert "stale" in page.locator("#health-card .card-label").evaluate(
                "el => getComputedStyle(el, '::before').content")
            assert horizontal_overflow(page) <= 0
            name = "desktop" if viewport["width"] > 1000 else "400px"
            page.screenshot(path=str(ARTIFACTS / f"dashboard-stale-{name}.png"), full_page=True)
        finally:
            server.stop()
            page.close()


def background(page) -> str:
    return page.locator("body").evaluate("el => getComputedStyle(el).backgroundColor")


def test_dark_and_light_themes_and_the_toggle_is_remembered(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    cluster, collector = quorum_loss_cluster()
    server = DashboardServer(collector, port=0).start()
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, color_scheme="dark")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(server.url + "/?refresh=1")
        page.locator("#alerts .alert.firing").first.wait_for(timeout=10_000)
        toggle = page.locator("#theme-toggle")
        expect(toggle).to_have_text("theme: auto")
        dark = background(page)
        assert dark == "rgb(15, 19, 24)", dark  # the dark palette, from prefers-color-scheme
        page.screenshot(path=str(ARTIFACTS / "dashboard-dark.png"), full_page=True)
        toggle.click()
        expect(toggle).to_have_text("theme: dark")
        assert page.locator("html").get_attribute("data-theme") == "dark"
        assert background(page) == dark
        toggle.click()
        expect(toggle).to_have_text("theme: light")
        assert background(page) == "rgb(244, 246, 248)"  # light, against the system's dark
        page.reload()
        expect(page.locator("#theme-toggle")).to_have_text("theme: light")  # kept in localStorage
        assert background(page) == "rgb(244, 246, 248)"
        page.locator("#theme-toggle").click()
        expect(page.locator("#theme-toggle")).to_have_text("theme: auto")
        assert background(page) == dark
        assert errors == [], errors
    finally:
        server.stop()
        context.close()


# -- the cluster shown as Raft, the event timeline, hover, node history (issue 15, part 3) ---------


def lane_alignment(page) -> list[float]:
    """Pixel offsets of the timeline lanes' left and right edges from each chart's plot area (0: aligned)."""
    return page.evaluate("""() => {
        const lane = document.getElementById('tl-leader').getBoundingClientRect();
        return Array.from(document.querySelectorAll('#history-charts canvas')).flatMap(c => {
            const box = c.getBoundingClientRect();
            return [lane.left - (box.left + 44), lane.right - (box.right - 8)];
        });
    }""")


def hover_caption(page, canvas: str, x: float) -> str:
    """The chart's caption with the pointer at ``x`` CSS px from the window's left, mid-height."""
    page.locator(canvas).scroll_into_view_if_needed()
    box = page.locator(canvas).bounding_box()
    page.mouse.move(x, box["y"] + box["height"] / 2)
    caption = page.locator(canvas + "-last")
    expect(caption).to_have_attribute("data-hover", "true", timeout=5_000)
    return caption.inner_text()


def test_timeline_shows_the_election_after_a_leader_crash(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    cluster, collector = monitored(5, 100.0)
    for _ in range(20):
        step(cluster, collector)
    leader = cluster.leader_id
    old_term = collector.latest()["cluster"]["current_term"]

    server = DashboardServer(collector, port=0).start()
    errors: list[str] = []
    page = desktop_page(browser, errors)
    try:
        page.goto(server.url + "/?refresh=1")
        expect(page.locator(f".raft-node[data-node-id='{leader}']")).to_have_attribute("data-state", "LEADER",
                                                                                     timeout=10_000)
        expect(page.locator(f"#event-list li[data-kind='leader'][data-leader='{leader}']")).to_have_count(1)
        assert page.locator("#tl-fault-row").is_hidden()  # nothing injected yet: no fault lane

        cluster.crash(leader)
        for _ in range(10):
            step(cluster, collector)
            now = collector.latest()["cluster"]
            if now["leader_node"] not in (None, leader) and now["current_term"] > old_term:
                break
        new_leader, new_term = now["leader_node"], now["current_term"]
        assert new_leader not in (None, leader) and new_term > old_term, f"seed={SEED} {now}"
        step(cluster, collector)  # a sample after the election, so the term chart steps before its end
        election = [e for e in collector.events() if e["kind"] == "leader" and e["leader"] == new_leader][-1]

        # the list: the election with its term and who lost it; the crash and the node_down alert
        item = page.locator(f"#event-list li[data-kind='leader'][data-leader='{new_leader}'][data-term='{new_term}']")
        expect(item).to_have_count(1, timeout=10_000)
        expect(item).to_contain_text(f"election: {new_leader} leads term {new_term} (was {leader})")
        expect(page.locator("#event-list li[data-kind='fault']")).to_contain_text(f"crash {leader}")
        expect(page.locator("#event-list li[data-kind='alert'][data-status='firing']").first).to_contain_text("node_down")
        expect(page.locator(f".raft-node[data-node-id='{leader}']")).to_have_attribute("data-state", "DOWN")
        expect(page.locator(f".raft-node[data-node-id='{new_leader}']")).to_have_attribute("data-state", "LEADER")
        expect(page.locator("#raft-caption")).to_contain_text(f"leader {new_leader} · term {new_term}")

        # the lanes: the election marked with its term, the crash on the fault lane, the alert as a bar
        mark = page.locator(f"#tl-leader .tl-mark[data-term='{new_term}'][data-leader='{new_leader}']")
        expect(mark).to_have_count(1)
        expect(page.locator("#tl-fault-row")).to_be_visible()
        expect(page.locator("#tl-fault .tl-mark[data-fault='crash']")).to_have_count(1)
        expect(page.locator("#tl-alert .tl-alert[data-alert='node_down']").first).to_be_visible()

        # aligned with the charts: the lanes span exactly each chart's plot, and the election's mark
        # sits where the term chart steps (hover just right of it: the new term; a sample left: the old)
        assert all(abs(d) <= 1 for d in lane_alignment(page)), lane_alignment(page)
        box = mark.bounding_box()
        line = box["x"] + box["width"] if "flip" in (mark.get_attribute("class") or "") else box["x"]
        spacing = page.locator("#chart-term").bounding_box()["width"] / 60  # >= 1 s per ~20 px: 60 s window
        assert hover_caption(page, "#chart-term", line + 2).endswith(f" · {new_term}")
        assert hover_caption(page, "#chart-term", line - 0.8 * spacing).endswith(f" · {old_term}")
        # hover values: the wall-clock time and the sample's avg and p99, side by side
        plot_right = page.locator("#chart-latency").bounding_box()
        text = hover_caption(page, "#chart-latency", plot_right["x"] + plot_right["width"] - 9)
        perf = collector.latest()["performance"]
        shown = lambda v: "—" if v is None else f"{v:.1f}"  # noqa: E731
        assert f"avg {shown(perf['avg_latency_ms'])} · p99 {shown(perf['p99_latency_ms'])}" in text, (text, perf)
        assert re.match(r"^\d\d:\d\d:\d\d · ", text), text
        page.mouse.move(5, 5)
        expect(page.locator("#chart-latency-last")).to_have_attribute("data-hover", "false")
        assert election["t"] > 0
        page.screenshot(path=str(ARTIFACTS / "dashboard-raft-election.png"), full_page=True)
        assert errors == [], errors
    finally:
        server.stop()
        page.close()


def test_alignment_check_catches_a_shifted_timeline(browser):
    """lane_alignment itself: a timeline moved 30 px off the charts' plot is caught."""
    cluster, collector = monitored(3, 50.0, leader=False)
    for _ in range(5):
        step(cluster, collector)
    server = DashboardServer(collector, port=0).start()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(server.url + "/?refresh=1")
        page.locator("#tl-health .tl-band").first.wait_for(timeout=10_000)
        assert all(abs(d) <= 1 for d in lane_alignment(page))
        page.locator("#timeline").evaluate("el => { el.style.marginLeft = '30px'; }")
        assert max(abs(d) for d in lane_alignment(page)) >= 29
    finally:
        server.stop()
        page.close()


def test_log_strips_colour_entries_by_term_and_a_down_node_keeps_its_last_terms(browser):
    """After the leader crashes, the live nodes' strips show the old term's entries, then the
    new term's, in those terms' colours; the crashed node's strip keeps the terms it last reported."""
    cluster, collector = monitored(3, 20.0)
    for _ in range(3):
        step(cluster, collector)
    old_leader = cluster.leader_id
    old_term = collector.latest()["nodes"][old_leader]["term"]
    cluster.crash(old_leader)
    assert cluster.run_until(lambda: cluster.leader_id not in (None, old_leader), timeout=10.0), f"seed={SEED}"
    step(cluster, collector, 0.5)  # a few entries of the new term: the strip's last 24 span both
    nodes = collector.latest()["nodes"]
    new_leader = cluster.leader_id
    new_term = nodes[new_leader]["term"]
    assert new_term > old_term and nodes[old_leader]["state"] == "DOWN", f"seed={SEED}"
    runs = nodes[new_leader]["log_terms"]
    assert [t for _i, t in runs][-2:] == [old_term, new_term], f"seed={SEED} {runs}"
    server = DashboardServer(collector, port=0).start()
    errors: list[str] = []
    page = desktop_page(browser, errors)
    try:
        page.goto(server.url + "/?refresh=1")
        row = page.locator(f".raft-node[data-node-id='{new_leader}']")
        expect(row.locator(".log-strip")).to_have_attribute(
            "data-terms", ",".join(str(t) for _i, t in runs), timeout=10_000)
        band = row.locator(".term-band")
        expect(band).to_be_visible()
        image = band.evaluate("el => getComputedStyle(el).backgroundImage")
        # each term in the colour of its badge (the node in the old term shows it on its badge)
        new_colour = row.locator(".rn-term").evaluate("el => getComputedStyle(el).color")
        old_row = page.locator(f".raft-node[data-node-id='{old_leader}']")
        old_colour = old_row.locator(".rn-term").evaluate("el => getComputedStyle(el).color")
        assert new_colour != old_colour and new_colour in image and old_colour in image, (image, new_colour, old_colour)
        # the new term's colour reaches the right edge (the leader's commit): it is the newest
        assert image.rstrip(")").rsplit(new_colour, 1)[1].strip().startswith("100%"), image
        # the crashed node: its last report's terms, only the old one
        expect(old_row.locator(".log-strip")).to_have_attribute("data-terms", str(old_term))
        assert new_colour not in old_row.locator(".term-band").evaluate("el => getComputedStyle(el).backgroundImage")
        assert f"term {new_term}" in (row.locator(".log-strip").get_attribute("title") or "")
        assert errors == [], errors
    finally:
        server.stop()
        page.close()


def test_node_strip_shows_a_slow_follower_behind_and_a_click_opens_its_history(browser):
    ARTIFACTS.mkdir(exist_ok=True)
    cluster, collector = monitored(5, 200.0)
    for _ in range(20):
        step(cluster, collector)
    leader = cluster.leader_id
    slow = next(n for n in cluster.node_ids if n != leader)
    cluster.slow(slow, 30)
    for _ in range(10):
        step(cluster, collector)
        nodes = collector.latest()["nodes"]
        if nodes[slow]["replication_lag"] and nodes[leader]["commit_index"] - nodes[slow]["commit_index"] >= 10:
            break
    nodes = collector.latest()["nodes"]
    behind = nodes[leader]["commit_index"] - nodes[slow]["commit_index"]
    lag = nodes[slow]["replication_lag"]
    assert behind >= 10 and lag > 0, f"seed={SEED} behind={behind} lag={lag}"

    server = DashboardServer(collector, port=0).start()
    for viewport in ({"width": 1400, "height": 1000}, NARROW):
        page = browser.new_page(viewport=viewport)
        errors: list[str] = []
        page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        try:
            if not server.running:
                server = DashboardServer(collector, port=0).start()
            page.goto(server.url + "/?refresh=1")
            row = page.locator(f".raft-node[data-node-id='{slow}']")
            expect(row).to_have_attribute("data-behind", str(behind), timeout=10_000)
            expect(row).to_have_attribute("data-lag", str(lag))
            strip = row.locator(".log-strip").bounding_box()
            bar = row.locator(".seg-behind").bounding_box()
            # the bar runs from its commit to the leader's commit (the strip's right end), amber or red
            assert bar["width"] > 0.2 * strip["width"], (bar, strip)
            assert abs((bar["x"] + bar["width"]) - (strip["x"] + strip["width"])) <= 1
            assert "lag-none" not in (row.locator(".seg-behind").get_attribute("class") or "")
            # its commit against the leader's, named as such, apart from its lag (what it lacks):
            # "1 behind" beside "caught up" read as a contradiction when the two differ
            expect(row.locator(".rn-log-note")).to_contain_text(
                f"commit {nodes[slow]['commit_index']:,}, {behind:,} behind the leader's")
            # the lag in entries, as the CLI's lag column and the API name it; never a negative "−531"
            expect(row.locator(".rn-facts")).to_contain_text(f"lag {lag:,} entries")
            assert "−" not in row.locator(".rn-facts").inner_text()
            # the leader's own strip has nothing behind; the slow one is the furthest behind
            lead_row = page.locator(f".raft-node[data-node-id='{leader}']")
            assert lead_row.get_attribute("data-behind") == "0"
            assert lead_row.locator(".seg-behind").bounding_box()["width"] <= 1
            others = [int(v) for v in page.locator(".raft-node").evaluate_all(
                "rows => rows.map(r => r.dataset.behind)") if v != ""]
            assert max(others) == behind
            assert horizontal_overflow(page) <= 0
            assert cut_texts(page, ".raft-node .node-name, .raft-node .rn-role") == []
            name = "desktop" if viewport["width"] > 1000 else "400px"
            page.screenshot(path=str(ARTIFACTS / f"dashboard-raft-slow-{name}.png"), full_page=True)

            # a click opens its history from /api/node, with the lag it has had
            with page.expect_response(lambda r: "/api/node?" in r.url and r.status == 200):
                row.click()
            detail = page.locator("#node-detail")
            expect(detail).to_be_visible()
            expect(detail).to_have_attribute("data-node-id", slow)
            rows = len(collector.node_history(slow, 300))
            expect(detail).to_have_attribute("data-rows", str(rows), timeout=5_000)
            expect(page.locator("#node-detail-caption")).to_contain_text("now FOLLOWER")
            expect(page.locator("#node-chart-lag-last")).to_have_text(f"{lag:,}")
            assert horizontal_overflow(page) <= 0
            page.locator("#node-detail").screenshot(path=str(ARTIFACTS / f"dashboard-node-history-{name}.png"))
            page.locator("#node-detail-close").click()
            expect(detail).to_be_hidden()
            assert errors == [], errors
        finally:
            server.stop()
            page.close()

    # healed: the follower catches up and the bar goes
    cluster.slow(slow, 1.0)
    server = DashboardServer(collector, port=0).start()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        for _ in range(10):  # back within a heartbeat's worth of entries
            step(cluster, collector)
            nodes = collector.latest()["nodes"]
            if nodes[leader]["commit_index"] - nodes[slow]["commit_index"] < 10 and not nodes[slow]["replication_lag"]:
                break
        assert nodes[leader]["commit_index"] - nodes[slow]["commit_index"] < 10, f"seed={SEED}"
        page.goto(server.url + "/?refresh=1")
        row = page.locator(f".raft-node[data-node-id='{slow}']")
        expect(row).to_have_attribute("data-behind", str(nodes[leader]["commit_index"] - nodes[slow]["commit_index"]),
                                      timeout=10_000)
        assert row.locator(".seg-behind").bounding_box()["width"] < 0.2 * row.locator(".log-strip").bounding_box()["width"]
        assert (row.locator(".seg-behind").get_attribute("class") or "").split()[-1] in ("lag-none", "lag-low")
    finally:
        server.stop()
        page.close()


def test_a_live_page_does_not_ask_for_the_replay_controls_and_logs_no_error(browser):
    """Only the replay server has /api/replay and says so in its page; a live page never asks
    (a 404 would show in the browser's console as an error on every load)."""
    cluster, collector = monitored(3, 20.0)
    step(cluster, collector)
    server = DashboardServer(collector, port=0).start()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    asked: list[str] = []
    console_errors: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    try:
        page.goto(server.url + "/?refresh=1")
        expect(page.locator("#health-status")).to_have_text("HEALTHY", timeout=10_000)
        page.wait_for_function("() => document.querySelectorAll('#nodes-table tbody tr[data-node-id]').length === 3")
        step(cluster, collector)
        for _ in range(2):  # two more refreshes after the load
            with page.expect_request(lambda r: "/api/summary" in r.url, timeout=10_000):
                pass
        assert page.locator('meta[name="raftctl-replay"]').get_attribute("content") == "0"
        assert not [u for u in asked if "/api/replay" in u], asked
        assert console_errors == [], console_errors
        assert page.locator("#replay-bar").count() == 0 or page.locator("#replay-bar").is_hidden()
    finally:
        server.stop()
        page.close()


def test_quorum_is_unknown_not_held_when_no_majority_answers(browser):
    """Three of five paused: not lost on evidence (nothing refused), but no majority answers the
    monitor, so the page says it cannot tell rather than "quorum held"."""
    cluster, collector = monitored(5, 100.0)
    for _ in range(10):
        step(cluster, collector)
    server = DashboardServer(collector, port=0).start()
    errors: list[str] = []
    page = desktop_page(browser, errors)
    try:
        page.goto(server.url + "/?refresh=1")
        expect(page.locator("#quorum")).to_have_text("quorum held", timeout=10_000)
        for node_id in cluster.node_ids[:3]:
            cluster.pause(node_id)
        for _ in range(3):
            step(cluster, collector)
        # the sample says so too (it said true: session 23's tester), not only the page
        assert collector.latest()["cluster"]["has_quorum"] is None, f"seed={SEED}"
        expect(page.locator("#reach-detail")).to_have_text("Monitor reaches 2/5 nodes", timeout=10_000)
        expect(page.locator("#quorum")).to_have_text("quorum unknown")
        assert errors == [], errors
    finally:
        page.close()
        server.stop()
