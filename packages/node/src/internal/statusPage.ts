/**
 * The status page's document: HTML, CSS and a small script in one string, so
 * the server needs no static files and the page no CDN or build step. The
 * script polls `stats.json` (relative, so the page works behind a path
 * prefix) and draws its charts on canvases; it keeps the last `HISTORY`
 * samples in memory and nothing else.
 *
 * Elements carry ids (`#busy`, `#workers`, `#config`, ...) that the browser
 * test reads.
 */

const style = `
:root { color-scheme: light dark; --bg: #f6f7f9; --card: #fff; --fg: #1d2330; --muted: #6b7385; --line: #d9dde5;
  --workers: #3b6fd8; --busy: #d8563b; --idle: #2f9e6b; --limit: #8a8f9c; --accept: #2f9e6b; --reject: #d8563b;
  --waiting: #b07a12; }
@media (prefers-color-scheme: dark) { :root { --bg: #14171d; --card: #1d2129; --fg: #e7e9ee; --muted: #9aa1b1;
  --line: #313744; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; align-items: baseline; gap: 12px; padding: 16px 24px; }
h1 { font-size: 20px; margin: 0; }
h2 { font-size: 14px; margin: 0 0 8px; color: var(--muted); font-weight: 600; }
#state { padding: 2px 8px; border-radius: 10px; font-weight: 600; background: var(--line); }
#state.running { background: #2f9e6b; color: #fff; }
#state.stopped { background: #d8563b; color: #fff; }
#updated { color: var(--muted); margin-left: auto; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; padding: 0 24px 24px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
.tiles { display: grid; grid-template-columns: repeat(4, 1fr); gap: 8px; }
.tile b { display: block; font-size: 24px; font-variant-numeric: tabular-nums; }
.tile span { color: var(--muted); }
canvas { width: 100%; height: 180px; display: block; }
.legend { display: flex; gap: 12px; flex-wrap: wrap; color: var(--muted); margin-top: 4px; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
td, th { padding: 2px 0; border-bottom: 1px solid var(--line); }
th { text-align: left; font-weight: 600; }
[hidden] { display: none !important; }
td:last-child { text-align: right; }
.bar { height: 8px; background: var(--busy); border-radius: 4px; }
#error { color: var(--reject); padding: 0 24px; min-height: 1em; }
`

const script = `
"use strict";
const HISTORY = 120;
const interval = Math.max(200, Number(new URLSearchParams(location.search).get("interval")) || 1000);
const samples = [];
const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
const $ = (id) => document.getElementById(id);

function drawChart(canvas, series, limits) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  const left = 40, right = 8, top = 8, bottom = 18;
  let max = 1;
  for (const s of series) for (const v of s.values) if (v > max) max = v;
  for (const l of limits) if (l.value > max) max = l.value;
  const step = niceStep(max / 4);
  const ticks = Math.max(1, Math.ceil((max * 1.05) / step));
  max = ticks * step;
  const x = (i) => left + (i / (HISTORY - 1)) * (width - left - right);
  const y = (v) => top + (1 - v / max) * (height - top - bottom);
  g.strokeStyle = css("--line"); g.fillStyle = css("--muted"); g.lineWidth = 1; g.font = "11px system-ui";
  for (let k = 0; k <= ticks; k++) {
    const v = k * step;
    g.beginPath(); g.moveTo(left, y(v)); g.lineTo(width - right, y(v)); g.stroke();
    g.fillText(formatNumber(v), 2, y(v) + 4);
  }
  g.fillText((HISTORY * interval / 1000) + " s ago", left, height - 4);
  g.fillText("now", width - right - 22, height - 4);
  for (const l of limits) {
    g.setLineDash([5, 4]); g.strokeStyle = css("--limit");
    g.beginPath(); g.moveTo(left, y(l.value)); g.lineTo(width - right, y(l.value)); g.stroke();
    g.setLineDash([]); g.fillText(l.label + " " + l.value, width - right - 60, y(l.value) - 3);
  }
  for (const s of series) {
    const offset = HISTORY - s.values.length;
    g.strokeStyle = css(s.color); g.lineWidth = 2; g.beginPath();
    s.values.forEach((v, i) => (i === 0 ? g.moveTo(x(offset + i), y(v)) : g.lineTo(x(offset + i), y(v))));
    g.stroke();
  }
}

// The smallest of 1, 2 or 5 times a power of ten that is at least v (and at least 1: counts are whole).
function niceStep(v) {
  if (v <= 1) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function formatNumber(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e4) return (v / 1e3).toFixed(0) + "k";
  if (v >= 100 || Number.isInteger(v)) return v.toFixed(0);
  return v.toFixed(1);
}

function legend(id, series) {
  $(id).innerHTML = series.map((s) => '<span><i style="background:var(' + s.color + ')"></i>' + s.label + "</span>").join("");
}

function rate(key) {
  return samples.map((s, i) => {
    if (i === 0) return 0;
    const previous = samples[i - 1];
    const seconds = (s.time - previous.time) / 1000;
    return seconds > 0 ? Math.max(0, (s.stats[key] - previous.stats[key]) / seconds) : 0;
  });
}

const closeReasons = [
  ["closedByPeer", "peer closed"], ["closedByDeadline", "deadline"], ["closedBySize", "message too large"],
  ["closedByFraming", "bad framing"], ["closedByMessageLimit", "message limit"], ["callbackFailures", "callback failed"], ["closedByStop", "stop"],
  ["interruptedByDrain", "drain timeout"]
];

function render() {
  const last = samples[samples.length - 1];
  const { stats, config } = last;
  $("state").textContent = stats.running ? "running" : "stopped";
  $("state").className = stats.running ? "running" : "stopped";
  $("updated").textContent = "updated " + new Date(last.time).toLocaleTimeString();
  const acceptRate = rate("accepted"), rejectRate = rate("rejected");
  const tiles = {
    workers: stats.workers, busy: stats.busy, idle: stats.idle, waiting: stats.waiting,
    min: config.minWorkersCount, max: config.maxWorkersCount === 0 ? "\\u221e" : config.maxWorkersCount,
    acceptRate: formatNumber(acceptRate[acceptRate.length - 1]), rejectRate: formatNumber(rejectRate[rejectRate.length - 1])
  };
  for (const [id, value] of Object.entries(tiles)) $(id).textContent = String(value);
  const workerSeries = [
    { label: "workers", color: "--workers", values: samples.map((s) => s.stats.workers) },
    { label: "busy", color: "--busy", values: samples.map((s) => s.stats.busy) },
    { label: "idle", color: "--idle", values: samples.map((s) => s.stats.idle) }
  ];
  const limits = [{ label: "min", value: config.minWorkersCount }];
  if (config.maxWorkersCount > 0) limits.push({ label: "max", value: config.maxWorkersCount });
  drawChart($("workersChart"), workerSeries, limits);
  legend("workersLegend", workerSeries);
  const rateSeries = [
    { label: "accepted / s", color: "--accept", values: acceptRate },
    { label: "rejected / s", color: "--reject", values: rejectRate }
  ];
  drawChart($("ratesChart"), rateSeries, []);
  legend("ratesLegend", rateSeries);
  const queueSeries = [{ label: "waiting for a worker", color: "--waiting", values: samples.map((s) => s.stats.waiting) }];
  drawChart($("queueChart"), queueSeries, config.admissionPolicy === "queue" ? [{ label: "queueSize", value: config.queueSize }] : []);
  legend("queueLegend", queueSeries);
  const totals = closeReasons.map(([key, label]) => [label, stats[key]]);
  const most = Math.max(1, ...totals.map(([, n]) => n));
  $("closes").innerHTML = totals.map(([label, n]) =>
    "<tr><td>" + label + '</td><td style="width:40%"><div class="bar" style="width:' + (100 * n / most) + '%"></div></td><td>' + n + "</td></tr>").join("");
  $("config").innerHTML = Object.entries(config).map(([k, v]) => "<tr><td>" + k + "</td><td>" + v + "</td></tr>").join("");
  // With --processes: the figures above add the processes up; a row per process.
  $("processesSection").hidden = !last.processes;
  if (last.processes) {
    const cell = (v) => "<td>" + v + "</td>";
    $("processes").innerHTML = "<tr><th>process</th><th>state</th><th>workers</th><th>busy</th><th>idle</th><th>waiting</th>" +
      "<th>max</th><th>accepted</th><th>rejected</th></tr>" +
      last.processes.map((p) => '<tr data-process="' + p.process + '">' + cell(p.process) + (p.stats
        ? cell(p.stats.running ? "running" : "stopped") + cell(p.stats.workers) + cell(p.stats.busy) + cell(p.stats.idle) +
          cell(p.stats.waiting) + cell(p.config.maxWorkersCount === 0 ? "\u221e" : p.config.maxWorkersCount) +
          cell(p.stats.accepted) + cell(p.stats.rejected)
        : '<td colspan="8">not answering</td>') + "</tr>").join("");
  }
}

async function poll() {
  try {
    const response = await fetch("stats.json", { cache: "no-store" });
    if (response.ok) {
      samples.push(await response.json());
      if (samples.length > HISTORY) samples.shift();
      render();
      $("error").textContent = "";
    } else {
      $("error").textContent = "stats.json answered " + response.status + " (the server is starting or stopping)";
    }
  } catch (error) {
    $("error").textContent = "cannot reach the server: " + error.message;
  }
  setTimeout(poll, interval);
}
poll();
`

const tile = (id: string, label: string) => `<div class="tile"><b id="${id}">-</b><span>${label}</span></div>`

/** The page, whole. */
export const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>pool-manager status</title>
<style>${style}</style>
</head>
<body>
<header><h1>pool-manager</h1><span id="state">connecting</span><span id="updated"></span></header>
<div id="error"></div>
<main>
<section><h2>Now</h2><div class="tiles">
${tile("workers", "workers")}${tile("busy", "busy")}${tile("idle", "idle")}${tile("waiting", "waiting")}
${tile("min", "min workers")}${tile("max", "max workers")}${tile("acceptRate", "accepted / s")}${tile("rejectRate", "rejected / s")}
</div></section>
<section><h2>Workers against min and max</h2><canvas id="workersChart"></canvas><div class="legend" id="workersLegend"></div></section>
<section><h2>Admissions</h2><canvas id="ratesChart"></canvas><div class="legend" id="ratesLegend"></div></section>
<section><h2>Queue</h2><canvas id="queueChart"></canvas><div class="legend" id="queueLegend"></div></section>
<section><h2>Connections closed by the pool, by reason (total)</h2><table id="closes"></table></section>
<section id="processesSection" hidden><h2>Processes</h2><table id="processes"></table></section>
<section><h2>Configuration</h2><table id="config"></table></section>
</main>
<script>${script}</script>
</body>
</html>
`
