// First contentful paint of a page in headless Chromium (Debian's), as Playwright's
// performance timing reports it: `node end2end/perf/fcp.mjs URL [runs]` prints one JSON line
// with each run's FCP and the wasm's hydration time. Used by benches/server_load.rs.
import { chromium } from "playwright-core";

const [, , url, runsArg] = process.argv;
const runs = Number(runsArg ?? 5);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const fcp = [];
const hydrated = [];
for (let i = 0; i < runs; i++) {
  // A new context each time: nothing cached, as a first visit.
  const context = await browser.newContext({ locale: "en-US" });
  const page = await context.newPage();
  const start = Date.now();
  await page.goto(url, { waitUntil: "load" });
  await page.waitForSelector('[data-hydrated="true"]', { timeout: 30_000 });
  hydrated.push(Date.now() - start);
  const paint = await page.evaluate(() =>
    performance.getEntriesByType("paint").find((e) => e.name === "first-contentful-paint")?.startTime ?? -1,
  );
  fcp.push(Math.round(paint));
  await context.close();
}
await browser.close();
console.log(JSON.stringify({ fcp, hydrated }));
