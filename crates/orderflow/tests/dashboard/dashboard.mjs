// Drives the dashboard like a person: place an order in the page and watch it complete, place
// another and cancel it from the page, and keep a screenshot. On a 1400×1000 window the page
// must fit (no sideways scrolling), and finished orders must have no cancel button.
// Run by tests/dashboard.rs:
//   node dashboard.mjs <base url> <screenshot path> [<bearer token>]
// With a token (AUTH_MODE=jwt) it is typed into the page's token field first, and the orders are
// placed without a customer (the token's own); without one the page must show the open-API banner.
import { launch } from "./browser.mjs";

const [baseUrl, screenshot, token] = process.argv.slice(2);
const { browser, fail } = await launch(screenshot);

try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  // The page fits the window: nothing cut off on the right, no sideways scrolling.
  const fitsWidth = async (when) => {
    const { scrollWidth, clientWidth } = await page.evaluate(() =>
      ({ scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth }));
    if (scrollWidth > clientWidth) {
      await fail(`the page scrolls sideways ${when}: scrollWidth ${scrollWidth} > clientWidth ${clientWidth}`);
    }
  };
  await page.goto(`${baseUrl}/dashboard`);
  await page.waitForSelector("#products tbody tr[data-product='prod-001']", { timeout: 15000 });
  await fitsWidth("once loaded");
  const banner = await page.locator("#open-banner").isVisible();
  if (banner === Boolean(token)) await fail(`the AUTH_MODE=off banner is ${banner ? "shown" : "missing"}`);
  if (token) {
    if (!(await page.locator("#token-form").isVisible())) await fail("no token field in jwt mode");
    await page.fill("#token", token);
    await page.click("#token-form button");
    await page.waitForSelector("#who:has-text('token set')", { timeout: 5000 });
  }

  // Place an order and watch it reach completed.
  const countRows = () => page.locator("#orders tbody tr").count();
  await page.selectOption("#product", "prod-001");
  await page.fill("#quantity", "1");
  await page.click("#place");
  await page.waitForSelector("#message:has-text('accepted')", { timeout: 15000 });
  await page.waitForFunction(() => document.querySelectorAll("#orders tbody tr").length === 1, null, { timeout: 15000 });
  await page.waitForSelector("#orders tbody tr[data-status='completed']", { timeout: 30000 });

  // Place another and cancel it while it is still being processed.
  await page.selectOption("#product", "prod-003");
  await page.click("#place");
  await page.waitForFunction(() => document.querySelectorAll("#orders tbody tr").length === 2, null, { timeout: 15000 });
  const newest = page.locator("#orders tbody tr").first();
  await newest.locator("button.cancel").click();
  await page.waitForSelector("#message:has-text('Cancellation accepted')", { timeout: 15000 });
  await page.waitForSelector("#orders tbody tr[data-status='cancelled']", { timeout: 30000 });

  // Finished orders cannot be cancelled: no button on them (one snapshot of the table, which
  // is rebuilt every second).
  const buttons = await page.evaluate(() => Object.fromEntries(
    [...document.querySelectorAll("#orders tbody tr")].map((row) => [row.dataset.status, row.querySelectorAll("button.cancel").length])));
  for (const status of ["completed", "cancelled"]) {
    if (buttons[status] !== 0) await fail(`expected a ${status} order without a cancel button (cancel buttons by status: ${JSON.stringify(buttons)})`);
  }

  // The stock table follows: one iPhone sold, the cancelled AirPods back on the shelf.
  const sold = await page.locator("#products tbody tr[data-product='prod-001'] td").nth(4).textContent();
  if (sold.trim() !== "1") await fail(`expected 1 prod-001 sold, the page shows ${sold}`);
  const link = await newest.locator("a.workflow").getAttribute("href");
  if (!link.includes("/namespaces/default/workflows/order-")) await fail(`bad Temporal link ${link}`);
  if ((await countRows()) !== 2) await fail("expected exactly two orders");

  await fitsWidth("with the orders shown");

  await page.screenshot({ path: screenshot, fullPage: true });
  // And on a smaller laptop and a phone (the layout has one column there).
  for (const [width, height] of [[1280, 800], [390, 844]]) {
    await page.setViewportSize({ width, height });
    await fitsWidth(`at ${width}×${height}`);
  }
  console.log("dashboard: fits 1400×1000 (and 1280×800, 390×844), order completed, order cancelled, no cancel buttons on them, screenshot saved");
  await browser.close();
} catch (error) {
  await fail(`dashboard test failed: ${error.stack ?? error}`);
}
