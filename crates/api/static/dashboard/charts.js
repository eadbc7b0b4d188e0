// The operator's live charts, drawn as SVG from the samples of /metrics.
import { END_TO_END, HISTORY_S, ORDER_WORKFLOW, increase, latencies, rates } from "./metrics.js";
import { byId, text } from "./dom.js";

const SVG_NS = "http://www.w3.org/2000/svg";
const COLORS = ["#1d4ed8", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04"];

const fmt = (v) => (v === 0 ? "0" : v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2));
const svg = (name, attributes = {}) => {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
};

/** A round number at or above `value`, for the top of an axis. */
function niceMax(value) {
  if (!(value > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((f) => f * magnitude).find((top) => top >= value);
}

/** Draws `series` ([{ name, points: [[t, value|null]], note, dashed }]) into the chart `id`,
 * over the time the `samples` (oldest first) span; `empty` is its legend when there is no
 * series, `footnote` a line after the legend. */
function drawChart(id, samples, series, empty, footnote) {
  const box = byId(id);
  const [W, H, left, right, top, bottom] = [400, 170, 40, 8, 8, 18];
  // The span grows with the page's samples, from a minute to HISTORY_S.
  const now = samples.at(-1)?.t ?? Date.now() / 1000;
  const span = Math.min(HISTORY_S, Math.max(60, now - (samples[0]?.t ?? now)));
  const from = now - span;
  const seen = series.flatMap((s) => s.points.filter(([t, v]) => v != null && t >= from).map(([, v]) => v));
  const max = niceMax(Math.max(0, ...seen));
  const x = (t) => left + ((t - from) / span) * (W - left - right);
  const y = (v) => top + (1 - v / max) * (H - top - bottom);
  const shapes = [];
  for (const v of [0, max / 2, max]) {
    shapes.push(svg("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), stroke: "#e5e7eb" }));
    const label = svg("text", { x: left - 4, y: y(v) + 3, "text-anchor": "end" });
    label.textContent = fmt(v);
    shapes.push(label);
  }
  const ago = span >= 120 ? `−${Math.round(span / 60)} min` : `−${Math.round(span)} s`;
  for (const [t, caption, anchor] of [[from, ago, "start"], [now, "now", "end"]]) {
    const label = svg("text", { x: x(t), y: H - 4, "text-anchor": anchor });
    label.textContent = caption;
    shapes.push(label);
  }
  const legend = [];
  series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length];
    let [d, pen, count, highest] = ["", false, 0, 0];
    for (const [t, v] of s.points) {
      if (v == null || t < from) {
        pen = false;
        continue;
      }
      // A segment starts with a dot of its own (round caps), so that a lone point shows.
      d += pen ? `L${x(t).toFixed(1)},${y(v).toFixed(1)}` : `M${x(t).toFixed(1)},${y(v).toFixed(1)}l0,0`;
      pen = true;
      count += 1;
      highest = Math.max(highest, v);
    }
    shapes.push(svg("path", {
      d, fill: "none", stroke: color, "stroke-width": 1.8, "stroke-linecap": "round", "stroke-linejoin": "round",
      ...(s.dashed ? { "stroke-dasharray": "5 4" } : {}),
      "data-series": s.name, "data-points": count, "data-max": highest,
    }));
    const item = document.createElement("li");
    item.dataset.series = s.name;
    if (s.code) item.dataset.code = s.code;
    if (s.total != null) item.dataset.total = s.total;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = s.dashed ? `repeating-linear-gradient(90deg, ${color} 0 3px, transparent 3px 5px)` : color;
    item.append(swatch, text(s.name), text(s.note ?? ""));
    legend.push(item);
  });
  if (!series.length && empty) {
    const item = document.createElement("li");
    item.className = "muted";
    item.textContent = empty;
    legend.push(item);
  }
  if (footnote) {
    const item = document.createElement("li");
    item.className = "muted footnote";
    item.textContent = footnote;
    legend.push(item);
  }
  box.querySelector("svg").replaceChildren(...shapes);
  box.querySelector(".legend").replaceChildren(...legend);
}

/** The latency chart: an order's, from its workflow's start to its end (the SDK's histogram),
 * with the latency of placing it (POST /api/orders) as a second, dashed pair; or placing alone
 * when this process's /metrics has no such histogram (no worker here, or no order has finished
 * since it started). Its heading says which. */
function drawLatency(samples, last) {
  const endToEnd = samples.some((s) => s.endToEnd.size > 0);
  const pairs = [
    ...(endToEnd ? [["end-to-end", (s) => s.endToEnd, false]] : []),
    ["placement", (s) => s.latency, endToEnd],
  ];
  const series = pairs.flatMap(([kind, pick, dashed]) =>
    [["p50", 0.5], ["p99", 0.99]].map(([quantileName, q]) => ({ name: `${kind} ${quantileName}`, dashed, points: latencies(samples, q, pick) })));
  // Milliseconds, or seconds once an order takes 10 s or more (one awaiting its customer's bank).
  const highest = Math.max(0, ...series.flatMap((s) => s.points.map(([, v]) => v ?? 0)));
  const [unit, scale] = highest >= 10 ? ["s", 1] : ["ms", 1000];
  for (const s of series) {
    s.points = s.points.map(([t, v]) => [t, v == null ? null : v * scale]);
    s.note = latest(s.points, ` ${unit}`);
  }
  const box = byId("chart-latency");
  box.dataset.shows = endToEnd ? "end-to-end" : "placement";
  box.querySelector("h3").textContent = endToEnd
    ? `Order latency, end to end (workflow start to end) and placement (POST /api/orders, dashed), ${unit}`
    : `Order placement latency (POST /api/orders), ${unit}`;
  box.querySelector("svg").setAttribute("aria-label", endToEnd ? "orders' end-to-end and placement latency" : "order placement latency");
  drawChart("chart-latency", samples, series, null, endToEnd
    ? `End to end: ${END_TO_END.replace(/_bucket$/, "")}{workflow_type="${ORDER_WORKFLOW}"}, every task queue.`
    : last.engine
      ? "No order has finished since this process started: placement latency only, until one does."
      : "No end-to-end histogram in this process's /metrics (an api process runs no worker): placement latency only.");
}

/** The latest value of a series, for its legend. */
const latest = (points, unit) => {
  const last = points.at(-1)?.[1];
  return last == null ? "" : ` (now ${fmt(last)}${unit})`;
};

/** The three charts, from the `samples` of /metrics (oldest first). */
export function drawCharts(samples) {
  const last = samples.at(-1);
  if (!last) return;
  const orders = [["placed", (s) => s.placed], ["completed", (s) => s.completed], ["failed", (s) => s.failed], ["cancelled", (s) => s.cancelled]]
    .filter(([name, pick]) => name === "placed" || pick(last) != null)
    .map(([name, pick]) => {
      const points = rates(samples, pick);
      return { name, points, note: latest(points, "/s") };
    });
  drawChart("chart-orders", samples, orders);
  drawLatency(samples, last);
  // Every code seen in the window, with its count in the window and since the process started.
  const first = samples[0];
  const codes = [...new Set(samples.flatMap((s) => Object.keys(s.failures)))].sort();
  const failures = codes.map((code) => {
    const total = last.failures[code] ?? 0;
    const inWindow = increase(first.failures[code] ?? 0, total) ?? 0;
    return {
      name: code, code, total, points: rates(samples, (s) => s.failures[code] ?? 0),
      note: `: ${inWindow} in the window, ${total} since the process started`,
    };
  });
  const noWorker = last.failed == null && last.completed == null;
  drawChart("chart-failures", samples, failures, noWorker
    ? "This process runs no worker: orders' outcomes are on the worker's METRICS_PORT."
    : "No failures since the process started.");
}
