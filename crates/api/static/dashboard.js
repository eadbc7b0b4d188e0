// The OrderFlow dashboard. Filled in by the server (data attributes of <body>): where the
// Temporal Web UI is, the namespace, and AUTH_MODE. No inline script: the page's
// Content-Security-Policy allows scripts from this origin only.
const TEMPORAL_UI = document.body.dataset.temporalUiUrl;
const NAMESPACE = document.body.dataset.temporalNamespace;
const AUTH_MODE = document.body.dataset.authMode;
// The simulated payment provider, when the dashboard may play the customer's bank app.
const PAYMENT_SIMULATOR = document.body.dataset.paymentSimulator;
document.getElementById("temporal-link").href = TEMPORAL_UI;

// AUTH_MODE=jwt: every call carries the token typed in above. It lives in this variable only
// (not in localStorage, where any script of this origin could read it later).
let token = null;
const api = (path, options = {}) => {
  const headers = { ...(options.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  return fetch(path, { ...options, headers });
};
if (AUTH_MODE === "off") {
  document.getElementById("open-banner").hidden = false;
} else {
  document.getElementById("customer").value = "";
  document.getElementById("customer").required = false;
  document.getElementById("customer").placeholder = "the token's own";
  document.getElementById("token-form").hidden = false;
  document.getElementById("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    token = document.getElementById("token").value.trim() || null;
    document.getElementById("who").textContent = token ? "token set" : "";
    // Another token may be another person: forget what the last one was allowed to see.
    forgetOperator();
    refresh();
    sampleMetrics();
  });
}

const text = (value) => document.createTextNode(value ?? "");
const cell = (row, value, className) => {
  const td = row.insertCell();
  if (value instanceof Node) td.appendChild(value); else td.appendChild(text(value));
  if (className) td.className = className;
  return td;
};
// A snake_case name that may break after its underscores when its column is narrow.
const breakable = (value) => {
  const span = document.createElement("span");
  (value ?? "").split("_").forEach((part, i) => {
    if (i) span.append("_", document.createElement("wbr"));
    span.append(part);
  });
  return span;
};
const say = (message, isError) => {
  const box = document.getElementById("message");
  box.textContent = message;
  box.className = isError ? "error" : "";
};
let products = [];
// The statuses an order can still be cancelled in (OrderStatus: completed, failed and
// cancelled are final).
const CANCELLABLE = new Set(["pending", "validating", "payment"]);
// A fresh Idempotency-Key per submission (crypto.randomUUID needs a secure context).
const newKey = () => (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`);

async function refreshProducts() {
  products = await (await api("/api/products")).json();
  const body = document.querySelector("#products tbody");
  body.replaceChildren();
  for (const p of products) {
    const row = body.insertRow();
    row.dataset.product = p.id;
    cell(row, `${p.name}`, "name");
    cell(row, p.price, "num");
    cell(row, p.available, "num");
    cell(row, p.reserved, "num");
    cell(row, p.sold, "num");
  }
  const select = document.getElementById("product");
  if (select.options.length !== products.length) {
    select.replaceChildren(...products.map((p) => new Option(`${p.name} (${p.price})`, p.id)));
  }
}

async function refreshOrders() {
  if (AUTH_MODE !== "off" && !token) return;
  const response = await api("/api/orders?limit=25");
  const page = await response.json();
  if (!response.ok) throw new Error(page.detail);
  const body = document.querySelector("#orders tbody");
  body.replaceChildren();
  for (const o of page.orders) {
    const row = body.insertRow();
    row.dataset.workflowId = o.workflow_id;
    row.dataset.status = o.status;
    cell(row, new Date(o.created_at).toLocaleTimeString());
    // Operators open the order's page from here (customers have no such page).
    if (operator === true) {
      const details = document.createElement("a");
      details.className = "details";
      details.href = `#operator/${encodeURIComponent(o.order_id)}`;
      details.textContent = o.order_id.slice(0, 8) + "…";
      cell(row, details);
    } else {
      cell(row, o.order_id.slice(0, 8) + "…");
    }
    cell(row, o.customer_id, "wrap");
    cell(row, o.total_amount, "num");
    const badge = document.createElement("span");
    badge.className = `status ${o.status}`;
    badge.textContent = o.error_code ? `${o.status}: ${o.error_code}` : o.status;
    cell(row, badge, "badge");
    cell(row, breakable(o.current_step), "step");
    const link = document.createElement("a");
    link.href = `${TEMPORAL_UI}/namespaces/${NAMESPACE}/workflows/${encodeURIComponent(o.workflow_id)}`;
    link.textContent = "workflow";
    link.className = "workflow";
    link.target = "_blank";
    cell(row, link);
    // Only an order still in flight can be cancelled; a finished one keeps an empty cell.
    const actions = [];
    if (CANCELLABLE.has(o.status)) {
      const cancel = document.createElement("button");
      cancel.className = "secondary cancel";
      cancel.textContent = "cancel";
      cancel.onclick = () => cancelOrder(o.workflow_id);
      actions.push(cancel);
    }
    // A payment awaiting the customer: answer for them, at the simulated provider.
    if (PAYMENT_SIMULATOR && o.current_step === "await_payment" && o.payment_id) {
      for (const [label, succeed] of [["confirm payment", true], ["refuse payment", false]]) {
        const answer = document.createElement("button");
        answer.className = `secondary ${succeed ? "confirm-payment" : "refuse-payment"}`;
        answer.textContent = label;
        answer.onclick = () => answerPayment(o.payment_id, succeed);
        actions.push(answer);
      }
    }
    const actionsCell = row.insertCell();
    actionsCell.className = "actions";
    actionsCell.append(...actions);
  }
}

async function answerPayment(paymentId, succeed) {
  const response = await fetch(`${PAYMENT_SIMULATOR}/v1/payment_intents/${encodeURIComponent(paymentId)}/confirm`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ succeed }),
  }).catch((e) => ({ ok: false, json: async () => ({ error: { message: String(e) } }) }));
  const body = await response.json().catch(() => ({}));
  say(response.ok ? `Payment ${succeed ? "confirmed" : "refused"} at the provider.` : body.error?.message ?? "the provider refused", !response.ok);
  refreshOrders();
}

async function cancelOrder(workflowId) {
  const response = await api(`/api/orders/cancel?workflow_id=${encodeURIComponent(workflowId)}`, { method: "POST" });
  const body = await response.json();
  say(response.ok ? "Cancellation accepted." : body.detail, !response.ok);
  refreshOrders();
}

document.getElementById("order-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const product = products.find((p) => p.id === document.getElementById("product").value);
  // With a token, an empty customer means the token's own (its sub).
  const customer = document.getElementById("customer").value.trim();
  const order = {
    ...(customer ? { customer_id: customer } : {}),
    items: [{ product_id: product.id, name: product.name, quantity: Number(document.getElementById("quantity").value), price: product.price }],
  };
  const response = await api("/api/orders", {
    method: "POST",
    headers: { "Content-Type": "application/json", "Idempotency-Key": newKey() },
    body: JSON.stringify(order),
  });
  const body = await response.json();
  say(response.ok ? `Order ${body.order_id.slice(0, 8)}… accepted.` : body.detail, !response.ok);
  refreshOrders();
});

async function refresh() {
  try {
    await Promise.all([refreshOrders(), refreshProducts()]);
  } catch (e) {
    say(`Cannot reach OrderFlow: ${e}`, true);
  }
}
// ---------------------------------------------------------------------------------------------
// The operator's page (#operator, #operator/<order id>): one order's timeline, and live charts.
//
// The charts are drawn from /metrics, parsed here, rather than from a JSON endpoint made for
// them. /metrics already exists with the right access rule (operators only with AUTH_MODE=jwt)
// and is what Prometheus and the Grafana dashboard read, so the page shows the very same
// numbers. A summary endpoint would need state on the server (a sampler and a ring of
// snapshots in every process, running whether anyone looks or not) and a second description of
// the same metrics to keep in step with the first. A rate or a quantile over a sliding window is
// what Prometheus computes from two scrapes; the page does the same with its own scrapes, so its
// window begins when it is opened and it costs the server nothing when nobody watches.
// /metrics is the process's own: with `orderflow serve` (API and worker in one process) it has
// the orders' counters too, and the Temporal SDK's worker metrics, among them the histogram of
// an order's latency from its workflow's start to its end; an `api` process alone has the HTTP
// metrics (orders placed, their latency) and the worker's metrics are on the worker's
// METRICS_PORT (and in Grafana), so there the latency chart falls back to placing an order.

const METRICS_EVERY_MS = 2000;
/** The charts' span, seconds. */
const HISTORY_S = 300;
/** Each point is a rate or quantile over this many seconds before it (Prometheus' `[15s]`). */
const RATE_WINDOW_S = 15;
const FINAL = new Set(["completed", "failed", "cancelled"]);
const STATUSES = new Set(["pending", "validating", "payment", ...FINAL]);
// The steps that undo an order (after `close_order` records that it will not complete).
const COMPENSATIONS = new Set(["close_order", "refund_payment", "release_stock"]);
const SVG_NS = "http://www.w3.org/2000/svg";
const COLORS = ["#1d4ed8", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#4b5563", "#ca8a04"];

// Whether this caller may see operators' data: null until /metrics has answered for the
// current token, then true or false. The server decides (403 for a customer's token); the page
// only avoids asking for what it would not be given.
let operator = null;
// Snapshots of /metrics, oldest first:
// { t, placed, completed, failed, cancelled, failures, latency, endToEnd, engine }.
const samples = [];
// The order in the address (#operator/<id>), and the last answer of its workflow's state query.
let shownOrder = null;
let lastState = null;
let orderInFlight = false;

const byId = (id) => document.getElementById(id);
const workflowUrl = (workflowId) =>
  `${TEMPORAL_UI}/namespaces/${encodeURIComponent(NAMESPACE)}/workflows/${encodeURIComponent(workflowId)}`;
const clock = (at) => {
  const d = new Date(at);
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, "0")}`;
};
const fmt = (v) => (v === 0 ? "0" : v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toFixed(2));
const svg = (name, attributes = {}) => {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
};

function forgetOperator() {
  operator = null;
  samples.length = 0;
  lastState = null;
  clearOrder();
  showView();
}

function setOperator(allowed) {
  if (operator === allowed) return;
  operator = allowed;
  if (!allowed) {
    samples.length = 0;
    clearOrder();
  }
  showView();
  if (allowed) refreshOrder();
}

function onOperatorPage() {
  return location.hash === "#operator" || location.hash.startsWith("#operator/");
}

function showView() {
  const operatorPage = onOperatorPage();
  byId("main-view").hidden = operatorPage;
  byId("operator-view").hidden = !operatorPage;
  byId("operator-nav").hidden = operator !== true;
  byId("operator-body").hidden = operator !== true;
  const denied = byId("operator-denied");
  denied.hidden = operator === true;
  denied.textContent = operator === false
    ? "This page is for operators: the token in use is not an operator's (roles must contain \"operator\")."
    : AUTH_MODE !== "off" && !token ? "This page is for operators: set an operator's token above." : "Checking access…";
}

function route() {
  const match = /^#operator\/(.+)$/.exec(location.hash);
  let id = null;
  try {
    id = match ? decodeURIComponent(match[1]) : null;
  } catch {
    id = match[1];
  }
  if (id !== shownOrder) {
    shownOrder = id;
    lastState = null;
    clearOrder();
  }
  showView();
  if (onOperatorPage()) {
    byId("lookup-id").value = shownOrder ?? "";
    refreshOrder();
    drawCharts();
  }
}
window.addEventListener("hashchange", route);
byId("lookup").addEventListener("submit", (event) => {
  event.preventDefault();
  const id = byId("lookup-id").value.trim();
  location.hash = id ? `#operator/${encodeURIComponent(id)}` : "#operator";
});

// --- the order ------------------------------------------------------------------------------

function clearOrder() {
  byId("order-view").hidden = true;
  byId("order-message").textContent = "";
  byId("steps-message").textContent = "";
  document.querySelector("#steps tbody").replaceChildren();
  document.querySelector("#timeline tbody").replaceChildren();
  document.querySelector("#payment-events tbody").replaceChildren();
}

async function refreshOrder() {
  if (operator !== true || !shownOrder || !onOperatorPage() || orderInFlight) return;
  const id = shownOrder;
  const asked = token;
  const current = () => id === shownOrder && asked === token && operator === true;
  orderInFlight = true;
  try {
    // The order as PostgreSQL has it: status, items, payment and its provider events, and the
    // rows it left behind.
    const response = await api(`/api/orders/${encodeURIComponent(id)}`);
    const detail = await response.json().catch(() => ({}));
    if (!current()) return;
    if (!response.ok) {
      clearOrder();
      byId("order-message").textContent = detail.detail ?? `The order could not be read (HTTP ${response.status}).`;
      return;
    }
    byId("order-message").textContent = "";
    renderOrder(detail, lastState);
    // The workflow's own record: every step with its retries and errors, compensations included
    // (Temporal's query, answered by a worker). Once the order is over and its customer told,
    // it changes no more.
    if (lastState && FINAL.has(lastState.status) && lastState.customer_notified) return;
    const stateResponse = await api(`/api/orders/state?workflow_id=${encodeURIComponent(detail.workflow_id)}`);
    const state = await stateResponse.json().catch(() => ({}));
    if (!current()) return;
    if (stateResponse.ok) {
      lastState = state;
      byId("steps-message").textContent = "";
    } else {
      byId("steps-message").textContent =
        `The workflow's steps are not available now: ${state.detail ?? `HTTP ${stateResponse.status}`}`;
    }
    renderOrder(detail, lastState);
  } catch (e) {
    if (current()) byId("order-message").textContent = `Cannot reach OrderFlow: ${e}`;
  } finally {
    orderInFlight = false;
  }
}

function renderOrder(detail, state) {
  byId("order-view").hidden = false;
  byId("order-id").textContent = detail.order_id;
  const status = byId("order-status");
  status.className = STATUSES.has(detail.status) ? `status ${detail.status}` : "status";
  status.textContent = detail.status;
  byId("order-error").textContent = detail.error_code ? `${detail.error_code}: ${detail.error_message ?? ""}` : "";
  byId("order-customer").textContent = detail.customer_id;
  byId("order-items").textContent =
    (detail.items ?? []).map((i) => `${i.quantity} × ${i.name} (${i.product_id}, ${i.unit_price})`).join("; ");
  byId("order-total").textContent = detail.total_amount;
  byId("order-created").textContent = new Date(detail.created_at).toLocaleString();
  byId("order-finished").textContent = detail.completed_at ? new Date(detail.completed_at).toLocaleString() : "–";
  byId("order-workflow").textContent = detail.workflow_id;
  byId("order-temporal-link").href = workflowUrl(detail.workflow_id);
  byId("order-retries").textContent = state ? `${state.retry_count} across all steps` : "–";
  // A trace id, when the order view has one.
  const trace = typeof detail.trace_id === "string" && detail.trace_id ? detail.trace_id : null;
  byId("order-trace-label").hidden = !trace;
  byId("order-trace").hidden = !trace;
  byId("order-trace").textContent = trace ?? "";

  // The workflow's steps, in the order it ran them, compensations included.
  const steps = document.querySelector("#steps tbody");
  steps.replaceChildren();
  (state?.step_history ?? []).forEach((r, i) => {
    const row = steps.insertRow();
    const kind = COMPENSATIONS.has(r.step) ? "compensation" : "step";
    row.dataset.kind = kind;
    row.dataset.step = r.step;
    row.dataset.status = r.status;
    if (kind === "compensation") row.className = "compensation";
    const took = r.completed_at ? `${new Date(r.completed_at) - new Date(r.started_at)} ms` : "";
    const retries = r.retry_count ?? 0;
    cell(row, i + 1, "num");
    cell(row, breakable(r.step), "step");
    cell(row, kind, "kind");
    cell(row, retries ? `${r.status} after ${retries} ${retries === 1 ? "retry" : "retries"}` : r.status);
    cell(row, retries, "num");
    cell(row, clock(r.started_at));
    cell(row, took, "num");
    cell(row, r.error ?? "", "error");
  });

  // What the database recorded, by the database's clock.
  const body = document.querySelector("#timeline tbody");
  body.replaceChildren();
  for (const e of detail.timeline ?? []) {
    const row = body.insertRow();
    row.dataset.kind = /^(payment|provider event)/.test(e.event) ? "payment" : "record";
    cell(row, clock(e.at));
    cell(row, row.dataset.kind, "kind");
    cell(row, e.event, "wrap");
  }

  const payment = detail.payment;
  const events = document.querySelector("#payment-events tbody");
  events.replaceChildren();
  if (!payment) {
    byId("payment-summary").textContent = "No payment: the order ended before one was asked for.";
    return;
  }
  const parts = [`status ${payment.status}`, `amount ${payment.amount}`, `captured ${payment.captured}`, `refunded ${payment.refunded}`];
  if (payment.decline_reason) parts.push(`declined: ${payment.decline_reason}`);
  if (payment.payment_id) parts.push(`provider id ${payment.payment_id}`);
  if (payment.refund_id) parts.push(`refund ${payment.refund_id}`);
  byId("payment-summary").textContent = parts.join(" · ");
  for (const e of payment.events ?? []) {
    const row = events.insertRow();
    row.dataset.type = e.type;
    cell(row, clock(e.received_at));
    cell(row, e.type, "wrap");
    cell(row, e.outcome);
    cell(row, e.event_id, "wrap");
  }
  if (!(payment.events ?? []).length) {
    const row = events.insertRow();
    row.className = "empty";
    const td = cell(row, "No events from the provider (it answered at once, or is simulated in process).", "muted");
    td.colSpan = 4;
  }
}

// --- the metrics ----------------------------------------------------------------------------

/** Prometheus' text format: one sample a line, `name{label="value",…} value`. */
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const [, key, value] of (m[2] ?? "").matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key] = value.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

const placing = (labels) => labels.route === "/api/orders" && labels.method === "POST";
const add = (total, value) => (total ?? 0) + value;
/** The Temporal SDK's histogram of a workflow's run, from its start to its end (any outcome). */
const END_TO_END = "temporal_workflow_endtoend_latency_seconds_bucket";
const ORDER_WORKFLOW = "OrderWorkflow";

/** What the charts need from one scrape. Counters absent from it stay null (no worker here);
 * `latency` and `endToEnd` are histograms (upper bound → cumulative count), summed over their
 * label sets; `engine` says whether the Temporal SDK's metrics are there (a worker runs here). */
function summarise(metrics, t) {
  const s = {
    t, placed: 0, completed: null, failed: null, cancelled: null, failures: {},
    latency: new Map(), endToEnd: new Map(), engine: false,
  };
  for (const { name, labels, value } of metrics) {
    if (!Number.isFinite(value)) continue;
    if (name.startsWith("temporal_")) s.engine = true;
    switch (name) {
      case "orderflow_http_requests_total":
        // 201: a new order accepted (a repeated Idempotency-Key answers 200 and starts nothing).
        if (placing(labels) && labels.status === "201") s.placed += value;
        break;
      case "orderflow_orders_completed_total":
        s.completed = add(s.completed, value);
        break;
      case "orderflow_orders_cancelled_total":
        s.cancelled = add(s.cancelled, value);
        break;
      case "orderflow_orders_failed_total": {
        s.failed = add(s.failed, value);
        const code = labels.error_code || "unknown";
        s.failures[code] = add(s.failures[code], value);
        break;
      }
      case "orderflow_http_request_duration_seconds_bucket":
        if (placing(labels)) {
          const le = Number(labels.le);
          s.latency.set(le, add(s.latency.get(le), value));
        }
        break;
      // Every task queue's and namespace's orders together (a process may run several workers).
      case END_TO_END:
        if (labels.workflow_type === ORDER_WORKFLOW) {
          const le = Number(labels.le);
          s.endToEnd.set(le, add(s.endToEnd.get(le), value));
        }
        break;
    }
  }
  return s;
}

async function sampleMetrics() {
  if ((AUTH_MODE !== "off" && !token) || operator === false) return;
  // Off the operator's page /metrics is read once, to know whether to offer the page; the
  // charts are sampled only while it is shown (a scrape costs the server, every 2 s a tab).
  if (operator === true && !onOperatorPage()) return;
  const asked = token;
  try {
    const response = await api("/metrics");
    if (asked !== token) return;
    if (response.status === 401 || response.status === 403) return setOperator(false);
    if (!response.ok) {
      byId("metrics-message").textContent = `/metrics answered HTTP ${response.status}`;
      return;
    }
    const body = await response.text();
    if (asked !== token) return;
    setOperator(true);
    byId("metrics-message").textContent = "";
    samples.push(summarise(parseMetrics(body), Date.now() / 1000));
    while (samples.length > 2 && samples.at(-1).t - samples[1].t > HISTORY_S + RATE_WINDOW_S) samples.shift();
    drawCharts();
  } catch (e) {
    byId("metrics-message").textContent = `Cannot read /metrics: ${e}`;
  }
}

/** The sample about `RATE_WINDOW_S` before sample `i` (at least the one just before it). */
function windowStart(i) {
  let j = i - 1;
  while (j > 0 && samples[i].t - samples[j - 1].t <= RATE_WINDOW_S) j--;
  return j;
}

/** A counter's increase; one that went down was reset (the process restarted). */
const increase = (before, after) => (before == null || after == null ? null : after >= before ? after - before : after);

/** [time, per second] for each sample, from the counter `pick` reads. */
function rates(pick) {
  const points = [];
  for (let i = 1; i < samples.length; i++) {
    const j = windowStart(i);
    const grown = increase(pick(samples[j]), pick(samples[i]));
    points.push([samples[i].t, grown == null ? null : grown / (samples[i].t - samples[j].t)]);
  }
  return points;
}

/** `histogram_quantile`: the bucket the rank falls in, interpolated linearly. */
function quantile(q, buckets) {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (!total) return null;
  const rank = q * total;
  let [lower, below] = [0, 0];
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return lower;
      return lower + (le - lower) * (count > below ? (rank - below) / (count - below) : 0);
    }
    [lower, below] = [le, count];
  }
  return lower;
}

/** [time, seconds] of the quantile `q` over each window of the histogram `pick` reads
 * (`histogram_quantile(q, sum by (le) (rate(…[15s])))`). */
function latencies(q, pick) {
  const points = [];
  for (let i = 1; i < samples.length; i++) {
    const [now, then] = [pick(samples[i]), pick(samples[windowStart(i)])];
    const buckets = [...now.keys()].sort((a, b) => a - b).map((le) => [le, increase(then.get(le) ?? 0, now.get(le))]);
    points.push([samples[i].t, quantile(q, buckets)]);
  }
  return points;
}

/** A round number at or above `value`, for the top of an axis. */
function niceMax(value) {
  if (!(value > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((f) => f * magnitude).find((top) => top >= value);
}

/** Draws `series` ([{ name, points: [[t, value|null]], note, dashed }]) into the chart `id`;
 * `empty` is its legend when there is no series, `footnote` a line after the legend. */
function drawChart(id, series, empty, footnote) {
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
function drawLatency(last) {
  const endToEnd = samples.some((s) => s.endToEnd.size > 0);
  const pairs = [
    ...(endToEnd ? [["end-to-end", (s) => s.endToEnd, false]] : []),
    ["placement", (s) => s.latency, endToEnd],
  ];
  const series = pairs.flatMap(([kind, pick, dashed]) =>
    [["p50", 0.5], ["p99", 0.99]].map(([quantileName, q]) => ({ name: `${kind} ${quantileName}`, dashed, points: latencies(q, pick) })));
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
  drawChart("chart-latency", series, null, endToEnd
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

function drawCharts() {
  if (operator !== true || byId("operator-view").hidden) return;
  const last = samples.at(-1);
  if (!last) return;
  const orders = [["placed", (s) => s.placed], ["completed", (s) => s.completed], ["failed", (s) => s.failed], ["cancelled", (s) => s.cancelled]]
    .filter(([name, pick]) => name === "placed" || pick(last) != null)
    .map(([name, pick]) => {
      const points = rates(pick);
      return { name, points, note: latest(points, "/s") };
    });
  drawChart("chart-orders", orders);
  drawLatency(last);
  // Every code seen in the window, with its count in the window and since the process started.
  const first = samples[0];
  const codes = [...new Set(samples.flatMap((s) => Object.keys(s.failures)))].sort();
  const failures = codes.map((code) => {
    const total = last.failures[code] ?? 0;
    const inWindow = increase(first.failures[code] ?? 0, total) ?? 0;
    return {
      name: code, code, total, points: rates((s) => s.failures[code] ?? 0),
      note: `: ${inWindow} in the window, ${total} since the process started`,
    };
  });
  const noWorker = last.failed == null && last.completed == null;
  drawChart("chart-failures", failures, noWorker
    ? "This process runs no worker: orders' outcomes are on the worker's METRICS_PORT."
    : "No failures since the process started.");
}

refresh();
setInterval(refresh, 1000);
sampleMetrics();
setInterval(sampleMetrics, METRICS_EVERY_MS);
setInterval(refreshOrder, 2000);
route();
