import { defineConfig, devices } from "@playwright/test";
import { chromiumArgs, chromiumPath } from "./chromium";

// Runs against the release server (`cargo leptos build --release` first: `scripts/e2e.sh` does
// both), in Debian's Chromium (never a downloaded browser: these machines cannot download one).
//
// The server is started here, with the settings the tests rely on: an empty data directory (so
// each run syncs anew), a slow simulated network (600 ms a page, so a sync's progress can be
// watched), and port 0: it prints the port it got, which Playwright reads into E2E_PORT for the
// workers (no port is fixed, so a running `make run` does not collide with the tests). A second
// server, a merchant whose list keeps changing, serves the change history's tests
// (E2E_HISTORY_PORT).
const port = process.env.E2E_PORT;

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  // A committed `test.only` would shrink the suite silently: refuse it, everywhere.
  forbidOnly: true,
  retries: 0,
  reporter: [["list"], ["json", { outputFile: "../target/e2e-report.json" }]],
  webServer: [
    {
      command: "rm -rf target/e2e-data && exec target/release/wxpay-devices",
      cwd: "..",
      env: {
        LEPTOS_SITE_ADDR: "127.0.0.1:0",
        LEPTOS_SITE_ROOT: "target/site",
        DATA_DIR: "target/e2e-data",
        DEMO_DEVICES: "3000",
        DEMO_LATENCY_MS: "600",
        // A still list: the grid's tests count its 3,000 devices, before and after a refresh.
        DEMO_CHANGES_PER_MINUTE: "0",
        LOG_FORMAT: "text",
        RUST_LOG: "warn,wxpay_devices::server=info",
      },
      wait: { stderr: /dashboard listening on http:\/\/127\.0\.0\.1:(?<e2e_port>\d+)/ },
      timeout: 90_000,
      stdout: "pipe",
      stderr: "pipe",
      gracefulShutdown: { signal: "SIGTERM", timeout: 10_000 },
    },
    {
      // The change history's tests: a small merchant that changes 10 devices a second and is
      // synced every few seconds (the quota allows it at 300 devices), so each sync finds changes.
      command: "rm -rf target/e2e-history && exec target/release/wxpay-devices",
      cwd: "..",
      env: {
        LEPTOS_SITE_ADDR: "127.0.0.1:0",
        LEPTOS_SITE_ROOT: "target/site",
        DATA_DIR: "target/e2e-history",
        DEMO_DEVICES: "300",
        DEMO_LATENCY_MS: "0",
        DEMO_CHANGES_PER_MINUTE: "600",
        CACHE_TTL_SECS: "1",
        LOG_FORMAT: "text",
        RUST_LOG: "warn,wxpay_devices::server=info",
      },
      wait: { stderr: /dashboard listening on http:\/\/127\.0\.0\.1:(?<e2e_history_port>\d+)/ },
      timeout: 90_000,
      stdout: "pipe",
      stderr: "pipe",
      gracefulShutdown: { signal: "SIGTERM", timeout: 10_000 },
    },
  ],
  use: {
    baseURL: port ? `http://127.0.0.1:${port}` : undefined,
    locale: "en-US",
    actionTimeout: 10_000,
    trace: "off",
  },
  projects: [
    {
      name: "chromium",
      use: {
        ...devices["Desktop Chrome"],
        viewport: { width: 1400, height: 900 },
        launchOptions: { executablePath: chromiumPath, headless: true, args: chromiumArgs },
      },
    },
  ],
});
