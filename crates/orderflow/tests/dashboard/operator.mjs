// The operator's page: an operator watches the live charts while two orders are placed (one
// completes, one is declined and compensated), opens each order's page from the list and finds
// its timeline (steps, the compensation, the payment and, with a provider, its events), the
// Temporal UI link to its workflow, and charts with data (orders/s, the orders' end-to-end
// p50/p99 latency from the Temporal SDK's histogram with their placement's beside it, failures
// by code). The product's name is hostile HTML: it must show as text and run nothing.
// Run by tests/dashboard.rs:
//   node operator.mjs <base url> <screenshot path> <events|no-events> [<operator token> <customer token>]
// With tokens (AUTH_MODE=jwt) the customer places the orders in a page of their own, where the
// operator's page says it is for operators and shows nothing, and /metrics is refused.
import { launch } from "./browser.mjs";

const [baseUrl, screenshot, events, operatorToken, customerToken] = process.argv.slice(2);
const { browser, fail } = await launch(screenshot);
const viewport = { width: 1400, height: 1000 };
const HOSTILE = "<img src=x onerror=\"window.__xss=1\">";

async function open(token) {
  const page = await browser.newPage({ viewport });
  const problems = [];
  page.on("pageerror", (e) => problems.push(`uncaught: ${e}`));
  page.on("console", (m) => { if (/Content Security Policy|Refused to/.test(m.text())) problems.push(m.text()); });
  await page.goto(`${baseUrl}/dashboard`);
  await page.waitForSelector("#products tbody tr[data-product='prod-001']", { timeout: 15000 });
  if (token) {
    await page.fill("#token", token);
    await page.click("#token-form button");
    await page.waitForSelector("#who:has-text('token set')", { timeout: 5000 });
  }
  return { page, problems };
}

const fitsWidth = async (page, when) => {
  const { scrollWidth, clientWidth } = await page.evaluate(() =>
    ({ scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth }));
  if (scrollWidth > clientWidth) await fail(`the page scrolls sideways ${when}: ${scrollWidth} > ${clientWidth}`);
};

try {
  // The operator first: the charts are live, their window begins when the page opens.
  const operator = await open(operatorToken);
  const page = operator.page;
  await page.waitForSelector("#operator-link", { state: "visible", timeout: 10000 });

  let customer = operator;
  if (customerToken) {
    customer = await open(customerToken);
    const c = customer.page;
    // A customer's token: no operator page, no metrics, nothing of other customers.
    await c.evaluate(() => { location.hash = "#operator"; });
    await c.waitForSelector("#operator-denied:has-text('not an operator')", { timeout: 10000 });
    if (await c.locator("#operator-body").isVisible()) await fail("a customer sees the operator's page");
    if (await c.locator("#operator-link").isVisible()) await fail("a customer has a link to the operator's page");
    const shapes = await c.locator("#operator-view svg *").count();
    if (shapes !== 0) await fail(`a customer's page drew ${shapes} chart shapes`);
    const metrics = await c.evaluate(async (t) => (await fetch("/metrics", { headers: { Authorization: `Bearer ${t}` } })).status, customerToken);
    if (metrics !== 403) await fail(`/metrics answered ${metrics} to a customer`);
    await c.evaluate(() => { location.hash = ""; });
    await c.waitForSelector("#main-view:not([hidden])");
  }

  // Two orders: one completes, one is above the card's limit and is declined.
  const c = customer.page;
  for (const [quantity, rows] of [["1", 1], ["11", 2]]) {
    await c.selectOption("#product", "prod-001");
    await c.fill("#quantity", quantity);
    await c.click("#place");
    await c.waitForFunction((n) => document.querySelectorAll("#orders tbody tr").length === n, rows, { timeout: 15000 });
  }
  if (customerToken && (await c.locator("#orders a.details").count()) !== 0) await fail("a customer's orders link to the operator's page");

  // The operator's list has them too, each linking to its page.
  await page.waitForSelector("#orders tbody tr[data-status='completed'] a.details", { timeout: 30000 });
  await page.waitForSelector("#orders tbody tr[data-status='failed'] a.details", { timeout: 30000 });
  const completedHref = await page.locator("#orders tbody tr[data-status='completed'] a.details").getAttribute("href");

  // The declined order: its steps, the compensation, the payment, the link to its workflow.
  await page.click("#orders tbody tr[data-status='failed'] a.details");
  await page.waitForSelector("#order-view:not([hidden])", { timeout: 10000 });
  await page.waitForSelector("#steps tr[data-kind='compensation'][data-step='release_stock']", { timeout: 15000 });
  for (const step of ["create_order", "reserve_stock", "process_payment"]) {
    if ((await page.locator(`#steps tr[data-kind='step'][data-step='${step}']`).count()) < 1) await fail(`the timeline lacks the step ${step}`);
  }
  if ((await page.locator("#steps tr[data-kind='step'][data-step='confirm_order']").count()) !== 0) await fail("a declined order shows confirm_order");
  const failedStep = await page.locator("#steps tr[data-step='process_payment'] td").nth(3).textContent();
  if (!failedStep.includes("failed")) await fail(`process_payment shows "${failedStep}", not failed`);
  const declinedError = await page.locator("#steps tr[data-step='process_payment'] td.error").textContent();
  if (!declinedError.includes("declined")) await fail(`process_payment's error reads "${declinedError}"`);
  if ((await page.locator("#timeline tr[data-kind='record']:has-text('prod-001 released')").count()) !== 1) await fail("the stock's release is not in the timeline");
  const released = await page.locator("#steps tr[data-kind='compensation'][data-step='release_stock'] td").nth(3).textContent();
  if (!released.includes("completed")) await fail(`release_stock shows "${released}", not completed`);
  const status = await page.locator("#order-status").textContent();
  const error = await page.locator("#order-error").textContent();
  if (status !== "failed" || !error.includes("payment_declined")) await fail(`the order shows ${status} ${error}`);
  const payment = await page.locator("#payment-summary").textContent();
  if (!payment.includes("status failed") || !payment.includes("declined")) await fail(`the payment shows "${payment}"`);
  if ((await page.locator("#timeline tr[data-kind='payment']").count()) < 1) await fail("no payment in the timeline");
  const orderId = await page.locator("#order-id").textContent();
  const workflowId = await page.locator("#order-workflow").textContent();
  if (workflowId !== `order-${orderId}`) await fail(`workflow ${workflowId} for order ${orderId}`);
  const temporalUi = await page.evaluate(() => document.body.dataset.temporalUiUrl);
  const link = await page.locator("#order-temporal-link").getAttribute("href");
  if (link !== `${temporalUi}/namespaces/default/workflows/${workflowId}`) await fail(`bad Temporal UI link ${link}`);
  const traceShown = await page.locator("#order-trace").isVisible();
  if (traceShown && !(await page.locator("#order-trace").textContent()).trim()) await fail("an empty trace id is shown");

  // The hostile product name is text, and ran nothing.
  const items = await page.locator("#order-items").textContent();
  if (!items.includes(HOSTILE)) await fail(`the items show "${items}", not the name as text`);
  if (await page.evaluate(() => window.__xss !== undefined || document.querySelectorAll("img").length !== 0)) await fail("the product's name was run as HTML");

  // The charts have data: orders placed, completed and failed; both quantiles of the orders' end
  // to end latency (the app runs a worker, so /metrics has the SDK's histogram) and of their
  // placement; the failure's code.
  await page.waitForFunction(() => {
    const n = (selector, attribute) => Number(document.querySelector(selector)?.getAttribute(attribute) ?? 0);
    return n("#chart-orders path[data-series='placed']", "data-max") > 0
      && n("#chart-orders path[data-series='completed']", "data-max") > 0
      && n("#chart-orders path[data-series='failed']", "data-max") > 0
      && n("#chart-latency path[data-series='end-to-end p50']", "data-points") > 0
      && n("#chart-latency path[data-series='end-to-end p99']", "data-points") > 0
      && n("#chart-latency path[data-series='placement p50']", "data-points") > 0
      && n("#chart-latency path[data-series='placement p99']", "data-points") > 0
      && n("#chart-failures path[data-series='payment_declined']", "data-max") > 0;
  }, null, { timeout: 30000 }).catch(async () => {
    const seen = await page.evaluate(() => [...document.querySelectorAll(".chart path")].map((p) => `${p.dataset.series}: ${p.dataset.points} points, max ${p.dataset.max}`));
    await fail(`the charts lack data: ${seen.join("; ")}`);
  });
  const declined = page.locator("#chart-failures li[data-code='payment_declined']");
  if (Number(await declined.getAttribute("data-total")) < 1) await fail("payment_declined has no failures in the legend");
  const shows = await page.locator("#chart-latency").getAttribute("data-shows");
  if (shows !== "end-to-end") await fail(`the latency chart shows ${shows}, not the orders' end-to-end latency`);
  const heading = await page.locator("#chart-latency h3").textContent();
  if (!/end to end/.test(heading) || !/placement/.test(heading)) await fail(`the latency chart's heading reads "${heading}"`);
  for (const series of ["end-to-end p99", "placement p99"]) {
    const legend = await page.locator(`#chart-latency li[data-series='${series}']`).textContent();
    if (!legend.includes(series)) await fail(`the latency legend reads "${legend}"`);
  }
  const footnote = await page.locator("#chart-latency li.footnote").textContent();
  if (!footnote.includes("temporal_workflow_endtoend_latency_seconds")) await fail(`the latency chart's footnote reads "${footnote}"`);

  await fitsWidth(page, "on the operator's page");
  await page.screenshot({ path: screenshot, fullPage: true });

  // The completed order, looked up by its id: its steps in order, no compensation, and the
  // provider's event when there is a provider.
  const completedId = decodeURIComponent(completedHref.replace("#operator/", ""));
  await page.fill("#lookup-id", completedId);
  await page.click("#lookup button");
  await page.waitForSelector("#steps tr[data-step='notify_customer']", { timeout: 15000 });
  const steps = await page.evaluate(() => [...document.querySelectorAll("#steps tr[data-kind='step']")].map((r) => r.dataset.step));
  const expected = events === "events"
    ? ["create_order", "reserve_stock", "process_payment", "await_payment", "confirm_order", "notify_customer"]
    : ["create_order", "reserve_stock", "process_payment", "confirm_order", "notify_customer"];
  if (steps.join() !== expected.join()) await fail(`the completed order's steps are ${steps.join()}`);
  if ((await page.locator("#steps tr[data-kind='compensation']").count()) !== 0) await fail("a completed order shows compensations");
  if ((await page.locator("#order-status").textContent()) !== "completed") await fail("the looked-up order is not completed");
  if (events === "events") {
    await page.waitForSelector("#payment-events tr[data-type='payment_intent.authorized']", { timeout: 10000 });
    // What happened when it happened: first awaiting the customer, then (the provider's event)
    // authorized, never "authorized" at the moment it was only asked for.
    if ((await page.locator("#timeline tr[data-kind='payment']:has-text('payment authorized: the customer confirmed it')").count()) !== 1) {
      await fail("the provider's event is not in the timeline");
    }
    if ((await page.locator("#timeline tr[data-kind='payment']:has-text('payment awaiting the customer')").count()) !== 1) {
      await fail("the timeline does not say the payment first awaited the customer");
    }
  } else {
    await page.waitForSelector("#payment-events tr.empty", { timeout: 10000 });
  }
  const captured = await page.locator("#payment-summary").textContent();
  if (!captured.includes("status captured")) await fail(`the completed order's payment shows "${captured}"`);

  await page.setViewportSize({ width: 390, height: 844 });
  await fitsWidth(page, "on the operator's page at 390×844");
  const problems = [...operator.problems, ...(customer === operator ? [] : customer.problems)];
  if (problems.length) await fail(`the browser reported: ${problems.join("; ")}`);
  console.log("operator page: timeline with steps, compensation and payment, Temporal UI link, charts with data (end-to-end and placement latency), failure code shown, hostile name inert");
  await browser.close();
} catch (error) {
  await fail(`operator page test failed: ${error.stack ?? error}`);
}
