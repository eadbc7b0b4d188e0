// The operator's page (#operator, #operator/<order id>): one order's timeline, and live charts.
import { AUTH_MODE, NAMESPACE, TEMPORAL_UI, api, token } from "./api.js";
import { breakable, byId, cell } from "./dom.js";
import { HISTORY_S, RATE_WINDOW_S, parseMetrics, summarise } from "./metrics.js";
import { drawCharts } from "./charts.js";

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

export const METRICS_EVERY_MS = 2000;
const FINAL = new Set(["completed", "failed", "cancelled"]);
const STATUSES = new Set(["pending", "validating", "payment", ...FINAL]);
// The steps that undo an order (after `close_order` records that it will not complete).
const COMPENSATIONS = new Set(["close_order", "refund_payment", "release_stock"]);

// Whether this caller may see operators' data: null until /metrics has answered for the
// current token, then true or false. The server decides (403 for a customer's token); the page
// only avoids asking for what it would not be given.
export let operator = null;
// Snapshots of /metrics, oldest first:
// { t, placed, completed, failed, cancelled, failures, latency, endToEnd, engine }.
const samples = [];
// The order in the address (#operator/<id>), and the last answer of its workflow's state query.
let shownOrder = null;
let lastState = null;
let orderInFlight = false;

const workflowUrl = (workflowId) =>
  `${TEMPORAL_UI}/namespaces/${encodeURIComponent(NAMESPACE)}/workflows/${encodeURIComponent(workflowId)}`;
const clock = (at) => {
  const d = new Date(at);
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, "0")}`;
};

export function forgetOperator() {
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

export function route() {
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
    redrawCharts();
  }
}
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

export async function refreshOrder() {
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

export async function sampleMetrics() {
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
    redrawCharts();
  } catch (e) {
    byId("metrics-message").textContent = `Cannot read /metrics: ${e}`;
  }
}

/** The charts, when they are shown to an operator. */
function redrawCharts() {
  if (operator !== true || byId("operator-view").hidden) return;
  drawCharts(samples);
}
