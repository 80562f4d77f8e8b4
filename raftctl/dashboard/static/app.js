// raftctl dashboard: polls the REST API and redraws in place. No dependencies, no build step.
(function () {
  "use strict";

  var MIN_REFRESH = 0.2;
  var MAX_REFRESH = 3600;

  function refreshSeconds() {
    var fromQuery = new URLSearchParams(window.location.search).get("refresh");
    var candidates = [fromQuery];
    var meta = document.querySelector('meta[name="raftctl-refresh-seconds"]');
    if (meta) candidates.push(meta.getAttribute("content"));
    for (var i = 0; i < candidates.length; i++) {
      var value = parseFloat(candidates[i]);
      if (isFinite(value) && value >= MIN_REFRESH && value <= MAX_REFRESH) return value;
    }
    return 5;
  }

  var refresh = refreshSeconds();
  var $ = function (id) { return document.getElementById(id); };
  // history: the samples the page holds (loaded once, then extended with ?since= the newest sequence)
  var state = {
    lastSuccess: null, failures: 0, retention: 300, timer: null,
    etag: null, summarySequence: null, history: null, historyDuration: null, lastSequence: null,
    stale: false, activeAlerts: 0, replay: null, seeking: false, inFlight: false, again: false,
    // the timeline: events held (GET /api/events, then ?since= the newest seq), the hovered instant
    events: [], eventSeq: null, eventsRendered: false, hoverT: null, nodeDetail: null, wall: null, sawLeader: {},
    // collector.started_at of the run the page shows (undefined: no summary yet; null: a server without it)
    startedAt: undefined,
  };

  function setText(id, text) {
    var el = $(id);
    if (el && el.textContent !== text) el.textContent = text;
  }

  function fmtInt(value) {
    return typeof value === "number" && isFinite(value) ? Math.round(value).toLocaleString("en-US") : "—";
  }

  function fmtNum(value, digits) {
    return typeof value === "number" && isFinite(value) ? value.toFixed(digits) : "—";
  }

  // "1 sample", "2 samples", "1,200 orders": the count with its noun, singular for exactly one
  function plural(count, noun, nouns) {
    return fmtInt(count) + " " + (count === 1 ? noun : (nouns || noun + "s"));
  }

  // "—" alone when there is no value (e.g. no latency while nothing commits), never "— ms"
  function withUnit(value, digits, unit) {
    var text = fmtNum(value, digits);
    return text === "—" ? text : text + unit;
  }

  function clock(date) {
    return date.toLocaleTimeString("en-GB", { hour12: false });
  }

  function fetchJson(path, timeoutMs, headers) {
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, timeoutMs);
    // An If-None-Match set here reaches the server as is, and its 304 reaches us (no-store cache).
    return fetch(path, { cache: "no-store", signal: controller.signal, headers: headers || {} })
      .then(function (response) {
        if (response.status === 304) return { status: 304, body: null, etag: response.headers.get("ETag") };
        return response.json().then(function (body) {
          return { status: response.status, body: body, etag: response.headers.get("ETag") };
        });
      })
      .finally(function () { clearTimeout(timer); });
  }

  // ---- connection state ----------------------------------------------------------------

  function setConnected() {
    state.failures = 0;
    state.lastSuccess = new Date();
    var conn = $("connection-status");
    conn.className = "conn conn-live";
    setText("connection-status", state.replay ? "replay" : "live");
    $("disconnected-banner").hidden = true;
    $("main").classList.remove("stale");
    state.stale = false;
    showAlertState();
    // "last updated" is the sample's own time (renderOverview); this is when the server last answered
    $("last-updated").title = "the time of the sample shown; the server last answered at " + clock(state.lastSuccess);
  }

  function setDisconnected(reason) {
    state.failures += 1;
    var conn = $("connection-status");
    conn.className = "conn conn-down";
    setText("connection-status", "disconnected");
    var since = state.lastSuccess ? " Last good data at " + clock(state.lastSuccess) + "." : "";
    setText("disconnected-detail", "The dashboard server is not answering (" + reason + "); numbers below are stale." +
      since + " Retrying every " + refresh + " s.");
    $("disconnected-banner").hidden = false;
    $("main").classList.add("stale");
    state.stale = true;
    showAlertState();
  }

  // Stale data says nothing about alerts now: never a green "No alerts firing" then.
  function showAlertState() {
    var note = $("alerts-stale");
    var count = $("alerts-count");
    var since = state.lastSuccess ? " (last good data at " + clock(state.lastSuccess) + ")" : "";
    if (state.stale) {
      setText("alerts-stale", state.activeAlerts
        ? "Data is stale" + since + ": these were firing then; what fires now is unknown."
        : "Unknown — data is stale" + since + ".");
      note.hidden = false;
      $("alerts-none").hidden = true;
      count.textContent = "?";
      count.classList.remove("firing");
    } else {
      note.hidden = true;
      $("alerts-none").hidden = state.activeAlerts > 0;
      count.textContent = String(state.activeAlerts);
      count.classList.toggle("firing", state.activeAlerts > 0);
    }
  }

  // ---- overview ------------------------------------------------------------------------

  function shardRanges(list) {
    var sorted = list.slice().sort(function (a, b) { return a - b; }), parts = [];
    for (var i = 0; i < sorted.length; i++) {
      var j = i;
      while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
      parts.push(i === j ? String(sorted[i]) : sorted[i] + "-" + sorted[j]);
      i = j;
    }
    return parts.join(", ");
  }

  function groupedReasons(reasons) {
    var order = [], shardsOf = {};
    reasons.forEach(function (raw) {
      var reason = String(raw), m = /^shard(\d+):(.+)$/.exec(reason);
      var key = m ? "shard:" + m[2] : reason;
      if (!(key in shardsOf)) { shardsOf[key] = []; order.push(key); }
      if (m) shardsOf[key].push(Number(m[1]));
    });
    return order.map(function (key) {
      var list = shardsOf[key];
      if (!list.length) return key;
      return (list.length > 1 ? "shards " : "shard ") + shardRanges(list) + ": " + key.slice(6);
    });
  }

  function digestsReported(doc) {
    var nodes = doc.nodes;
    if (!nodes || typeof nodes !== "object" || !Object.keys(nodes).length) return true;
    return Object.keys(nodes).some(function (id) { var n = nodes[id]; return n && n.state_digest != null; });
  }

  function renderOverview(doc) {
    var cluster = doc.cluster || {};
    var perf = doc.performance || {};
    var status = cluster.health_status || "UNKNOWN";
    $("health-card").setAttribute("data-status", status);
    setText("health-status", status);
    var reasons = cluster.health_reasons || [];
    // the same reason of many shards told once ("shards 1-15: no_leader"): 16 leaderless shards
    // made 35 lines that stretched every card of the row; the tooltip keeps them all
    // a HEALTHY cluster may still have an alert firing (high_latency is no health reason): say so
    var firing = (doc.alerts || []).filter(function (a) { return a && a.status === "firing"; }).length;
    setText("health-reasons", reasons.length ? groupedReasons(reasons).join("; ")
      : firing ? "health checks pass; " + plural(firing, "alert") + " firing" : "all checks passing");
    $("health-reasons").title = reasons.join("\n");
    var leader = cluster.leader || cluster.leader_node;
    var shards = shardList(doc);
    // a monitor that reaches no majority sees no leader: that is "unknown", not "none"
    var sightless = monitorBlind(cluster);
    if (shards) {
      var led = shards.filter(function (s) { return s && s.leader; }).length;
      setText("leader-label", "Shard leaders");
      setText("leader", sightless && led < shards.length ? "unknown" : led + " / " + shards.length);
      $("leader").classList.toggle("bad", led < shards.length && !sightless);
      setText("term-label", "Term · shard 0");
    } else {
      setText("leader-label", "Leader");
      setText("leader", leader || (sightless ? "unknown" : "none"));
      $("leader").classList.remove("bad");
      setText("term-label", "Term");
    }
    setText("leader-changes", isNum(cluster.leader_changes) ? plural(cluster.leader_changes, "leader change") : "\u00a0");
    setText("term", fmtInt(cluster.current_term));
    // not lost on evidence, but with no majority answering the monitor cannot say it is held
    var blind = monitorBlind(cluster);
    setText("quorum", cluster.has_quorum === false ? "quorum lost"
      : (cluster.has_quorum === null || (cluster.has_quorum && blind) ? "quorum unknown"
        : (cluster.has_quorum ? "quorum held" : "\u00a0")));
    setText("healthy-nodes", fmtInt(cluster.healthy_nodes) + " / " + fmtInt(cluster.cluster_size));
    // with no state digest reported (etcd publishes none) nothing was compared: no "aligned" claim
    var unchecked = cluster.consensus_aligned !== false && !digestsReported(doc);
    setText("aligned", cluster.consensus_aligned === false ? "consensus NOT aligned"
      : (unchecked ? "consensus unchecked" : "consensus aligned"));
    $("aligned").title = unchecked ? "no node reports a state digest (etcd publishes none): nothing to compare" : "";
    // the monitor sees only the nodes that answered its poll; below a majority it cannot vouch for the cluster
    var reached = cluster.nodes_reached, size = cluster.cluster_size;
    var partial = typeof reached === "number" && typeof size === "number" && reached < size;
    setText("reach-detail", partial ? "Monitor reaches " + reached + "/" + size + " nodes" : "");
    $("reach-banner").classList.toggle("bad", partial && reached < Math.floor(size / 2) + 1);
    $("reach-banner").hidden = !partial;
    setText("throughput", fmtNum(perf.throughput_ops, 1) + " ops/s");
    setText("orders", (isNum(perf.total_orders) ? plural(perf.total_orders, "order") : "— orders") + " · " +
      (isNum(perf.total_trades) ? plural(perf.total_trades, "trade") : "— trades"));
    setText("latency", withUnit(perf.avg_latency_ms, 1, " ms"));
    // no latency and the source says why (an etcd probe refused or timed out): say it, whole on hover
    var latencyNote = !isNum(perf.avg_latency_ms) && typeof perf.latency_note === "string" ? perf.latency_note : "";
    // one latency (etcd's one probe read per interval) has no distribution: no percentiles of it
    var single = perf.latency_count === 1 && isNum(perf.avg_latency_ms);
    setText("latency-detail", latencyNote ? "not measured: " + latencyNote :
      (single ? "1 measurement" :
        "p50 " + withUnit(perf.p50_latency_ms, 1, " ms") + " · p99 " + withUnit(perf.p99_latency_ms, 1, " ms")));
    var latencyTitle = latencyNote || (single ? "one latency in the interval (etcd: its one probe read): no percentiles" : "");
    if ($("latency-detail").title !== latencyTitle) $("latency-detail").title = latencyTitle;
    $("latency-detail").classList.toggle("wrap", !!latencyNote);
    // the sample's own timestamp: with a 30 s interval a fetch can be up to 30 s fresher than the data
    // (a replay shows the recorded time of its position instead, renderReplay)
    if (!state.replay && isNum(doc.timestamp)) setText("last-updated", clock(new Date(doc.timestamp * 1000)));
    var collector = doc.collector || {};
    if (typeof collector.retention_period === "number" && collector.retention_period > 0) {
      state.retention = collector.retention_period;
    }
  }

  // ---- nodes table ---------------------------------------------------------------------

  var NODE_COLUMNS = ["name", "state", "leads", "up", "term", "commit_index", "last_applied", "log_length", "replication_lag", "peers_connected"];
  // shown above each value when a narrow screen turns the rows into cards
  var NODE_LABELS = ["Node", "State", "Leads", "Up", "Term", "Commit", "Applied", "Log", "Lag", "Peers"];
  var NUMERIC_FROM = NODE_COLUMNS.indexOf("term");

  function nodeRow(nodeId) {
    var body = $("nodes-body");
    var row = body.querySelector('tr[data-node-id="' + CSS.escape(nodeId) + '"]');
    if (row) return row;
    row = document.createElement("tr");
    row.setAttribute("data-node-id", nodeId);
    NODE_COLUMNS.forEach(function (column, index) {
      var cell = document.createElement("td");
      cell.setAttribute("data-col", column);
      cell.setAttribute("data-label", NODE_LABELS[index]);
      if (index >= NUMERIC_FROM) cell.className = "r";
      if (column === "leads") cell.className = "c-leads";
      row.appendChild(cell);
    });
    body.appendChild(row);
    return row;
  }

  function renderNodes(doc) {
    var nodes = doc.nodes || {};
    var leader = (doc.cluster || {}).leader || (doc.cluster || {}).leader_node;
    var shards = shardList(doc);
    var leads = shards ? shardLeads(shards) : null;
    $("nodes-table").classList.toggle("sharded", !!shards);
    $("nodes-shard-note").hidden = !shards;
    var ids = Object.keys(nodes).sort(function (a, b) {
      return a.localeCompare(b, "en", { numeric: true });
    });
    var body = $("nodes-body");
    Array.prototype.slice.call(body.rows).forEach(function (row) {
      if (!(row.getAttribute("data-node-id") in nodes)) body.removeChild(row);
    });
    ids.forEach(function (nodeId, position) {
      var node = nodes[nodeId] || {};
      var row = nodeRow(nodeId);
      if (body.rows[position] !== row) body.insertBefore(row, body.rows[position] || null);
      var up = node.up !== false && node.state !== "DOWN";
      var led = leads && up ? (leads[nodeId] || []) : [];
      // sharded: one node leads several groups, so no single "the leader" row is marked
      var isLeader = !leads && nodeId === leader && node.state === "LEADER";
      var shownState = led.length ? "LEADER" : (up ? node.state : "DOWN");
      // a stale leader still says LEADER in an old term: amber, never the leader's style
      var label = shownState === "STALE_LEADER" ? "STALE LEADER"
        : shownState === "DOWN" && node.down_reason ? "DOWN (" + node.down_reason + ")" : shownState;
      row.classList.toggle("leader", isLeader);
      row.classList.toggle("down", !up);
      row.classList.toggle("stale", shownState === "STALE_LEADER");
      row.setAttribute("data-state", shownState || "");
      row.setAttribute("data-down-reason", up ? "" : (node.down_reason || ""));
      var cells = row.cells;
      cells[0].innerHTML = "";
      var name = document.createElement("span");
      name.className = "node-name";
      name.textContent = nodeId;
      cells[0].appendChild(name);
      if (isLeader) {
        var mark = document.createElement("span");
        mark.className = "leader-mark";
        mark.textContent = "★ leader";
        cells[0].appendChild(mark);
      }
      cells[1].innerHTML = "";
      var badge = document.createElement("span");
      badge.className = "state state-" + (shownState || "UNKNOWN");
      badge.textContent = label || "?";
      cells[1].appendChild(badge);
      row.setAttribute("data-leads", led.join(","));
      // "shard 0", "shards 0, 2": a bare "0" next to LEADER read as "leads 0 shards"
      cells[2].textContent = led.length ? (led.length === 1 ? "shard " : "shards ") + led.join(", ") : (leads ? "—" : "");
      cells[2].classList.toggle("none", !led.length);
      cells[2].title = led.length ? nodeId + " leads " + plural(led.length, "shard") + ": " + led.join(", ") : "";
      cells[3].innerHTML = "";
      var dot = document.createElement("span");
      dot.className = "updot " + (up ? "up" : "down");
      cells[3].appendChild(dot);
      cells[3].appendChild(document.createTextNode(up ? "up" : "down"));
      cells[4].textContent = fmtInt(node.term);
      cells[5].textContent = fmtInt(node.commit_index);
      cells[6].textContent = fmtInt(node.last_applied);
      cells[7].textContent = fmtInt(node.log_length);
      cells[8].textContent = node.replication_lag == null ? "—" : fmtInt(node.replication_lag);
      cells[9].textContent = fmtInt(node.peers_connected);
    });
    $("nodes-empty").hidden = ids.length > 0;
  }

  // ---- shards (only in a Multi-Raft document) -----------------------------------------

  function shardList(doc) {
    return Array.isArray(doc.shards) && doc.shards.length ? doc.shards : null;
  }

  // {node: [shards it leads]}
  function shardLeads(shards) {
    var leads = {};
    (shards || []).forEach(function (s) {
      if (s && s.leader) (leads[s.leader] = leads[s.leader] || []).push(s.shard);
    });
    return leads;
  }

  var SHARD_LABELS = ["Shard", "Leader", "Term", "Commit", "Applied", "Health", "Replicas", "Throughput", "Latency"];

  function cell(row, text, className) {
    var td = document.createElement("td");
    if (className) td.className = className;
    td.setAttribute("data-label", SHARD_LABELS[row.cells.length] || "");
    if (text instanceof Node) td.appendChild(text); else td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function span(text, className) {
    var el = document.createElement("span");
    el.className = className;
    el.textContent = text;
    return el;
  }

  // fewer than a majority of the nodes answered the monitor: it cannot vouch for the cluster
  function monitorBlind(cluster) {
    // fewer than a majority reached, and the quorum not known lost: when it is (nodes refused the
    // poll, or answer cut off), there is no leader on evidence, "none" rather than "unknown"
    return typeof cluster.nodes_reached === "number" && typeof cluster.cluster_size === "number"
      && cluster.nodes_reached < Math.floor(cluster.cluster_size / 2) + 1 && cluster.has_quorum !== false;
  }

  function renderShards(doc) {
    var shards = shardList(doc);
    var panel = $("shards-panel");
    if (!shards) { panel.hidden = true; return; }
    var led = shards.filter(function (s) { return s && s.leader; }).length;
    var sightless = monitorBlind(doc.cluster || {});
    setText("shards-caption", shards.length + " Raft groups · " + (sightless && led < shards.length
      ? led + " with a leader seen; the monitor reaches too few nodes to tell about the others"
      : led + " with a leader"));
    var rows = shards.map(function (s) {
      s = s || {};
      var tr = document.createElement("tr");
      tr.setAttribute("data-shard", String(s.shard));
      tr.setAttribute("data-health", s.health_status || "");
      cell(tr, String(s.shard), "node-name");
      cell(tr, s.leader ? span(s.leader, "node-name")
        : (sightless ? span("unknown", "unknown-leader") : span("none", "no-leader")), "leader-cell");
      cell(tr, fmtInt(s.term), "r");
      // without a leader the group has no authoritative indexes: show a gap, not a fake 0
      cell(tr, s.leader ? fmtInt(s.commit_index) : "—", "r");
      cell(tr, s.leader ? fmtInt(s.last_applied) : "—", "r");
      cell(tr, span(s.health_status || "?", "health health-" + (s.health_status || "UNKNOWN")), "health-cell");
      cell(tr, s.consensus_aligned === false ? span("diverged", "misaligned") : "aligned");
      cell(tr, fmtNum(s.throughput_ops, 1) + " ops/s", "r");
      cell(tr, withUnit(s.avg_latency_ms, 1, " ms"), "r");
      return tr;
    });
    $("shards-body").replaceChildren.apply($("shards-body"), rows);
    panel.hidden = false;
  }

  // ---- alerts --------------------------------------------------------------------------

  function alertCard(alert, resolved) {
    var card = document.createElement("div");
    var severity = String(alert.severity || "info").toLowerCase();
    card.className = "alert " + (resolved ? "resolved" : "firing") + " sev-" + severity;
    card.setAttribute("data-alert", alert.name || "");
    var head = document.createElement("div");
    head.className = "alert-head";
    var name = document.createElement("span");
    name.textContent = alert.name || "alert";
    var sev = document.createElement("span");
    sev.className = "alert-sev";
    sev.textContent = resolved ? "resolved" : severity;
    head.appendChild(name);
    head.appendChild(sev);
    card.appendChild(head);
    if (alert.message) {
      var msg = document.createElement("div");
      msg.className = "alert-msg";
      msg.textContent = alert.message;
      card.appendChild(msg);
    }
    var when = document.createElement("div");
    when.className = "alert-time";
    var started = typeof alert.started_at === "number" ? clock(new Date(alert.started_at * 1000)) : "?";
    when.textContent = resolved && typeof alert.resolved_at === "number"
      ? "from " + started + " to " + clock(new Date(alert.resolved_at * 1000))
      : "since " + started;
    card.appendChild(when);
    return card;
  }

  function renderAlerts(body) {
    var active = body.active || [];
    var resolved = body.resolved || [];
    $("alerts-firing").replaceChildren.apply($("alerts-firing"), active.map(function (a) { return alertCard(a, false); }));
    $("alerts-resolved").replaceChildren.apply($("alerts-resolved"), resolved.slice(0, 10).map(function (a) { return alertCard(a, true); }));
    $("resolved-none").hidden = resolved.length > 0;
    state.activeAlerts = active.length;
    showAlertState();
  }

  // ---- charts --------------------------------------------------------------------------

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    var magnitude = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (value <= steps[i] * magnitude) return steps[i] * magnitude;
    }
    return 10 * magnitude;
  }

  // the fewest decimals that write a grid step exactly (0.25: 2, 2.5: 1, 250: 0)
  function axisDecimals(step) {
    for (var d = 0; d < 6; d++) {
      var scaled = step * Math.pow(10, d);
      if (Math.abs(scaled - Math.round(scaled)) < 1e-6 * Math.max(1, scaled)) return d;
    }
    return 6;
  }

  // "0.25", "0.5", "1", "7,500": no trailing zeros, no lone point
  function axisLabel(value, decimals) {
    return value.toLocaleString("en-US", { minimumFractionDigits: 0, maximumFractionDigits: decimals });
  }

  // The charts and the event timeline share these gutters, so one instant is one x on all of them.
  var GUTTER_LEFT = 44, GUTTER_RIGHT = 8;

  function isNum(v) { return typeof v === "number" && isFinite(v); }

  // index of the point nearest to x (points sorted by x), or -1
  function nearest(points, x) {
    var lo = 0, hi = points.length - 1;
    if (hi < 0) return -1;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (points[mid][0] < x) lo = mid + 1; else hi = mid;
    }
    if (lo > 0 && Math.abs(points[lo - 1][0] - x) <= Math.abs(points[lo][0] - x)) lo -= 1;
    return lo;
  }

  function wallClock(x, wall) {
    return wall == null ? "" : clock(new Date((x + wall) * 1000));
  }

  // series: [{points: [[x, y]], color, dash, fill}]; options: window, endX, wall (unix - x), min, max,
  // integer, step, bands ([[x0, x1, status]]), markers ([[x, kind]]), hoverT. Returns the y of each
  // series nearest the hover instant (or null), and the instant itself.
  function drawChart(canvasId, series, options) {
    var canvas = $(canvasId);
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth;
    var height = canvas.clientHeight;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    var ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    var left = GUTTER_LEFT, right = GUTTER_RIGHT, top = 8, bottom = 20;
    var plotW = Math.max(10, width - left - right);
    var plotH = Math.max(10, height - top - bottom);
    var values = [];
    series.forEach(function (s) { s.points.forEach(function (p) { if (isNum(p[1])) values.push(p[1]); }); });
    var minY = options.min != null ? options.min : Math.min.apply(null, values.concat([0]));
    var maxY = options.max != null ? options.max : niceMax(Math.max.apply(null, values.concat([minY])));
    // values all equal (all zero: no load, a follower never behind): a plain 0..1 axis, not a zero-height one
    if (!(maxY > minY)) maxY = minY + 1;
    // gridlines: four, or for a chart of whole numbers (terms) one per whole step, so each is
    // labelled (a term chart of 0..5 in quarters labelled only 0 and 5)
    var steps = 4;
    if (options.integer) {
      // from the largest value itself, not a "nice" 10 for a 6: the steps below are whole already
      var highest = options.max != null ? options.max : Math.max.apply(null, values.concat([minY]));
      maxY = Math.max(Math.ceil(highest), minY + 1);
      var range = maxY - minY;
      if (range <= 5) {
        steps = range;
      } else {
        maxY = minY + 4 * Math.ceil(range / 4);
      }
    }
    var decimals = axisDecimals((maxY - minY) / 4);
    var span = options.window;
    var endX = options.endX;
    var startX = endX - span;
    var xOf = function (x) { return left + plotW * (x - startX) / span; };
    var yOf = function (v) { return top + plotH - plotH * (v - minY) / ((maxY - minY) || 1); };
    var clampX = function (x) { return Math.min(left + plotW, Math.max(left, xOf(x))); };

    // health bands behind everything: amber / red where the cluster was not HEALTHY
    (options.bands || []).forEach(function (band) {
      if (band[2] === "HEALTHY" || band[1] < startX) return;
      var x0 = clampX(band[0]), x1 = clampX(band[1]);
      if (x1 - x0 < 0.5) x1 = x0 + 1;
      ctx.fillStyle = cssVar(band[2] === "UNHEALTHY" ? "--bad-bg" : band[2] === "DEGRADED" ? "--warn-bg" : "--grid");
      ctx.fillRect(x0, top, x1 - x0, plotH);
    });

    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = cssVar("--muted");
    ctx.strokeStyle = cssVar("--grid");
    ctx.lineWidth = 1;
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    for (var g = 0; g <= steps; g++) {
      var yValue = minY + (maxY - minY) * g / steps;
      var y = top + plotH - plotH * g / steps;
      ctx.beginPath();
      ctx.moveTo(left, Math.round(y) + 0.5);
      ctx.lineTo(left + plotW, Math.round(y) + 0.5);
      ctx.stroke();
      var whole = Math.abs(yValue - Math.round(yValue)) < 1e-9;
      var label = whole || options.round ? fmtInt(yValue) : axisLabel(yValue, decimals);
      if (!options.integer || whole) ctx.fillText(label, left - 6, y);
    }
    // a wall-clock axis (relative seconds when the source gives no wall time)
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    var ticks = plotW >= 600 ? [1, 0.75, 0.5, 0.25, 0] : [1, 0.5, 0];
    ticks.forEach(function (fraction) {
      var x = left + plotW * (1 - fraction);
      var at = endX - span * fraction;
      var text = options.wall != null ? wallClock(at, options.wall) : (fraction === 0 ? "now" : "-" + Math.round(span * fraction) + "s");
      ctx.fillText(text, Math.min(Math.max(x, left + 24), left + plotW - 24), top + plotH + 4);
    });
    // faults and elections, at their instant on every chart
    (options.markers || []).forEach(function (mark) {
      if (mark[0] < startX || mark[0] > endX) return;
      var x = Math.round(xOf(mark[0])) + 0.5;
      ctx.save();
      ctx.strokeStyle = cssVar(mark[1] === "fault" ? "--bad" : mark[1] === "noleader" ? "--warn" : "--accent");
      ctx.setLineDash(mark[1] === "fault" ? [4, 3] : [1, 3]);
      ctx.lineWidth = mark[1] === "fault" ? 1.5 : 1.2;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + plotH);
      ctx.stroke();
      ctx.restore();
    });
    var result = { at: null, values: series.map(function () { return null; }) };
    if (!values.length) {
      ctx.textBaseline = "middle";
      ctx.fillText("no data", left + plotW / 2, top + plotH / 2);
      return result;
    }
    series.forEach(function (s, index) {
      var visible = s.points.filter(function (p) { return p[0] >= startX && isNum(p[1]); });
      if (!visible.length) return;
      ctx.save();
      ctx.beginPath();
      visible.forEach(function (p, i) {
        var x = xOf(p[0]), y = yOf(p[1]);
        if (i === 0) { ctx.moveTo(x, y); return; }
        if (options.step) ctx.lineTo(x, yOf(visible[i - 1][1]));
        ctx.lineTo(x, y);
      });
      ctx.strokeStyle = cssVar(s.color || "--chart-line");
      if (s.dash) ctx.setLineDash(s.dash);
      ctx.lineWidth = index === 0 ? 1.6 : 1.3;
      ctx.stroke();
      if (index === 0 && s.fill !== false) {
        ctx.setLineDash([]);
        ctx.lineTo(xOf(visible[visible.length - 1][0]), top + plotH);
        ctx.lineTo(xOf(visible[0][0]), top + plotH);
        ctx.closePath();
        ctx.fillStyle = cssVar("--chart-fill");
        ctx.fill();
      }
      ctx.restore();
    });
    // hover: a crosshair at the nearest sample, a dot on each series
    if (options.hoverT != null && options.hoverT >= startX && options.hoverT <= endX) {
      var first = series[0].points;
      var i0 = nearest(first, options.hoverT);
      var at = i0 >= 0 ? first[i0][0] : options.hoverT;
      result.at = at;
      var hx = Math.round(xOf(at)) + 0.5;
      ctx.save();
      ctx.strokeStyle = cssVar("--text");
      ctx.globalAlpha = 0.5;
      ctx.beginPath();
      ctx.moveTo(hx, top);
      ctx.lineTo(hx, top + plotH);
      ctx.stroke();
      ctx.restore();
      series.forEach(function (s, index) {
        var i = nearest(s.points, at);
        if (i < 0 || Math.abs(s.points[i][0] - at) > span / 50 + 1e-9) return;
        var v = s.points[i][1];
        result.values[index] = isNum(v) ? v : null;
        if (!isNum(v)) return;
        ctx.beginPath();
        ctx.arc(hx, yOf(v), 3, 0, Math.PI * 2);
        ctx.fillStyle = cssVar(s.color || "--chart-line");
        ctx.fill();
      });
    }
    return result;
  }

  // [[from, to, status]] runs of one value along the samples
  function runsOf(samples, valueOf, endX) {
    var runs = [];
    samples.forEach(function (s) {
      var x = clockOf(s), v = valueOf(s);
      var last = runs[runs.length - 1];
      if (last && last[2] === v) { last[1] = x; return; }
      if (last) last[1] = x;
      runs.push([x, x, v]);
    });
    if (runs.length && endX != null) runs[runs.length - 1][1] = Math.max(runs[runs.length - 1][1], endX);
    return runs;
  }

  function clockOf(s) { return typeof s.sim_time === "number" ? s.sim_time : s.timestamp; }

  // unix time minus the chart clock, from the newest sample that has both
  function wallOffset(samples) {
    for (var i = samples.length - 1; i >= 0; i--) {
      var s = samples[i];
      if (isNum(s.timestamp) && isNum(s.sim_time)) return s.timestamp - s.sim_time;
      if (isNum(s.timestamp)) return 0;
    }
    return null;
  }

  function eventMarkers() {
    var marks = [];
    state.events.forEach(function (e) {
      if (e.kind === "fault") marks.push([e.t, "fault"]);
      else if (e.kind === "leader" && !e.shard && (e.election || e.leader == null)) marks.push([e.t, e.leader == null ? "noleader" : "leader"]);
    });
    return marks;
  }

  var CHARTS = [
    { id: "chart-throughput", digits: 1, series: [{ get: function (s) { return (s.performance || {}).throughput_ops; } }] },
    { id: "chart-latency", digits: 1, unit: " ms", series: [
      { get: function (s) { return (s.performance || {}).avg_latency_ms; }, label: "avg" },
      { get: function (s) { return (s.performance || {}).p99_latency_ms; }, label: "p99", color: "--p99", dash: [5, 3] },
    ] },
    { id: "chart-healthy", digits: 0, options: { min: 0, integer: true, step: true }, series: [{ get: function (s) { return (s.cluster || {}).healthy_nodes; }, color: "--ok" }] },
    { id: "chart-term", digits: 0, options: { integer: true, step: true }, series: [{ get: function (s) { return (s.cluster || {}).current_term; } }] },
  ];

  function captionText(chart, values, at, wall) {
    var parts = values.map(function (v, i) {
      var label = chart.series[i].label;
      return (label ? label + " " : "") + fmtNum(v, chart.digits);
    });
    return (at != null ? wallClock(at, wall) + " · " : "") + parts.join(" · ") + (chart.unit && values.some(isNum) ? chart.unit : "");
  }

  // the window the charts show: the held samples' extent (at least a minute), at most the duration
  var MIN_WINDOW = 60;
  function shownWindow(samples, duration) {
    var extent = samples.length > 1 ? clockOf(samples[samples.length - 1]) - clockOf(samples[0]) : 0;
    return Math.max(1, Math.min(duration || MIN_WINDOW, Math.max(MIN_WINDOW, extent)));
  }

  function renderCharts(history) {
    var samples = history.samples || [];
    var windowSeconds = shownWindow(samples, history.duration || state.retention);
    setText("history-window", "last " + Math.round(windowSeconds) + " s · " + plural(samples.length, "sample"));
    $("history-window").setAttribute("data-last-sequence", state.lastSequence == null ? "" : String(state.lastSequence));
    var size = samples.length ? ((samples[samples.length - 1].cluster || {}).cluster_size || 1) : 1;
    var endX = samples.length ? clockOf(samples[samples.length - 1]) : 0;
    var wall = wallOffset(samples);
    // the events' times are drawn with this offset: list them again when it is new or has moved
    // (a restarted server's run: its clock starts again at 0), not for a sample's jitter
    var moved = wall != null && (state.wall == null || Math.abs(wall - state.wall) > 0.5);
    state.wall = wall;
    if (moved) renderEventList();
    var bands = runsOf(samples, function (s) { return (s.cluster || {}).health_status || "UNKNOWN"; }, endX);
    var markers = eventMarkers();
    var hovering = state.hoverT != null;
    CHARTS.forEach(function (chart) {
      var series = chart.series.map(function (s) {
        return { points: samples.map(function (x) { return [clockOf(x), s.get(x)]; }), color: s.color, dash: s.dash };
      });
      var options = { window: windowSeconds, endX: endX, wall: wall, bands: bands, markers: markers, hoverT: state.hoverT };
      Object.keys(chart.options || {}).forEach(function (k) { options[k] = chart.options[k]; });
      if (chart.id === "chart-healthy") options.max = size;
      if (chart.id === "chart-term") {
        var terms = series[0].points.map(function (p) { return p[1]; }).filter(isNum);
        options.min = terms.length ? Math.max(0, Math.min.apply(null, terms) - 1) : 0;
        options.max = terms.length ? Math.max.apply(null, terms) + 1 : 1;
      }
      var drawn = drawChart(chart.id, series, options);
      var caption = $(chart.id + "-last");
      if (hovering && drawn.at != null) {
        setText(chart.id + "-last", captionText(chart, drawn.values, drawn.at, wall));
        caption.setAttribute("data-hover", "true");
      } else {
        var last = series.map(function (s) { return s.points.length ? s.points[s.points.length - 1][1] : null; });
        setText(chart.id + "-last", last.some(function (v) { return v != null; }) ? captionText(chart, last, null, wall) : "");
        caption.setAttribute("data-hover", "false");
      }
    });
    renderTimeline({ startX: endX - windowSeconds, endX: endX, span: windowSeconds, wall: wall, bands: bands });
  }

  // pointer over a chart or the timeline: the instant under it, on all of them
  function setupHover() {
    var pending = false;
    var targets = CHARTS.map(function (c) { return $(c.id); }).concat([$("timeline")]);
    targets.forEach(function (el) {
      el.addEventListener("pointermove", function (event) {
        if (!state.history || !state.history.samples.length) return;
        var rect = el.getBoundingClientRect();
        var fraction = (event.clientX - rect.left - GUTTER_LEFT) / Math.max(1, rect.width - GUTTER_LEFT - GUTTER_RIGHT);
        fraction = Math.min(1, Math.max(0, fraction));
        var samples = state.history.samples;
        var span = shownWindow(samples, state.history.duration || state.retention);
        var endX = clockOf(samples[samples.length - 1]);
        state.hoverT = endX - span + fraction * span;
        if (pending) return;
        pending = true;
        window.requestAnimationFrame(function () { pending = false; if (state.history) renderCharts(state.history); });
      });
      el.addEventListener("pointerleave", function () {
        state.hoverT = null;
        if (state.history) renderCharts(state.history);
      });
    });
  }

  // ---- events (GET /api/events?since=) and the timeline under the charts -----------------

  var MAX_EVENTS = 2000;
  var EVENTS_LISTED = 20;

  function forgetEvents() {
    state.events = [];
    state.eventSeq = null;
    state.sawLeader = {};
    state.eventsRendered = false;
  }

  function fetchEvents(timeoutMs, again) {
    var path = "/api/events" + (state.eventSeq == null ? "" : "?since=" + encodeURIComponent(state.eventSeq));
    return fetchJson(path, timeoutMs).then(function (answer) {
      var body = answer.body;
      if (answer.status !== 200 || !body || !Array.isArray(body.events)) return;
      // the sequence went back (another collector, a replay sought back): start the timeline over
      if (state.eventSeq != null && typeof body.last === "number" && body.last < state.eventSeq) {
        forgetEvents();
        if (!again) return fetchEvents(timeoutMs, true);
        return;
      }
      var added = 0;
      body.events.forEach(function (e) {
        if (state.eventSeq != null && e.seq <= state.eventSeq) return;
        // an election: any new leader or term after the first one the page saw (also after "no leader")
        if (e.kind === "leader") {  // per Raft group in a sharded cluster (e.shard)
          var group = e.shard == null ? 0 : e.shard;
          e.election = e.leader != null && (!!state.sawLeader[group] || e.previous != null);
          state.sawLeader[group] = true;
        }
        state.events.push(e);
        added++;
      });
      if (state.events.length > MAX_EVENTS) state.events.splice(0, state.events.length - MAX_EVENTS);
      if (typeof body.last === "number") state.eventSeq = body.last;
      if (added || !state.eventsRendered) renderEventList();
    });
  }

  function eventText(e) {
    switch (e.kind) {
      case "leader":
        var where = e.shard == null ? "" : "shard " + e.shard + ": ";
        if (e.leader == null) return where + "no leader" + (e.previous ? " (" + e.previous + " lost it)" : "");
        return where + (e.election ? "election: " : "leader ") + e.leader + " leads term " + fmtInt(e.term) +
          (e.previous && e.previous !== e.leader ? " (was " + e.previous + ")" : "");
      case "node":
        if (e.member === "left") return e.node + " left the membership (was " + (e.from || "—") + ")";
        if (e.member === "joined") return e.node + " joined the membership: " + e.to + (e.reason && e.to === "DOWN" ? " (" + e.reason + ")" : "");
        return e.node + " " + (e.from || "—") + " → " + (e.to === "STALE_LEADER" ? "STALE LEADER" : e.to) + (e.reason && e.to === "DOWN" ? " (" + e.reason + ")" : "");
      case "health":
        return "health " + (e.from || "—") + " → " + e.to + (e.reasons && e.reasons.length ? ": " + e.reasons.join(", ") : "");
      case "alert":
        return "alert " + e.name + " " + e.status + (e.message ? ": " + e.message : "");
      case "fault":
        return "fault: " + faultText(e);
      default:
        return String(e.kind);
    }
  }

  // a fault's arguments as people read them: a partition's groups apart ("node2 | node1,node3"),
  // a network setting without its name twice ("loss 0.1", not "loss loss 0.1")
  function faultArg(a) {
    if (!Array.isArray(a)) return String(a);
    if (a.some(Array.isArray)) return a.map(function (g) { return Array.isArray(g) ? g.join(",") : String(g); }).join(" | ");
    return a.join(",");
  }

  function faultText(e) {
    var args = Array.isArray(e.args) ? e.args.slice() : [];
    if (args.length > 1 && args[0] === e.fault) args.shift();
    if (e.fault === "slow" && args.length === 2 && isNum(args[1])) args[1] = "×" + args[1];  // "slow node1 ×30"
    return e.fault + (args.length ? " " + args.map(faultArg).join(" ") : "");
  }

  // the node a fault is about, when that is all it names (a crash, a pause, a restart)
  function faultNode(e) {
    return Array.isArray(e.args) && e.args.length === 1 && typeof e.args[0] === "string" ? e.args[0] : null;
  }

  // faults at one instant as one mark: "crash node1,node3,node5", "heal · restart node2"
  function faultGroups(faults) {
    var groups = [];
    faults.forEach(function (e) {
      var last = groups[groups.length - 1];
      if (last && Math.abs(last.t - e.t) < 1e-6) last.events.push(e);
      else groups.push({ t: e.t, events: [e] });
    });
    groups.forEach(function (g) {
      var kinds = [], byKind = {};
      g.events.forEach(function (e) {
        if (!(e.fault in byKind)) { byKind[e.fault] = []; kinds.push(e.fault); }
        byKind[e.fault].push(e);
      });
      var parts = [];
      kinds.forEach(function (kind) {
        var events = byKind[kind];
        var nodes = events.map(faultNode);
        if (nodes.every(function (n) { return n != null; })) parts.push(kind + " " + nodes.join(","));
        else events.forEach(function (e) { parts.push(faultText(e)); });
      });
      g.kinds = kinds;
      g.nodes = g.events.map(faultNode).filter(function (n) { return n != null; });
      g.text = parts.join(" · ");
      g.short = kinds.join(" · ");
    });
    return groups;
  }

  function eventItem(e) {
    var li = document.createElement("li");
    li.className = "ev ev-" + e.kind + (e.kind === "alert" ? " ev-" + e.status + " sev-" + String(e.severity || "info").toLowerCase() : "");
    li.setAttribute("data-kind", e.kind);
    li.setAttribute("data-seq", String(e.seq));
    if (e.kind === "leader") {
      li.setAttribute("data-leader", e.leader || "");
      li.setAttribute("data-term", e.term == null ? "" : String(e.term));
    }
    if (e.kind === "alert") li.setAttribute("data-status", e.status || "");
    var when = document.createElement("time");
    when.className = "num";
    // on the charts' clock (a simulator may run faster than the wall), so a time here is a time there
    when.textContent = state.wall != null && isNum(e.t) ? wallClock(e.t, state.wall) : (isNum(e.timestamp) ? clock(new Date(e.timestamp * 1000)) : "");
    li.appendChild(when);
    li.appendChild(span(e.kind, "ev-kind"));
    li.appendChild(span(eventText(e), "ev-text"));
    return li;
  }

  function renderEventList() {
    state.eventsRendered = true;
    var shown = state.events.slice(-EVENTS_LISTED).reverse();
    $("event-list").replaceChildren.apply($("event-list"), shown.map(eventItem));
    $("events-none").hidden = shown.length > 0;
    setText("events-caption", state.events.length ? "newest first · " + shown.length + " of " + state.events.length : "");
  }

  function pct(x, view) { return Math.min(100, Math.max(0, (x - view.startX) / view.span * 100)); }

  function placeSpan(el, x0, x1, view) {
    var a = pct(x0, view), b = pct(x1, view);
    el.style.left = a + "%";
    el.style.width = Math.max(b - a, 0.4) + "%";
  }

  function mark(className, x, view, text, title) {
    var at = pct(x, view);
    // near the right edge the label goes to the left of its line, so it is never cut
    var el = span(text || "", "tl-mark " + className + (at > 80 && text ? " flip" : ""));
    el.style.left = at + "%";
    el.title = title;
    return el;
  }

  // label widths in a lane's font, measured on a canvas (no layout per label)
  var measureContext = null, measured = {}, measuredCount = 0;
  function textWidth(text, font) {
    var key = font + "|" + text;
    if (!(key in measured)) {
      if (measuredCount > 2000) { measured = {}; measuredCount = 0; }
      measureContext = measureContext || document.createElement("canvas").getContext("2d");
      measureContext.font = font;
      measured[key] = measureContext.measureText(text).width;
      measuredCount++;
    }
    return measured[key];
  }

  // A lane's marks, labelled so that no label covers another one or another mark's line: each mark
  // takes the first of its texts (the full one, then a shorter one) that fits right of its line before
  // the next mark, else left of it after what is drawn already, else none; its title still tells.
  // items: [{t, className, title, texts, attrs}] in time order.
  var LABEL_GAP = 2;
  function labelMarks(lane, items, view) {
    var els = items.map(function (it) {
      var el = mark(it.className, it.t, view, "", it.title);
      Object.keys(it.attrs || {}).forEach(function (k) { el.setAttribute(k, it.attrs[k]); });
      return el;
    });
    lane.replaceChildren.apply(lane, els);
    if (!els.length) return;
    var laneWidth = lane.clientWidth;
    if (!laneWidth) return;  // not laid out (a hidden lane): marks only
    var font = getComputedStyle(els[0]).font;
    var xs = items.map(function (it) { return pct(it.t, view) / 100 * laneWidth; });
    var taken = 0;  // the right end of what is drawn so far, labels and lines
    items.forEach(function (it, i) {
      var x = xs[i];
      var next = i + 1 < xs.length ? xs[i + 1] : Infinity;
      var placed = false;
      for (var k = 0; k < it.texts.length && !placed; k++) {
        var text = it.texts[k];
        var w = textWidth(text, font);
        // the box: line (2) + padding (3) + text right of x; or text + padding (3) left of x and the line
        if (x + 5 + w + LABEL_GAP <= Math.min(next, laneWidth) && x >= taken - 0.5) {
          els[i].textContent = text;
          taken = x + 5 + w;
          placed = true;
        } else if (x - 3 - w - LABEL_GAP >= taken) {
          els[i].textContent = text;
          els[i].classList.add("flip");
          taken = x + 2;
          placed = true;
        }
      }
      if (!placed) taken = Math.max(taken, x + 2);
    });
  }

  // the lanes: health bands, elections with their terms, faults, alerts from firing to resolved
  function renderTimeline(view) {
    var inView = function (e) { return e.t >= view.startX && e.t <= view.endX + 1e-9; };
    var wall = view.wall;
    var at = function (x) { return wall != null ? wallClock(x, wall) : fmtNum(x, 1) + " s"; };
    $("tl-health").replaceChildren.apply($("tl-health"), view.bands.filter(function (b) { return b[1] >= view.startX; }).map(function (b) {
      var el = span("", "tl-band band-" + b[2]);
      placeSpan(el, Math.max(b[0], view.startX), b[1], view);
      el.title = b[2] + " from " + at(b[0]);
      return el;
    }));
    // the lane is the cluster's leader (shard 0's in a sharded cluster); the list has every shard's
    var leaders = state.events.filter(function (e) { return e.kind === "leader" && !e.shard && inView(e); }).map(function (e) {
      return { t: e.t, className: "tl-leader" + (e.leader == null ? " tl-noleader" : ""), title: at(e.t) + " " + eventText(e),
        texts: e.leader == null ? ["none"] : ["T" + e.term + " " + e.leader, "T" + e.term],
        attrs: { "data-term": e.term == null ? "" : String(e.term), "data-leader": e.leader || "" } };
    });
    labelMarks($("tl-leader"), leaders, view);
    var faults = state.events.filter(function (e) { return e.kind === "fault"; });
    $("tl-fault-row").hidden = faults.length === 0;  // a source that injects nothing has no fault lane
    labelMarks($("tl-fault"), faultGroups(faults.filter(inView)).map(function (g) {
      return { t: g.t, className: "tl-fault", title: at(g.t) + " fault: " + g.text, texts: [g.text, g.short],
        attrs: { "data-fault": g.kinds.join(" "), "data-nodes": g.nodes.join(","), "data-count": String(g.events.length) } };
    }), view);
    // alert episodes: firing → resolved (or still firing at the right edge), in up to 3 rows
    var open = {}, episodes = [];
    state.events.forEach(function (e) {
      if (e.kind !== "alert") return;
      var key = e.name + JSON.stringify(e.labels || {});
      if (e.status === "firing") {
        open[key] = { from: e.t, to: null, event: e };
        episodes.push(open[key]);
      } else if (open[key]) {
        open[key].to = e.t;
        delete open[key];
      } else {
        episodes.push({ from: view.startX, to: e.t, event: e });
      }
    });
    var rows = [];
    var bars = episodes.filter(function (ep) { return (ep.to == null ? view.endX : ep.to) >= view.startX; }).map(function (ep) {
      var to = ep.to == null ? view.endX : ep.to;
      var row = 0;
      while (row < rows.length && rows[row] > ep.from) row++;
      if (row > 2) row = 2;
      rows[row] = to;
      var sev = String(ep.event.severity || "info").toLowerCase();
      var el = span("", "tl-alert sev-" + sev + (ep.to == null ? " firing" : " resolved"));
      placeSpan(el, Math.max(ep.from, view.startX), to, view);
      el.style.top = (row * 6) + "px";
      el.title = ep.event.name + (ep.to == null ? " firing since " + at(ep.from) : " from " + at(ep.from) + " to " + at(ep.to)) +
        (ep.event.message ? ": " + ep.event.message : "");
      el.setAttribute("data-alert", ep.event.name || "");
      return el;
    });
    $("tl-alert").replaceChildren.apply($("tl-alert"), bars);
    var laneWidth = $("tl-leader").clientWidth || 600;
    var ticks = (laneWidth >= 600 ? [0, 0.25, 0.5, 0.75, 1] : [0, 0.5, 1]).map(function (f) {
      var el = span(wall != null ? wallClock(view.startX + f * view.span, wall) : (f === 1 ? "now" : "-" + Math.round(view.span * (1 - f)) + "s"), "tl-tick");
      el.style.left = (f * 100) + "%";
      return el;
    });
    $("tl-axis").replaceChildren.apply($("tl-axis"), ticks);
    var cursor = $("tl-cursor");
    if (state.hoverT != null && state.hoverT >= view.startX) {
      cursor.hidden = false;
      cursor.style.left = "calc(" + GUTTER_LEFT + "px + (100% - " + (GUTTER_LEFT + GUTTER_RIGHT) + "px) * " + ((state.hoverT - view.startX) / view.span) + ")";
    } else {
      cursor.hidden = true;
    }
  }

  // ---- the cluster as Raft: role, term, and where each log is against the leader's commit ----

  var MIN_SPAN = 24;        // the strip shows at least this many entries
  var TICKED_SPAN = 80;     // up to this many, one tick per entry

  function byName(a, b) { return a.localeCompare(b, "en", { numeric: true }); }

  function isUp(node) { return !!node && node.up !== false && node.state !== "DOWN"; }

  // a hue per term, so a node in another term stands out (the same term: the same colour)
  function termColour(term) {
    return isNum(term) ? "hsl(" + Math.round((term * 137.508) % 360) + ", 60%, 45%)" : "";
  }

  // how far behind, in entries, against what the cluster commits: at 200 orders/s, 30 entries is
  // a heartbeat's worth (low); more than ~2 s of commits is far (high)
  function lagClass(behind, rate) {
    if (!(behind > 0)) return "lag-none";
    var r = rate || 0;
    if (behind <= Math.max(10, r * 0.2)) return "lag-low";
    if (behind <= Math.max(100, r * 2)) return "lag-mid";
    return "lag-high";
  }

  function fmtMs(ms) {
    if (!isNum(ms)) return "—";
    return ms >= 1000 ? fmtNum(ms / 1000, 1) + " s" : Math.round(ms) + " ms";
  }

  function raftRow(nodeId) {
    var box = $("raft-nodes");
    var row = box.querySelector('.raft-node[data-node-id="' + CSS.escape(nodeId) + '"]');
    if (row) return row;
    row = document.createElement("div");
    row.className = "raft-node";
    row.setAttribute("data-node-id", nodeId);
    row.setAttribute("role", "button");
    row.tabIndex = 0;
    row.title = "Open " + nodeId + "'s history";
    row.innerHTML = '<div class="rn-head"><span class="rn-dot" aria-hidden="true"></span><span class="node-name"></span>' +
      '<span class="rn-role state"></span><span class="rn-term num"></span></div>' +
      '<div class="rn-log"><div class="log-strip"><span class="seg seg-applied"></span><span class="seg seg-committed"></span>' +
      '<span class="seg seg-behind"></span><span class="term-band" aria-hidden="true"></span>' +
      '<span class="mark mark-applied"></span><span class="mark mark-commit"></span></div>' +
      '<div class="rn-log-note num"></div></div><div class="rn-facts num"></div>';
    row.querySelector(".node-name").textContent = nodeId;
    box.appendChild(row);
    return row;
  }

  // the band under a log strip: each run of entries in its term's colour, over [from, from + width];
  // runs are [[first index, term], ...] (the node's log_terms), each lasting until the next
  function termBand(runs, last, from, width) {
    if (!Array.isArray(runs) || !runs.length || !(width > 0)) return { image: "", terms: "", title: "" };
    var stops = [], terms = [], parts = [];
    var to = from + width;
    for (var i = 0; i < runs.length; i++) {
      var start = runs[i][0], term = runs[i][1];
      var end = i + 1 < runs.length ? runs[i + 1][0] - 1 : Math.max(last, start);
      terms.push(term);
      parts.push("term " + term + ": #" + fmtInt(start) + "–" + (i + 1 < runs.length ? fmtInt(end) : ""));
      var a = Math.max(start - 1, from), b = Math.min(end, to);
      if (b <= a) continue;
      var pa = (a - from) / width * 100, pb = (b - from) / width * 100, colour = termColour(term);
      stops.push("transparent " + pa + "%", colour + " " + pa + "%", colour + " " + pb + "%", "transparent " + pb + "%");
    }
    return { image: stops.length ? "linear-gradient(to right, " + stops.join(", ") + ")" : "", terms: terms.join(","),
             title: "entries by term (" + parts.join(", ") + ")" };
  }

  function fact(label, value, title) {
    var el = document.createElement("span");
    el.className = "fact";
    el.appendChild(span(label, "fact-label"));
    el.appendChild(document.createTextNode(" " + value));
    if (title) el.title = title;
    return el;
  }

  function renderRaft(doc) {
    var nodes = doc.nodes || {};
    var cluster = doc.cluster || {};
    var perf = doc.performance || {};
    var ids = Object.keys(nodes).sort(byName);
    var box = $("raft-nodes");
    Array.prototype.slice.call(box.children).forEach(function (row) {
      if (!(row.getAttribute("data-node-id") in nodes)) box.removeChild(row);
    });
    $("raft-empty").hidden = ids.length > 0;
    var leaderId = cluster.leader_node || cluster.leader || null;
    var leaderDoc = leaderId ? nodes[leaderId] : null;
    var clusterTerm = cluster.current_term;
    // the right edge: the leader's commit (without a leader: the furthest commit of a live node)
    var commits = ids.filter(function (id) { return isUp(nodes[id]) && isNum(nodes[id].commit_index); })
      .map(function (id) { return nodes[id].commit_index; });
    var top = leaderDoc && isUp(leaderDoc) && isNum(leaderDoc.commit_index) ? leaderDoc.commit_index
      : (commits.length ? Math.max.apply(null, commits) : null);
    var behindOf = function (n) { return top != null && isNum(n.commit_index) ? Math.max(0, top - n.commit_index) : null; };
    var worst = 0;
    ids.forEach(function (id) {
      var b = isUp(nodes[id]) ? behindOf(nodes[id]) : null;
      if (b != null && b > worst) worst = b;
    });
    var from = top == null ? 0 : Math.max(0, top - Math.max(MIN_SPAN, niceMax(worst * 1.25)));
    var width = top == null ? 1 : Math.max(1, top - from);
    var pos = function (x) { return Math.min(100, Math.max(0, (x - from) / width * 100)); };
    var sharded = Array.isArray(doc.shards) && doc.shards.length > 0;
    setText("raft-caption", (leaderId ? "leader " + leaderId : "no leader") + " · term " + fmtInt(clusterTerm) +
      (sharded ? " · shard 0" : "") + (top != null ? " · the last " + fmtInt(width) + " entries" : ""));
    setText("raft-axis-from", top == null ? "" : "#" + fmtInt(from));
    setText("raft-axis-to", top == null ? "" : (leaderDoc && isUp(leaderDoc) ? "leader's commit #" : "highest commit #") + fmtInt(top));
    // the pace the cluster commits at: the median over the retained history, not this interval's
    // alone (a partition's interval commits a few orders, and 670 behind read "≈ 117 s")
    var paces = ((state.history && state.history.samples) || []).slice(-60).map(function (s) {
      return (s.performance || {}).throughput_ops;
    }).filter(function (v) { return isNum(v) && v > 0; }).sort(function (a, b) { return a - b; });
    var now = isNum(perf.throughput_ops) && perf.throughput_ops > 0 ? perf.throughput_ops : null;
    var rate = paces.length ? Math.max(paces[Math.floor(paces.length / 2)], now || 0) : now;
    var edge = leaderDoc && isUp(leaderDoc) ? "the leader's" : "the highest";
    ids.forEach(function (nodeId, position) {
      var node = nodes[nodeId] || {};
      var row = raftRow(nodeId);
      if (box.children[position] !== row) box.insertBefore(row, box.children[position] || null);
      var up = isUp(node);
      var shown = up ? (node.state || "UNKNOWN") : "DOWN";
      var isLeader = up && nodeId === leaderId && shown === "LEADER";
      var behind = behindOf(node);
      row.className = "raft-node role-" + shown + (isLeader ? " is-leader" : "");
      row.setAttribute("data-state", shown);
      row.setAttribute("data-behind", behind == null ? "" : String(behind));
      row.setAttribute("data-lag", node.replication_lag == null ? "" : String(node.replication_lag));
      var role = row.querySelector(".rn-role");
      role.className = "rn-role state state-" + shown;
      role.textContent = shown === "STALE_LEADER" ? "STALE LEADER" : shown === "DOWN" && node.down_reason ? "DOWN (" + node.down_reason + ")" : shown;
      var term = row.querySelector(".rn-term");
      term.textContent = "term " + fmtInt(node.term);
      term.style.color = termColour(node.term);
      term.style.borderColor = termColour(node.term);
      var strip = row.querySelector(".log-strip");
      var ticked = top != null && width <= TICKED_SPAN;
      strip.classList.toggle("ticked", ticked);
      strip.style.backgroundSize = ticked ? (100 / width) + "% 100%" : "";
      var commit = isNum(node.commit_index) ? node.commit_index : null;
      var applied = isNum(node.last_applied) ? node.last_applied : null;
      var segApplied = strip.querySelector(".seg-applied"), segCommitted = strip.querySelector(".seg-committed");
      var segBehind = strip.querySelector(".seg-behind");
      var known = top != null && commit != null;
      strip.classList.toggle("unknown", !known);
      strip.classList.toggle("past-left", known && commit < from);
      var pa = applied != null ? pos(applied) : 0, pc = known ? pos(commit) : 0;
      segApplied.style.width = (known ? Math.min(pa, pc) : 0) + "%";
      segCommitted.style.left = Math.min(pa, pc) + "%";
      segCommitted.style.width = (known ? Math.max(0, pc - pa) : 0) + "%";
      var lagged = lagClass(behind, rate);
      row.setAttribute("data-lag-class", lagged);
      segBehind.className = "seg seg-behind " + lagged;
      segBehind.style.left = pc + "%";
      segBehind.style.width = (known ? 100 - pc : 0) + "%";
      strip.querySelector(".mark-commit").style.left = pc + "%";
      strip.querySelector(".mark-applied").style.left = pa + "%";
      strip.querySelector(".mark-commit").hidden = !known;
      strip.querySelector(".mark-applied").hidden = !known || applied == null;
      var band = termBand(known ? node.log_terms : null, Math.max(commit || 0, top || 0), from, width);
      var bandEl = strip.querySelector(".term-band");
      bandEl.style.backgroundImage = band.image;
      bandEl.hidden = !band.image;
      strip.setAttribute("data-terms", band.terms);
      strip.title = "commit " + fmtInt(commit) + ", applied " + fmtInt(applied) + (behind ? ", " + fmtInt(behind) + " behind " + fmtInt(top) : "") +
        (band.title ? "; " + band.title : "");
      var note;
      if (!known) note = "commit " + fmtInt(commit);
      // its commit index against the right edge's: what it knows is committed, not what it holds
      // (that is its lag, a fact below): a follower holding every entry can learn of the newest
      // commit a heartbeat later
      else if (behind > 0) note = "commit " + fmtInt(commit) + ", " + fmtInt(behind) + " behind " + edge +
        (rate ? " (" + (behind / rate < 0.01 ? "< 0.01" : "≈ " + fmtNum(behind / rate, behind / rate < 10 ? 2 : 0)) + " s)" : "");
      else note = (isLeader ? "leader · commit " : "at the commit · ") + fmtInt(commit);
      if (applied != null && commit != null && applied < commit) note += " · applied " + fmtInt(applied);
      if (!up) note = "last known: " + note;
      var noteEl = row.querySelector(".rn-log-note");
      if (noteEl.textContent !== note) noteEl.textContent = note;
      var facts = [];
      if (!up) {
        var seenAgo = isNum(node.last_seen) && isNum(doc.sim_time) ? doc.sim_time - node.last_seen : null;
        var seenAt = seenAgo != null && isNum(doc.timestamp) ? clock(new Date((doc.timestamp - seenAgo) * 1000)) : null;
        facts.push(fact("last seen", seenAt ? seenAt + " (" + fmtNum(seenAgo, 0) + " s ago)" : "—"));
      } else if (shown === "STALE_LEADER") {
        facts.push(fact("thinks it leads", "term " + fmtInt(node.term) + "; the cluster is in term " + fmtInt(clusterTerm)));
      } else if (isLeader) {
        facts.push(fact("leads", "term " + fmtInt(node.term)));
      } else {
        facts.push(fact("lag", node.replication_lag == null ? "—" : fmtInt(node.replication_lag) + (node.replication_lag === 1 ? " entry" : " entries"),
          "replication lag: committed entries the leader does not know this follower to hold (its commit minus the follower's match index)"));
        if ("last_contact_ms" in node) facts.push(fact("contact", fmtMs(node.last_contact_ms), "time since the leader last heard from it"));
      }
      if (isNum(node.log_length)) facts.push(fact("log", fmtInt(node.log_length) + " held", "log_length: entries held now (after compaction), not the last index"));
      row.querySelector(".rn-facts").replaceChildren.apply(row.querySelector(".rn-facts"), facts);
    });
  }

  // ---- one node's history (GET /api/node), opened by a click ---------------------------

  var NODE_DETAIL_MAX = 600;

  function reloadNodeDetail(doc) {
    var detail = state.nodeDetail;
    if (!detail) return;
    if (doc.nodes && detail.id in doc.nodes) openNode(detail.id, true);
    else closeNode();
  }

  function openNode(nodeId, quiet) {
    var duration = Math.max(10, Math.min(state.retention, NODE_DETAIL_MAX));
    var detail = state.nodeDetail = { id: nodeId, rows: null, duration: duration };
    var panel = $("node-detail");
    panel.hidden = false;
    panel.setAttribute("data-node-id", nodeId);
    panel.setAttribute("data-rows", "");
    setText("node-detail-title", nodeId);
    setText("node-detail-caption", "loading…");
    document.querySelectorAll(".raft-node.selected, #nodes-body tr.selected").forEach(function (el) { el.classList.remove("selected"); });
    document.querySelectorAll('[data-node-id="' + CSS.escape(nodeId) + '"]').forEach(function (el) {
      if (el.classList.contains("raft-node") || el.tagName === "TR") el.classList.add("selected");
    });
    if (!quiet) panel.scrollIntoView({ block: "nearest" });
    fetchJson("/api/node?node_id=" + encodeURIComponent(nodeId) + "&duration=" + duration, 10000).then(function (answer) {
      if (state.nodeDetail !== detail) return;  // closed, or opened again since (another node, another run)
      if (answer.status !== 200 || !answer.body) {
        setText("node-detail-caption", (answer.body && answer.body.error) || "no history (HTTP " + answer.status + ")");
        return;
      }
      detail.rows = (answer.body.history || []).slice();
      renderNodeDetail();
    }).catch(function () {
      if (state.nodeDetail === detail) setText("node-detail-caption", "could not load the history");
    });
  }

  function closeNode() {
    state.nodeDetail = null;
    $("node-detail").hidden = true;
    document.querySelectorAll(".raft-node.selected, #nodes-body tr.selected").forEach(function (el) { el.classList.remove("selected"); });
  }

  // each summary adds the node's newest values to the open history (no second download)
  function extendNodeDetail(doc) {
    var detail = state.nodeDetail;
    if (!detail || !detail.rows || !doc.nodes || !doc.nodes[detail.id] || !isNum(doc.sim_time)) return;
    var rows = detail.rows;
    var last = rows[rows.length - 1];
    if (last && isNum(last.sim_time) && doc.sim_time <= last.sim_time) return;
    var row = { timestamp: doc.timestamp, sim_time: doc.sim_time, node_id: detail.id };
    Object.keys(doc.nodes[detail.id]).forEach(function (k) { if (k !== "state_digest") row[k] = doc.nodes[detail.id][k]; });
    rows.push(row);
    while (rows.length && rows[0].sim_time < doc.sim_time - detail.duration) rows.shift();
    renderNodeDetail();
  }

  function nodeState(r) { return r.up === false ? "DOWN" : (r.state || "UNKNOWN"); }

  function renderNodeDetail() {
    var detail = state.nodeDetail;
    if (!detail || !detail.rows) return;
    var rows = detail.rows;
    var panel = $("node-detail");
    panel.setAttribute("data-rows", String(rows.length));
    if (!rows.length) {
      setText("node-detail-caption", "no samples in the last " + detail.duration + " s");
      return;
    }
    var newest = rows[rows.length - 1];
    var endX = clockOf(newest);
    var wall = wallOffset(rows);
    var shown = shownWindow(rows, detail.duration);
    var view = { startX: endX - shown, endX: endX, span: shown, wall: wall };
    setText("node-detail-caption", "last " + detail.duration + " s · " + plural(rows.length, "sample") + " · now " +
      nodeState(newest) + ", term " + fmtInt(newest.term));
    var runs = runsOf(rows, nodeState, endX);
    $("node-detail-states").replaceChildren.apply($("node-detail-states"), runs.map(function (r) {
      var el = span(r[2] === "STALE_LEADER" ? "stale" : r[2], "tl-band st-" + r[2]);
      placeSpan(el, Math.max(r[0], view.startX), r[1], view);
      el.title = r[2] + " from " + wallClock(r[0], wall);
      return el;
    }));
    var series = function (key) { return [{ points: rows.map(function (r) { return [clockOf(r), r[key]]; }) }]; };
    var base = { window: shown, endX: endX, wall: wall };
    [["node-chart-commit", "commit_index", { round: true }], ["node-chart-lag", "replication_lag", { min: 0 }],
      ["node-chart-term", "term", { integer: true, step: true }]].forEach(function (c) {
      var options = Object.assign({}, base, c[2]);
      var s = series(c[1]);
      if (c[1] === "term") {
        var terms = s[0].points.map(function (p) { return p[1]; }).filter(isNum);
        options.min = terms.length ? Math.max(0, Math.min.apply(null, terms) - 1) : 0;
        options.max = terms.length ? Math.max.apply(null, terms) + 1 : 1;
      }
      if (c[1] === "commit_index") {
        var commits = s[0].points.map(function (p) { return p[1]; }).filter(isNum);
        // at least 4 entries tall: a commit index that stands still (no load) gets 5 distinct whole labels
        if (commits.length) { options.min = Math.min.apply(null, commits); options.max = Math.max(options.min + 4, Math.max.apply(null, commits)); }
      }
      drawChart(c[0], s, options);
      setText(c[0] + "-last", fmtInt(newest[c[1]]));
    });
    // what changed: its state and its term, newest first
    var changes = [];
    rows.forEach(function (r, i) {
      var before = rows[i - 1];
      if (!before) return;
      if (nodeState(before) !== nodeState(r)) changes.push([r, nodeState(before) + " → " + nodeState(r) + (nodeState(r) === "DOWN" && r.down_reason ? " (" + r.down_reason + ")" : "")]);
      else if (before.term !== r.term) changes.push([r, "term " + fmtInt(before.term) + " → " + fmtInt(r.term)]);
    });
    var items = changes.slice(-12).reverse().map(function (c) {
      var li = document.createElement("li");
      li.className = "ev";
      var when = document.createElement("time");
      when.className = "num";
      when.textContent = isNum(c[0].timestamp) ? clock(new Date(c[0].timestamp * 1000)) : "";
      li.appendChild(when);
      li.appendChild(span(c[1], "ev-text"));
      return li;
    });
    if (!items.length) items = [span("No state or term change in this window.", "empty")];
    $("node-detail-changes").replaceChildren.apply($("node-detail-changes"), items);
  }

  function setupNodeClicks() {
    var open = function (event) {
      var target = event.target.closest("[data-node-id]");
      if (target) openNode(target.getAttribute("data-node-id"));
    };
    $("raft-nodes").addEventListener("click", open);
    $("raft-nodes").addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); open(event); }
    });
    $("nodes-body").addEventListener("click", open);
    $("node-detail-close").addEventListener("click", closeNode);
  }

  // ---- refresh loop --------------------------------------------------------------------

  // The charts read only these sections; the per-node ones would be most of the bytes.
  var HISTORY_FIELDS = "cluster,performance";

  function forgetHistory() {
    state.history = null;
    state.historyDuration = null;
    state.lastSequence = null;
  }

  // Merge an answer into the held history: a full window replaces it, a ?since= answer extends it and
  // the oldest samples fall out of the window, as they do on the server.
  function mergeHistory(body, full) {
    var incoming = body.samples || [];
    if (full || !state.history) {
      state.history = { duration: body.duration, interval: body.interval, samples: incoming.slice() };
    } else {
      var samples = state.history.samples;
      incoming.forEach(function (s) {
        if (state.lastSequence == null || s.sequence > state.lastSequence) samples.push(s);
      });
      state.history.duration = body.duration;
      if (samples.length) {
        var newest = samples[samples.length - 1];
        var from = typeof newest.sim_time === "number" ? newest.sim_time - body.duration : null;
        var drop = 0;
        while (from != null && drop < samples.length && !(samples[drop].sim_time > from)) drop++;
        if (drop) samples.splice(0, drop);
      }
    }
    var held = state.history.samples;
    state.lastSequence = held.length ? held[held.length - 1].sequence : null;
  }

  function fetchHistory(timeoutMs) {
    var duration = state.retention;
    var full = !state.history || state.historyDuration !== duration || state.lastSequence == null;
    var path = "/api/metrics/history?duration=" + encodeURIComponent(duration) + "&fields=" + HISTORY_FIELDS;
    if (!full) path += "&since=" + encodeURIComponent(state.lastSequence);
    return fetchJson(path, timeoutMs).then(function (history) {
      if (history.status !== 200) return;
      mergeHistory(history.body, full);
      state.historyDuration = duration;
      renderCharts(state.history);
    });
  }

  // ---- replay (raftctl replay): a control bar over the recorded run ---------------------

  function fmtOffset(seconds) {
    if (typeof seconds !== "number" || !isFinite(seconds)) return "—";
    var whole = Math.max(0, Math.floor(seconds));
    var h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), sec = whole % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return (h ? h + ":" + two(m) : String(m)) + ":" + two(sec);
  }

  function renderReplay(body) {
    var first = !state.replay;
    state.replay = body;
    var bar = $("replay-bar");
    bar.hidden = false;
    document.body.classList.add("replaying");
    var seek = $("replay-seek");
    var duration = body.duration || 0;
    seek.max = String(duration);
    if (!state.seeking) seek.value = String(body.position);
    if (first) {
      // the run's health along the seek bar
      var bands = (body.health || []).map(function (mark, i, all) {
        var end = i + 1 < all.length ? all[i + 1][0] : duration;
        var band = span("", "band-" + mark[1]);
        band.style.flex = String(Math.max(end - mark[0], duration / 1000 || 0.001));
        band.title = mark[1] + " from " + fmtOffset(mark[0]);
        return band;
      });
      $("replay-bands").replaceChildren.apply($("replay-bands"), bands);
    }
    var position = $("replay-position");
    position.setAttribute("data-offset", String(body.offset));
    position.setAttribute("data-position", String(body.position));
    position.setAttribute("data-sequence", String(body.sequence));
    if (!state.seeking) setText("replay-position", fmtOffset(body.position) + " / " + fmtOffset(duration));
    var play = $("replay-play");
    var playing = !body.paused;
    play.textContent = playing ? "❚❚" : "▶";
    play.setAttribute("aria-label", playing ? "Pause" : (body.ended ? "Play again" : "Play"));
    play.setAttribute("data-playing", playing ? "true" : "false");
    var speed = $("replay-speed");
    var value = String(body.speed);
    if (!Array.prototype.some.call(speed.options, function (o) { return o.value === value; })) {
      var option = document.createElement("option");
      option.value = value;
      option.textContent = value + "×";
      speed.appendChild(option);
    }
    if (document.activeElement !== speed) speed.value = value;
    var runs = body.runs > 1 ? " · run " + body.run + " of " + body.runs : "";
    setText("replay-file", "replay of " + body.file + runs + " · " + plural(body.samples, "sample"));
    if (typeof body.timestamp === "number") setText("last-updated", clock(new Date(body.timestamp * 1000)) + " (recorded)");
  }

  function replayControl(query) {
    return fetch("/api/replay?" + query, { method: "POST", cache: "no-store", headers: { "X-Raftctl-Replay": "1" } })
      .then(function (response) { return response.json(); })
      .then(function (body) { if (body && typeof body.position === "number") renderReplay(body); })
      .catch(function () { /* the next tick shows the connection state */ })
      .finally(kick);
  }

  function setupReplay() {
    $("replay-play").addEventListener("click", function () {
      replayControl("action=" + (state.replay && !state.replay.paused ? "pause" : "play"));
    });
    var seek = $("replay-seek");
    seek.addEventListener("input", function () {
      state.seeking = true;
      setText("replay-position", fmtOffset(parseFloat(seek.value)) + " / " + fmtOffset(state.replay ? state.replay.duration : 0));
    });
    seek.addEventListener("change", function () {
      state.seeking = false;
      replayControl("action=seek&position=" + encodeURIComponent(seek.value));
    });
    $("replay-speed").addEventListener("change", function () {
      replayControl("action=speed&speed=" + encodeURIComponent($("replay-speed").value));
    });
  }

  // The replay server says so in the page (a live one has no /api/replay: not asked, no 404);
  // asked once, at load.
  function probeReplay() {
    var meta = document.querySelector('meta[name="raftctl-replay"]');
    if (!meta || meta.getAttribute("content") !== "1") return Promise.resolve();
    return fetchJson("/api/replay", 5000).then(function (answer) {
      if (answer.status === 200 && answer.body && typeof answer.body.duration === "number") {
        setupReplay();
        renderReplay(answer.body);
      }
    }).catch(function () { /* the first tick reports the connection */ });
  }

  // refresh now (after a replay control), or right after the refresh under way
  function kick() {
    if (state.inFlight) { state.again = true; return; }
    clearTimeout(state.timer);
    tick();
  }

  function tick() {
    var timeoutMs = Math.max(1500, Math.min(refresh * 1000, 10000));
    var summaryHeaders = state.etag ? { "If-None-Match": state.etag } : {};
    state.inFlight = true;
    Promise.all([
      fetchJson("/api/summary", timeoutMs, summaryHeaders),
      fetchJson("/api/alerts", timeoutMs),
      state.replay ? fetchJson("/api/replay", timeoutMs) : Promise.resolve(null),
    ]).then(function (results) {
      var summary = results[0], alerts = results[1], replay = results[2];
      if (replay && replay.status === 200) renderReplay(replay.body);
      setConnected();
      if (summary.status === 200) {
        state.etag = summary.etag || null;
        var sequence = summary.body.sequence;
        var started = isNum((summary.body.collector || {}).started_at) ? summary.body.collector.started_at : null;
        // another run (a restarted server, a new source): its collector started at another instant,
        // whatever its sequence says; a sequence going back (a replay sought back) too
        var newRun = state.startedAt !== undefined && started !== state.startedAt;
        var wentBack = typeof sequence === "number" && state.lastSequence != null && sequence < state.lastSequence;
        state.startedAt = started;
        if (newRun || wentBack) {
          forgetHistory();
          forgetEvents();
          state.wall = null;  // the old run's clock offset: the new run's comes with its history
          renderEventList();
        }
        state.summarySequence = sequence;
        renderOverview(summary.body);
        renderRaft(summary.body);
        renderNodes(summary.body);
        renderShards(summary.body);
        // the node's history is the old run's: load it again from this one (closed if the node is gone)
        if (newRun || wentBack) reloadNodeDetail(summary.body);
        else extendNodeDetail(summary.body);
      } else if (summary.status !== 304) {
        state.etag = null;
        setText("nodes-empty", summary.body && summary.body.error ? "Waiting: " + summary.body.error : "Waiting for data…");
      }
      if (alerts.status === 200) renderAlerts(alerts.body);
      // after the summary, which tells the retention, so the first load asks for the whole window;
      // the events first, so the charts draw their markers
      return fetchEvents(timeoutMs).catch(function () { /* no timeline this time; the history tells */ })
        .then(function () { return fetchHistory(timeoutMs); }).then(setConnected);
    }).catch(function (error) {
      setDisconnected(error && error.name === "AbortError" ? "timed out" : "connection failed");
    }).finally(function () {
      state.inFlight = false;
      clearTimeout(state.timer);
      state.timer = setTimeout(tick, state.again ? 0 : refresh * 1000);
      state.again = false;
    });
  }

  window.addEventListener("resize", function () { if (state.history) renderCharts(state.history); renderNodeDetail(); });
  // colours come from CSS variables: redraw the charts in the new theme
  window.addEventListener("raftctl-theme", function () { if (state.history) renderCharts(state.history); renderNodeDetail(); });
  setText("refresh-seconds", String(refresh));
  setupHover();
  setupNodeClicks();
  probeReplay().finally(tick);
})();
