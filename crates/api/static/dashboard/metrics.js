// Prometheus' text format parsed, a scrape summarised, and the rates and quantiles the charts show.

/** The charts' span, seconds. */
export const HISTORY_S = 300;
/** Each point is a rate or quantile over this many seconds before it (Prometheus' `[15s]`). */
export const RATE_WINDOW_S = 15;

/** Prometheus' text format: one sample a line, `name{label="value",…} value`. */
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const [, key, value] of (m[2] ?? "").matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key] = value.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    out.push({ name: m[1], labels, value: number(m[3]) });
  }
  return out;
}

/** A sample value or bucket bound: Prometheus writes infinity as `+Inf` (and `-Inf`), which
 * `Number` does not read. */
function number(text) {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  return Number(text);
}

const placing = (labels) => labels.route === "/api/orders" && labels.method === "POST";
const add = (total, value) => (total ?? 0) + value;
/** The Temporal SDK's histogram of a workflow's run, from its start to its end (any outcome). */
export const END_TO_END = "temporal_workflow_endtoend_latency_seconds_bucket";
export const ORDER_WORKFLOW = "OrderWorkflow";

/** What the charts need from one scrape. Counters absent from it stay null (no worker here);
 * `latency` and `endToEnd` are histograms (upper bound → cumulative count), summed over their
 * label sets; `engine` says whether the Temporal SDK's metrics are there (a worker runs here). */
export function summarise(metrics, t) {
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
          const le = number(labels.le);
          s.latency.set(le, add(s.latency.get(le), value));
        }
        break;
      // Every task queue's and namespace's orders together (a process may run several workers).
      case END_TO_END:
        if (labels.workflow_type === ORDER_WORKFLOW) {
          const le = number(labels.le);
          s.endToEnd.set(le, add(s.endToEnd.get(le), value));
        }
        break;
    }
  }
  return s;
}

/** The sample about `RATE_WINDOW_S` before sample `i` (at least the one just before it).
 * `samples` are summaries of scrapes, oldest first. */
function windowStart(samples, i) {
  let j = i - 1;
  while (j > 0 && samples[i].t - samples[j - 1].t <= RATE_WINDOW_S) j--;
  return j;
}

/** A counter's increase; one that went down was reset (the process restarted). */
export const increase = (before, after) => (before == null || after == null ? null : after >= before ? after - before : after);

/** [time, per second] for each sample, from the counter `pick` reads. */
export function rates(samples, pick) {
  const points = [];
  for (let i = 1; i < samples.length; i++) {
    const j = windowStart(samples, i);
    const grown = increase(pick(samples[j]), pick(samples[i]));
    points.push([samples[i].t, grown == null ? null : grown / (samples[i].t - samples[j].t)]);
  }
  return points;
}

/** `histogram_quantile`: the bucket the rank falls in, interpolated linearly. */
export function quantile(q, buckets) {
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
export function latencies(samples, q, pick) {
  const points = [];
  for (let i = 1; i < samples.length; i++) {
    const [now, then] = [pick(samples[i]), pick(samples[windowStart(samples, i)])];
    const buckets = [...now.keys()].sort((a, b) => a - b).map((le) => [le, increase(then.get(le) ?? 0, now.get(le))]);
    points.push([samples[i].t, quantile(q, buckets)]);
  }
  return points;
}
