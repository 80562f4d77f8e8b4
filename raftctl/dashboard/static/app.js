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
    // a replay shows the recorded time of the sample on screen instead (renderReplay)
    if (!state.replay) setText("last-updated", clock(state.lastSuccess));
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

  function renderOverview(doc) {
    var cluster = doc.cluster || {};
    var perf = doc.performance || {};
    var status = cluster.health_status || "UNKNOWN";
    $("health-card").setAttribute("data-status", status);
    setText("health-status", status);
    var reasons = cluster.health_reasons || [];
    setText("health-reasons", reasons.length ? reasons.join("; ") : "all checks passing");
    $("health-reasons").title = reasons.join("\n");
    var leader = cluster.leader || cluster.leader_node;
    var shards = shardList(doc);
    if (shards) {
      var led = shards.filter(function (s) { return s && s.leader; }).length;
      setText("leader-label", "Shard leaders");
      setText("leader", led + " / " + shards.length);
      $("leader").classList.toggle("bad", led < shards.length);
      setText("term-label", "Term · shard 0");
    } else {
      setText("leader-label", "Leader");
      setText("leader", leader || "none");
      $("leader").classList.remove("bad");
      setText("term-label", "Term");
    }
    setText("leader-changes", typeof cluster.leader_changes === "number" ? cluster.leader_changes + " leader changes" : "\u00a0");
    setText("term", fmtInt(cluster.current_term));
    setText("quorum", cluster.has_quorum === false ? "quorum lost" : (cluster.has_quorum ? "quorum held" : "\u00a0"));
    setText("healthy-nodes", fmtInt(cluster.healthy_nodes) + " / " + fmtInt(cluster.cluster_size));
    setText("aligned", cluster.consensus_aligned ? "consensus aligned" : "consensus NOT aligned");
    // the monitor sees only the nodes that answered its poll; below a majority it cannot vouch for the cluster
    var reached = cluster.nodes_reached, size = cluster.cluster_size;
    var partial = typeof reached === "number" && typeof size === "number" && reached < size;
    setText("reach-detail", partial ? "Monitor reaches " + reached + "/" + size + " nodes" : "");
    $("reach-banner").classList.toggle("bad", partial && reached < Math.floor(size / 2) + 1);
    $("reach-banner").hidden = !partial;
    setText("throughput", fmtNum(perf.throughput_ops, 1) + " ops/s");
    setText("orders", fmtInt(perf.total_orders) + " orders · " + fmtInt(perf.total_trades) + " trades");
    setText("latency", withUnit(perf.avg_latency_ms, 1, " ms"));
    setText("latency-detail", "p50 " + withUnit(perf.p50_latency_ms, 1, " ms") + " · p99 " + withUnit(perf.p99_latency_ms, 1, " ms"));
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
      var label = shownState === "STALE_LEADER" ? "stale leader"
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
      cells[2].replaceChildren.apply(cells[2], led.length
        ? led.map(function (g) { return span(String(g), "shard-chip"); })
        : [document.createTextNode(leads ? "—" : "")]);
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

  function renderShards(doc) {
    var shards = shardList(doc);
    var panel = $("shards-panel");
    if (!shards) { panel.hidden = true; return; }
    var led = shards.filter(function (s) { return s && s.leader; }).length;
    setText("shards-caption", shards.length + " Raft groups · " + led + " with a leader");
    var rows = shards.map(function (s) {
      s = s || {};
      var tr = document.createElement("tr");
      tr.setAttribute("data-shard", String(s.shard));
      tr.setAttribute("data-health", s.health_status || "");
      cell(tr, String(s.shard), "node-name");
      cell(tr, s.leader ? span(s.leader, "node-name") : span("none", "no-leader"), "leader-cell");
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

  function drawChart(canvasId, points, options) {
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
    var left = 44, right = 8, top = 8, bottom = 20;
    var plotW = Math.max(10, width - left - right);
    var plotH = Math.max(10, height - top - bottom);
    var values = points.map(function (p) { return p[1]; }).filter(function (v) { return v != null && isFinite(v); });
    var minY = options.min != null ? options.min : Math.min.apply(null, values.concat([0]));
    var maxY = options.max != null ? options.max : niceMax(Math.max.apply(null, values.concat([minY + 1e-9])));
    if (options.integer) maxY = Math.max(Math.ceil(maxY), minY + 1);
    var span = options.window;
    var endX = points.length ? points[points.length - 1][0] : 0;
    var startX = endX - span;

    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = cssVar("--muted");
    ctx.strokeStyle = cssVar("--grid");
    ctx.lineWidth = 1;
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    for (var g = 0; g <= 4; g++) {
      var yValue = minY + (maxY - minY) * g / 4;
      var y = top + plotH - plotH * g / 4;
      ctx.beginPath();
      ctx.moveTo(left, Math.round(y) + 0.5);
      ctx.lineTo(left + plotW, Math.round(y) + 0.5);
      ctx.stroke();
      var whole = Math.abs(yValue - Math.round(yValue)) < 1e-9;
      var label = whole ? String(Math.round(yValue)) : yValue.toFixed(yValue >= 10 ? 1 : 2).replace(/0+$/, "");
      if (!options.integer || Math.abs(yValue - Math.round(yValue)) < 1e-9) ctx.fillText(label, left - 6, y);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    [1, 0.5, 0].forEach(function (fraction) {
      var x = left + plotW * (1 - fraction);
      ctx.fillText(fraction === 0 ? "now" : "-" + Math.round(span * fraction) + "s", Math.min(Math.max(x, left + 12), left + plotW - 12), top + plotH + 4);
    });
    if (!values.length) {
      ctx.textBaseline = "middle";
      ctx.fillText("no data", left + plotW / 2, top + plotH / 2);
      return;
    }
    var xOf = function (x) { return left + plotW * (x - startX) / span; };
    var yOf = function (v) { return top + plotH - plotH * (v - minY) / ((maxY - minY) || 1); };
    var visible = points.filter(function (p) { return p[0] >= startX && p[1] != null && isFinite(p[1]); });
    if (!visible.length) return;
    ctx.beginPath();
    visible.forEach(function (p, i) {
      var x = xOf(p[0]), y = yOf(p[1]);
      if (i === 0) { ctx.moveTo(x, y); return; }
      if (options.step) ctx.lineTo(x, yOf(visible[i - 1][1]));
      ctx.lineTo(x, y);
    });
    ctx.strokeStyle = options.color ? cssVar(options.color) : cssVar("--chart-line");
    ctx.lineWidth = 1.6;
    ctx.stroke();
    ctx.lineTo(xOf(visible[visible.length - 1][0]), top + plotH);
    ctx.lineTo(xOf(visible[0][0]), top + plotH);
    ctx.closePath();
    ctx.fillStyle = cssVar("--chart-fill");
    ctx.fill();
  }

  function renderCharts(history) {
    var samples = history.samples || [];
    var clockOf = function (s) { return typeof s.sim_time === "number" ? s.sim_time : s.timestamp; };
    var series = function (getter) { return samples.map(function (s) { return [clockOf(s), getter(s)]; }); };
    var windowSeconds = Math.max(history.duration || state.retention, 1);
    setText("history-window", "last " + Math.round(windowSeconds) + " s · " + samples.length + " samples");
    $("history-window").setAttribute("data-last-sequence", state.lastSequence == null ? "" : String(state.lastSequence));
    var size = samples.length ? ((samples[samples.length - 1].cluster || {}).cluster_size || 1) : 1;
    var charts = [
      ["chart-throughput", function (s) { return (s.performance || {}).throughput_ops; }, {}, 1],
      ["chart-latency", function (s) { return (s.performance || {}).avg_latency_ms; }, {}, 1],
      ["chart-healthy", function (s) { return (s.cluster || {}).healthy_nodes; }, { min: 0, max: size, integer: true, step: true, color: "--ok" }, 0],
      ["chart-term", function (s) { return (s.cluster || {}).current_term; }, { integer: true, step: true }, 0],
    ];
    charts.forEach(function (chart) {
      var points = series(chart[1]);
      var options = chart[2];
      options.window = windowSeconds;
      if (chart[0] === "chart-term") {
        var terms = points.map(function (p) { return p[1]; }).filter(function (v) { return typeof v === "number"; });
        options.min = terms.length ? Math.max(0, Math.min.apply(null, terms) - 1) : 0;
        options.max = terms.length ? Math.max.apply(null, terms) + 1 : 1;
      }
      drawChart(chart[0], points, options);
      var last = points.length ? points[points.length - 1][1] : null;
      setText(chart[0] + "-last", last == null ? "" : fmtNum(last, chart[3]));
    });
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
    setText("replay-file", "replay of " + body.file + runs + " · " + body.samples + " samples");
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

  // A live server has no /api/replay (404): asked once, at load.
  function probeReplay() {
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
        // a sequence going back means another collector (a restarted server): start the history over
        if (typeof sequence === "number" && state.lastSequence != null && sequence < state.lastSequence) forgetHistory();
        state.summarySequence = sequence;
        renderOverview(summary.body);
        renderNodes(summary.body);
        renderShards(summary.body);
      } else if (summary.status !== 304) {
        state.etag = null;
        setText("nodes-empty", summary.body && summary.body.error ? "Waiting: " + summary.body.error : "Waiting for data…");
      }
      if (alerts.status === 200) renderAlerts(alerts.body);
      // after the summary, which tells the retention, so the first load asks for the whole window
      return fetchHistory(timeoutMs).then(setConnected);
    }).catch(function (error) {
      setDisconnected(error && error.name === "AbortError" ? "timed out" : "connection failed");
    }).finally(function () {
      state.inFlight = false;
      clearTimeout(state.timer);
      state.timer = setTimeout(tick, state.again ? 0 : refresh * 1000);
      state.again = false;
    });
  }

  window.addEventListener("resize", function () { if (state.history) renderCharts(state.history); });
  // colours come from CSS variables: redraw the charts in the new theme
  window.addEventListener("raftctl-theme", function () { if (state.history) renderCharts(state.history); });
  setText("refresh-seconds", String(refresh));
  probeReplay().finally(tick);
})();
