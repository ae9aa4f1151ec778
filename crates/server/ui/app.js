// The Sluice web UI: pipelines, their dataflow and live charts, a live tail, the SQL
// editor and the dead letters. Plain JavaScript on the REST API (/api/openapi.json);
// charts by uPlot. Everything shown is set as text, never as HTML.
"use strict";

const KEY_STORE = "sluice.apiKey";
const POLL_MS = 1000;
const WINDOW = 300; // seconds of history in the charts

const keyInput = document.getElementById("api-key");
keyInput.value = localStorage.getItem(KEY_STORE) || "";
keyInput.addEventListener("change", () => {
  localStorage.setItem(KEY_STORE, keyInput.value.trim());
  route();
});

function apiKey() {
  return keyInput.value.trim();
}

function notice(text) {
  const n = document.getElementById("notice");
  n.hidden = !text;
  n.textContent = text || "";
}

async function api(method, path, body) {
  const headers = {};
  if (apiKey()) headers["Authorization"] = "Bearer " + apiKey();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  const text = await r.text();
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { error: text }; }
  if (r.status === 401) notice("This server needs an API key: enter one at the top right.");
  else if (r.status === 403) notice("This API key may not do that: " + (data && data.error));
  else notice("");
  return { status: r.status, data };
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function human(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (a >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (a >= 1e4) return (n / 1e3).toFixed(1) + "k";
  if (Number.isInteger(n)) return String(n);
  return a >= 10 ? n.toFixed(1) : Number(n.toPrecision(2)).toString();
}

function seconds(s) {
  if (s === null || s === undefined) return "–";
  if (s < 0.001) return (s * 1e6).toFixed(0) + " µs";
  if (s < 1) return (s * 1e3).toFixed(1) + " ms";
  return s.toFixed(2) + " s";
}

function statusBadge(s) {
  return el("span", { class: "status " + s, "data-status": s }, s);
}

// One timer for the page shown; a route change cancels it and closes streams.
let stopPage = () => {};

function route() {
  stopPage();
  stopPage = () => {};
  const view = document.getElementById("view");
  view.replaceChildren();
  const hash = location.hash || "#/";
  if (hash === "#/new") return newPipeline(view);
  const m = hash.match(/^#\/p\/([A-Za-z0-9_-]+)$/);
  if (m) return pipelinePage(view, m[1]);
  return listPage(view);
}
window.addEventListener("hashchange", route);

// ---- the list ----------------------------------------------------------------

function listPage(view) {
  const body = el("tbody");
  view.append(
    el("h1", {}, "Pipelines"),
    el("table", { id: "pipelines" },
      el("thead", {}, el("tr", {},
        el("th", {}, "Name"), el("th", {}, "Status"), el("th", { class: "num" }, "Rows in"),
        el("th", { class: "num" }, "Rows in/s"), el("th", { class: "num" }, "Rows out"),
        el("th", { class: "num" }, "Dead letters"), el("th", {}, "Error"))),
      body),
    el("p", { class: "muted" }, "Submit one with ", el("a", { href: "#/new" }, "New pipeline"), "."));
  const last = new Map();
  let timer = null;
  async function refresh() {
    try {
      await refreshOnce();
    } catch (e) {
      notice("The server does not answer: " + e);
    } finally {
      timer = setTimeout(refresh, POLL_MS);
    }
  }
  async function refreshOnce() {
    const r = await api("GET", "/api/pipelines");
    if (r.status === 200) {
      const now = performance.now();
      body.replaceChildren(...r.data.pipelines.map((p) => {
        const prev = last.get(p.name);
        const rate = prev ? (p.rows_in - prev.rows) / ((now - prev.at) / 1000) : null;
        last.set(p.name, { rows: p.rows_in, at: now });
        return el("tr", { "data-name": p.name },
          el("td", {}, el("a", { href: "#/p/" + p.name }, p.name)),
          el("td", {}, statusBadge(p.status)),
          el("td", { class: "num" }, human(p.rows_in)),
          el("td", { class: "num" }, human(rate)),
          el("td", { class: "num" }, human(p.rows_out)),
          el("td", { class: "num" }, human(p.dead_letters)),
          el("td", { class: "error" }, p.error || ""));
      }));
    }
  }
  refresh();
  stopPage = () => clearTimeout(timer);
}

// ---- the SQL editor ----------------------------------------------------------

const EXAMPLE = `-- Rows posted to /ingest/events, counted per key every 10 seconds.
CREATE TABLE events (k STRING, v BIGINT, ts TIMESTAMP(3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
WITH ('connector' = 'http', 'format' = 'json');

CREATE TABLE counts (k STRING, window_end TIMESTAMP(3), n BIGINT)
WITH ('connector' = 'blackhole');

INSERT INTO counts
SELECT k, window_end, COUNT(*)
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '10' SECOND))
GROUP BY k, window_start, window_end;
`;

function editor(initial) {
  const gutter = el("div", { class: "gutter" });
  const area = el("textarea", { id: "sql", spellcheck: "false" });
  area.value = initial;
  let errLine = 0;
  function lines() {
    const n = area.value.split("\n").length;
    gutter.replaceChildren(...Array.from({ length: n }, (_, i) =>
      el("div", { class: i + 1 === errLine ? "err" : "" }, String(i + 1))));
    gutter.scrollTop = area.scrollTop;
  }
  area.addEventListener("input", () => { errLine = 0; lines(); });
  area.addEventListener("scroll", () => { gutter.scrollTop = area.scrollTop; });
  lines();
  return {
    node: el("div", { class: "editor" }, gutter, area),
    value: () => area.value,
    markError(line, column) {
      errLine = line || 0;
      lines();
      if (line) {
        // Put the cursor where the error is.
        const before = area.value.split("\n").slice(0, line - 1).join("\n").length + (line > 1 ? 1 : 0);
        area.focus();
        area.setSelectionRange(before + Math.max(0, (column || 1) - 1), before + Math.max(0, (column || 1) - 1));
      }
    },
  };
}

function newPipeline(view) {
  const name = el("input", { type: "text", id: "name", placeholder: "my-pipeline", value: "" });
  const ed = editor(EXAMPLE);
  const error = el("div", { class: "error", id: "sql-error" });
  const submit = el("button", { class: "primary", id: "submit", onclick: async () => {
    submit.disabled = true;
    error.textContent = "";
    ed.markError(0);
    const r = await api("POST", "/api/pipelines", { name: name.value.trim(), sql: ed.value() });
    submit.disabled = false;
    if (r.status === 201) {
      location.hash = "#/p/" + r.data.name;
      return;
    }
    const d = r.data || {};
    error.textContent = (d.line ? `line ${d.line}, column ${d.column}: ` : "") + (d.error || "HTTP " + r.status);
    if (d.line) ed.markError(d.line, d.column);
  } }, "Submit and start");
  view.append(el("h1", {}, "New pipeline"),
    el("div", { class: "row" }, el("label", {}, "Name ", name), submit),
    ed.node, error);
}

// ---- one pipeline ------------------------------------------------------------

function chart(title, series, width) {
  const node = el("div", { class: "chart" });
  const opts = {
    title, width, height: 200,
    scales: { x: { time: true } },
    series: [{}, ...series.map((s, i) => ({ label: s, stroke: ["#2e6fdb", "#12b76a", "#f79009", "#d92d20"][i % 4], width: 1.5, value: (u, v) => human(v) }))],
    axes: [{}, { size: 60, values: (u, vals) => vals.map((v) => human(v)) }],
  };
  const data = [[], ...series.map(() => [])];
  const plot = new uPlot(opts, data, node);
  return {
    node,
    push(t, values) {
      data[0].push(t);
      values.forEach((v, i) => data[i + 1].push(v));
      while (data[0].length && data[0][0] < t - WINDOW) data.forEach((d) => d.shift());
      plot.setData(data);
    },
    resize(w) { plot.setSize({ width: w, height: 200 }); },
  };
}

// Layered layout: a node's column is its longest distance from a source.
function layout(graph) {
  const col = new Map(graph.nodes.map((n) => [n.id, 0]));
  for (let i = 0; i < graph.nodes.length; i++) {
    for (const e of graph.edges) col.set(e.to, Math.max(col.get(e.to), col.get(e.from) + 1));
  }
  const rows = new Map();
  const pos = new Map();
  for (const n of graph.nodes) {
    const c = col.get(n.id);
    const r = rows.get(c) || 0;
    rows.set(c, r + 1);
    pos.set(n.id, { x: 20 + c * 300, y: 30 + r * 70 });
  }
  const height = 40 + Math.max(1, ...rows.values()) * 70;
  const width = 40 + (Math.max(0, ...col.values()) + 1) * 300;
  return { pos, width, height };
}

function pressureColour(fraction) {
  if (fraction === null) return "#98a2b3";
  if (fraction < 0.1) return "#12b76a";
  if (fraction < 0.5) return "#f79009";
  return "#d92d20";
}

function drawGraph(box, graph, ops, rates, onSelect, selected) {
  const { pos, width, height } = layout(graph);
  const s = svg("svg", { width, height, id: "dataflow" });
  s.append(svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto" },
    svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#98a2b3" }))));
  for (const e of graph.edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    const from = graph.nodes.find((n) => n.id === e.from);
    const r = rates.get(from.metrics_name) || { rows: null, pressure: null };
    const colour = pressureColour(r.pressure);
    s.append(svg("line", { x1: a.x + 200, y1: a.y + 20, x2: b.x, y2: b.y + 20, stroke: colour, "stroke-width": 2.5, "marker-end": "url(#arrow)", class: "edge", "data-pressure": r.pressure === null ? "" : r.pressure.toFixed(3) }));
    s.append(svg("text", { x: (a.x + 200 + b.x) / 2, y: (a.y + b.y) / 2 + 12, class: "edge-label", "text-anchor": "middle" },
      `${e.kind} · ${human(r.rows)}/s`));
  }
  for (const n of graph.nodes) {
    const p = pos.get(n.id);
    const m = ops.find((o) => o.name === n.metrics_name);
    const g = svg("g", { class: "node" + (selected === n.metrics_name ? " selected" : ""), "data-operator": n.metrics_name, onclick: () => onSelect(n.metrics_name) },
      svg("rect", { x: p.x, y: p.y, width: 200, height: 40 }),
      svg("text", { x: p.x + 8, y: p.y + 16 }, n.name.length > 28 ? n.name.slice(0, 27) + "…" : n.name),
      svg("text", { x: p.x + 8, y: p.y + 32, class: "edge-label" },
        `×${n.parallelism} · in ${human(m ? m.rows_in : null)} · out ${human(m ? m.rows_out : null)}`));
    s.append(g);
  }
  box.replaceChildren(s);
}

function pipelinePage(view, name) {
  const title = el("h1", {}, name, el("span", { id: "status" }));
  const buttons = el("div", { class: "row" });
  const cards = el("div", { class: "cards" });
  const graphBox = el("div", { class: "graph" });
  const width = Math.max(280, Math.floor(((view.clientWidth || 1200) - 40) / 3) - 44);
  const throughput = chart("Rows per second", ["in", "out"], width);
  const latency = chart("End-to-end latency (ms)", ["p50", "p99"], width);
  const lag = chart("Watermark lag (s)", ["max over operators"], width);
  const tailTable = el("table", { id: "tail" });
  const tailNote = el("div", { class: "muted", id: "tail-note" }, "Click an operator in the dataflow to tail its output.");
  const dead = el("table", { id: "dead-letters" });
  const plan = el("pre", { id: "plan" });
  const sql = el("pre", { id: "pipeline-sql" });
  view.append(title, buttons, cards,
    el("h2", {}, "Dataflow"), graphBox,
    el("h2", {}, "Live"), el("div", { class: "charts" }, throughput.node, latency.node, lag.node),
    el("h2", {}, "Tail"), tailNote, el("div", { class: "tail" }, tailTable),
    el("h2", {}, "Dead letters"), dead,
    el("h2", {}, "Plan"), plan, el("h2", {}, "SQL"), sql);

  let prev = null;
  let timer = null;
  let source = null;
  let selected = null;
  let lastDetail = null;
  let deadAt = 0;
  const tailRows = [];

  function selectOperator(op) {
    selected = op;
    if (source) source.close();
    tailRows.length = 0;
    tailTable.replaceChildren();
    tailNote.textContent = `Tailing ${op}…`;
    const q = new URLSearchParams({ operator: op });
    if (apiKey()) q.set("api_key", apiKey());
    source = new EventSource(`/api/pipelines/${name}/tail?${q}`);
    source.addEventListener("rows", (ev) => {
      const d = JSON.parse(ev.data);
      for (const r of d.rows) tailRows.unshift(r);
      tailRows.length = Math.min(tailRows.length, 100);
      const cols = [...new Set(tailRows.flatMap((r) => Object.keys(r)))];
      tailTable.replaceChildren(
        el("thead", {}, el("tr", {}, cols.map((c) => el("th", {}, c)))),
        el("tbody", {}, tailRows.map((r) => el("tr", {}, cols.map((c) => el("td", {}, r[c] === undefined ? "" : typeof r[c] === "object" ? JSON.stringify(r[c]) : String(r[c])))))));
      tailNote.textContent = `Tailing ${op}: newest first${d.more ? ` (${d.more} more rows of the last batch not shown)` : ""}.`;
    });
    source.addEventListener("lagged", () => { tailNote.textContent = `Tailing ${op}: some batches were skipped to keep up.`; });
    if (lastDetail) drawGraph(graphBox, lastDetail.graph, lastDetail.operators, new Map(), selectOperator, selected);
  }

  function actions(d) {
    const b = [];
    if (!d.managed) b.push(el("span", { class: "muted" }, "Run by sluice run (read-only)."));
    else if (d.status === "running") b.push(el("button", { id: "stop", onclick: () => act("stop") }, "Stop with savepoint"));
    else if (d.status !== "stopping") {
      b.push(el("button", { id: "resume", class: "primary", onclick: () => act("resume") }, "Resume"));
      b.push(el("button", { id: "delete", onclick: async () => {
        if (!confirm(`Delete pipeline ${name} and its checkpoints?`)) return;
        const r = await api("DELETE", `/api/pipelines/${name}`);
        if (r.status === 204) location.hash = "#/";
      } }, "Delete"));
    }
    buttons.replaceChildren(...b);
  }

  async function act(what) {
    const r = await api("POST", `/api/pipelines/${name}/${what}`, {});
    if (r.status >= 400) notice((r.data && r.data.error) || `HTTP ${r.status}`);
    refresh(true);
  }

  async function loadDeadLetters() {
    const r = await api("GET", `/api/pipelines/${name}/dead-letters?limit=50`);
    if (r.status !== 200) return;
    const rows = r.data.dead_letters.slice().reverse();
    dead.replaceChildren(
      el("thead", {}, el("tr", {}, el("th", {}, "Reason"), el("th", {}, "Record"))),
      el("tbody", {}, rows.length ? rows.map((d) => el("tr", {},
        el("td", {}, d.reason || d.error || ""),
        el("td", {}, JSON.stringify(d.record !== undefined ? d.record : d)))) :
        [el("tr", {}, el("td", { colspan: 2, class: "muted" }, "None."))]));
  }

  async function refresh(once) {
    let gone = false;
    try {
      gone = await refreshOnce();
    } catch (e) {
      notice("The server does not answer: " + e);
    } finally {
      if (!once && !gone) timer = setTimeout(() => refresh(false), POLL_MS);
    }
  }

  // One poll; true when the pipeline is gone.
  async function refreshOnce() {
    const r = await api("GET", `/api/pipelines/${name}`);
    if (r.status === 404) {
      view.replaceChildren(el("h1", {}, "No pipeline named " + name));
      return true;
    }
    if (r.status === 200) {
      const d = r.data;
      lastDetail = d;
      const now = Date.now() / 1000;
      document.getElementById("status").replaceChildren(statusBadge(d.status));
      actions(d);
      const rates = new Map();
      let inRate = null, outRate = null;
      if (prev) {
        const dt = now - prev.at;
        inRate = Math.max(0, (d.rows_in - prev.d.rows_in) / dt);
        outRate = Math.max(0, (d.rows_out - prev.d.rows_out) / dt);
        for (const o of d.operators) {
          const p = prev.d.operators.find((x) => x.name === o.name);
          if (!p) continue;
          // Blocked time adds up over the operator's subtasks.
          const node = d.graph && d.graph.nodes.find((n) => n.metrics_name === o.name);
          const par = node ? Math.max(1, node.parallelism) : 1;
          rates.set(o.name, {
            rows: Math.max(0, (o.rows_out - p.rows_out) / dt),
            pressure: Math.min(1, Math.max(0, (o.blocked_seconds - p.blocked_seconds) / dt / par)),
          });
        }
      }
      const cp = d.checkpoint || {};
      cards.replaceChildren(...[
        ["Rows in", human(d.rows_in)], ["Rows out", human(d.rows_out)],
        ["Rows in/s", human(inRate)], ["Dead letters", human(d.dead_letters)],
        ["Late rows", human(d.late_rows)], ["Restarts", human(d.restarts)],
        ["Checkpoints", human(cp.completed)], ["Last checkpoint", cp.last_id === null || cp.last_id === undefined ? "–" : `#${cp.last_id} · ${cp.last_duration_ms} ms`],
        ["p99 latency", seconds(d.latency && d.latency.p99_seconds)],
      ].map(([k, v]) => el("div", { class: "card" }, el("div", { class: "v" }, v), el("div", { class: "k" }, k))));
      if (d.error) cards.append(el("div", { class: "card error", style: "grid-column: 1 / -1" }, d.error));
      if (d.graph) drawGraph(graphBox, d.graph, d.operators, rates, selectOperator, selected);
      if (prev) {
        throughput.push(now, [inRate, outRate]);
        const ms = (v) => (v === null || v === undefined ? null : v * 1000);
        latency.push(now, [ms(d.latency.p50_seconds), ms(d.latency.p99_seconds)]);
        const lags = d.operators.map((o) => o.watermark_lag_seconds).filter((x) => x !== null);
        lag.push(now, [lags.length ? Math.max(...lags) : null]);
      }
      if (plan.textContent !== d.plan) plan.textContent = d.plan;
      if (sql.textContent !== d.sql) sql.textContent = d.sql;
      prev = { at: now, d };
      if (now - deadAt > 5) { loadDeadLetters(); deadAt = now; }
    }
    return false;
  }
  refresh(false);
  stopPage = () => { clearTimeout(timer); if (source) source.close(); };
}

route();
