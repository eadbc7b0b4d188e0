// Plays the customer's bank app from the dashboard: an order whose payment needs the customer
// waits in await_payment with "confirm payment" / "refuse payment" buttons (which call the
// simulated provider); one is confirmed and completes, another is refused and fails.
// Run by tests/dashboard.rs:
//   node payments.mjs <base url> <screenshot path>
import { launch } from "./browser.mjs";

const [baseUrl, screenshot] = process.argv.slice(2);
const { browser, fail } = await launch(screenshot);

try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  // The Content-Security-Policy must let the page reach the provider: a refusal shows here.
  const refused = [];
  page.on("console", (m) => { if (/Content Security Policy|Refused to connect|CORS/.test(m.text())) refused.push(m.text()); });
  await page.goto(`${baseUrl}/dashboard`);
  await page.waitForSelector("#products tbody tr[data-product='prod-001']", { timeout: 15000 });

  for (const [answer, outcome, rows] of [["confirm-payment", "completed", 1], ["refuse-payment", "failed", 2]]) {
    await page.selectOption("#product", "prod-001");
    await page.fill("#quantity", "1");
    await page.click("#place");
    await page.waitForFunction((n) => document.querySelectorAll("#orders tbody tr").length === n, rows, { timeout: 15000 });
    const newest = page.locator("#orders tbody tr").first();
    await newest.locator(`button.${answer}`).waitFor({ timeout: 15000 });
    await newest.locator(`button.${answer}`).click();
    await page.waitForSelector("#message:has-text('at the provider')", { timeout: 15000 });
    await page.waitForSelector(`#orders tbody tr[data-status='${outcome}']`, { timeout: 30000 });
  }
  const left = await page.locator("button.confirm-payment").count();
  if (left !== 0) await fail(`${left} payment buttons left on finished orders`);
  if (refused.length) await fail(`the browser refused something: ${refused.join("; ")}`);
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log("dashboard payments: one payment confirmed (completed), one refused (failed), screenshot saved");
  await browser.close();
} catch (error) {
  await fail(`dashboard payments test failed: ${error.stack ?? error}`);
}
