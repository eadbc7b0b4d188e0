// Debian's headless Chromium for the dashboard scripts, and how they fail: with a screenshot of
// the page as it was, the message on stderr and exit code 1.
import { chromium } from "playwright-core";

export async function launch(screenshot) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    // As root in a sandbox without network: no sandbox, no background traffic.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const fail = async (message) => {
    const page = browser.contexts()[0]?.pages()[0];
    if (page && screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    console.error(message);
    await browser.close();
    process.exit(1);
  };
  return { browser, fail };
}
