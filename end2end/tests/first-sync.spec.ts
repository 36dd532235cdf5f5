import { test, expect, startDashboard } from "./fixtures";
import * as fs from "fs";
import * as path from "path";

const root = path.resolve(__dirname, "../..");

// A cold start of a merchant whose first sync takes several seconds (10,000 devices, 400 ms a
// page): the grid does not wait for it. It shows the devices fetched so far, marked partial,
// offers no export yet, and turns into the full view by itself.
test("a first sync shows the devices fetched so far, then the full list by itself", async ({ page }) => {
  test.setTimeout(90_000);
  fs.rmSync(path.join(root, "target/e2e-first-sync"), { recursive: true, force: true });
  const { server, base } = await startDashboard({
    DATA_DIR: "target/e2e-first-sync",
    DEMO_DEVICES: "10000",
    DEMO_LATENCY_MS: "400",
    DEMO_CHANGES_PER_MINUTE: "0",
  });
  try {
    const started = Date.now();
    const response = await page.goto(`${base}/`);
    const answered = Date.now() - started;
    expect(response!.status()).toBe(200);
    const partial = page.getByTestId("partial");
    await expect(partial).toBeVisible();
    await expect(partial).toContainText("First sync in progress");
    await expect(page.getByTestId("export-later")).toBeVisible();
    await expect(page.getByTestId("data-as-of")).toHaveText("first sync");
    await expect(page.getByTestId("export-menu")).toHaveCount(0);
    await expect(page.locator("[data-hydrated]")).toHaveAttribute("data-hydrated", "true");
    // Rows arrive while the sync runs, still marked partial.
    await expect(page.getByTestId("device-row").first()).toBeVisible({ timeout: 20_000 });
    await expect(partial).toContainText(/showing the [\d,]+ devices fetched so far of about 10,000/);
    await page.screenshot({ path: "screenshots/first-sync-partial.png", fullPage: false });
    // Then, without a reload, the whole list.
    await expect(partial).toHaveCount(0, { timeout: 60_000 });
    await expect(page.getByTestId("row-summary")).toHaveText("Rows 1–50 of 10,000");
    await expect(page.getByTestId("export-menu")).toBeVisible();
    console.log(`first page answered in ${answered} ms (navigation, cold start)`);
  } finally {
    server.kill("SIGTERM");
  }
});
