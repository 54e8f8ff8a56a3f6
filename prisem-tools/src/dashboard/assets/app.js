// The PRISEM dashboard: status and logs over server-sent events, and the anon/crosscor form.
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_LOG_LINES = 500;
const SVG = "http://www.w3.org/2000/svg";
let source = null;

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "–" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
}

function num(v, digits) {
  if (v === undefined || v === null) return "–";
  return digits === undefined ? String(v) : Number(v).toFixed(digits);
}

function fill(tbodyParent, rows, columns) {
  const tbody = tbodyParent.querySelector("tbody");
  tbody.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement("tr");
    for (const [value, cls] of columns(r)) cell(tr, value, cls);
    tbody.appendChild(tr);
  }
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = tbodyParent.querySelectorAll("th").length;
    td.className = "muted";
    td.textContent = "none";
    tr.appendChild(td);
    tbody.appendChild(tr);
  }
}

function showStatus(s) {
  $("updated").textContent = s.time ? "updated " + s.time : "";
  fill($("services"), s.services || [], (r) => [
    [r.name], [r.queue], [r.messages, "num"], [r.consumers, "num"],
    [num(r.rate_per_s, 2), "num"],
    [num(r.recent_latency_ms !== undefined ? r.recent_latency_ms : r.mean_latency_ms, 1), "num"],
    [r.requests, "num"], [r.errors, "num"],
  ]);
  const err = $("mgmt-error");
  err.hidden = !s.management_error;
  err.textContent = s.management_error || "";
  const dl = $("syslog");
  if (s.syslog && !s.syslog.error) {
    dl.replaceChildren();
    for (const [k, v] of Object.entries(s.syslog)) {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = k.replace("_", " ");
      dd.textContent = String(v);
      div.append(dt, dd);
      dl.appendChild(div);
    }
  } else if (s.syslog && s.syslog.error) {
    dl.replaceChildren();
    const dd = document.createElement("dd");
    dd.className = "error";
    dd.textContent = s.syslog.error;
    dl.appendChild(dd);
  }
  fill($("blocks"), s.blocks || [], (b) => [
    [b.ip], [b.expires || "never"],
    [b.seconds_left === null || b.seconds_left === undefined ? "–" : b.seconds_left + " s", "num"],
  ]);
  fill($("backbone"), s.backbone || [], (b) => [
    [b.client], [b.inbox], [b.messages, "num"], [b.consumers, "num"],
  ]);
}

function addLog(l) {
  const ol = $("logs");
  const li = document.createElement("li");
  li.className = l.level || "";
  li.textContent = l.text;
  ol.appendChild(li);
  while (ol.children.length > MAX_LOG_LINES) ol.removeChild(ol.firstChild);
  ol.scrollTop = ol.scrollHeight;
}

function connect() {
  if (source) source.close();
  const params = new URLSearchParams();
  for (const f of ["level", "host", "component"]) {
    const v = $("f-" + f).value.trim();
    if (v) params.set(f, v);
  }
  source = new EventSource("/events?" + params.toString());
  source.addEventListener("open", () => {
    $("conn").textContent = "live";
    $("conn").className = "badge live";
  });
  source.addEventListener("error", () => {
    $("conn").textContent = "reconnecting…";
    $("conn").className = "badge down";
  });
  source.addEventListener("status", (e) => showStatus(JSON.parse(e.data)));
  source.addEventListener("log", (e) => addLog(JSON.parse(e.data)));
  source.addEventListener("lagged", (e) => addLog({ text: "… " + e.data + " lines skipped (too fast)", level: "WARNING" }));
}

function drawChart(rows) {
  const svg = $("cumdist");
  svg.replaceChildren();
  const W = 400, H = 220, left = 34, right = 8, top = 10, bottom = 50;
  const plotW = W - left - right, plotH = H - top - bottom;
  const el = (name, attrs, text) => {
    const e = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    svg.appendChild(e);
    return e;
  };
  el("line", { x1: left, y1: top, x2: left, y2: top + plotH, class: "axis" });
  el("line", { x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH, class: "axis" });
  for (const p of [0, 50, 100]) {
    const y = top + plotH * (1 - p / 100);
    el("text", { x: left - 4, y: y + 3, "text-anchor": "end" }, p + "%");
  }
  const n = Math.max(rows.length, 1);
  const step = plotW / n;
  const points = [[left, top + plotH]];
  rows.forEach((r, i) => {
    const x = left + step * i;
    const barH = plotH * r.pct / 100;
    const bar = el("rect", { x: x + step * 0.15, y: top + plotH - barH, width: step * 0.7, height: barH, class: "bar" });
    bar.appendChild(document.createElementNS(SVG, "title")).textContent = `${r.site}: ${r.count} (${r.pct}%, cumulative ${r.cum}%)`;
    points.push([x + step, top + plotH * (1 - r.cum / 100)]);
    el("text", { x: x + step / 2, y: top + plotH + 12, "text-anchor": "end", transform: `rotate(-40 ${x + step / 2} ${top + plotH + 12})` }, r.site);
  });
  el("polyline", { points: points.map((p) => p.join(",")).join(" "), class: "curve" });
  for (const p of points.slice(1)) el("circle", { cx: p[0], cy: p[1], r: 2.5, class: "point" });
  $("chart").hidden = false;
}

async function runService(ev) {
  ev.preventDefault();
  const service = $("service").value;
  $("run-status").textContent = "running " + service + "…";
  $("run-output").textContent = "";
  $("run-stderr").hidden = true;
  $("chart").hidden = true;
  try {
    const r = await fetch("/api/run", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ service, text: $("text").value, map: $("map").value, iff: $("iff").value }),
    });
    const body = await r.json();
    if (!r.ok) {
      $("run-status").textContent = body.error || ("HTTP " + r.status);
      $("run-status").className = "error";
      return;
    }
    $("run-status").className = "muted";
    $("run-status").textContent = service + " answered with retcode " + body.retcode;
    $("run-output").textContent = body.stdout;
    if (body.stderr) {
      $("run-stderr").textContent = body.stderr;
      $("run-stderr").hidden = false;
    }
    if (body.cumdist) drawChart(body.cumdist);
    else if (body.cumdist_error) $("run-status").textContent += " (no chart: " + body.cumdist_error + ")";
  } catch (e) {
    $("run-status").className = "error";
    $("run-status").textContent = "request failed: " + e;
  }
}

async function loadMaps() {
  const r = await fetch("/api/maps");
  if (!r.ok) return;
  const body = await r.json();
  for (const name of body.maps) {
    const o = document.createElement("option");
    o.value = name;
    o.textContent = name;
    $("map").appendChild(o);
  }
  if (body.maps.length > 0) $("map").value = body.maps[0];
}

$("filters").addEventListener("submit", (e) => { e.preventDefault(); connect(); });
$("clear-logs").addEventListener("click", () => $("logs").replaceChildren());
$("run").addEventListener("submit", runService);
$("service").addEventListener("change", () => { $("iff").disabled = $("service").value !== "crosscor"; });
$("iff").disabled = true;
loadMaps();
connect();
