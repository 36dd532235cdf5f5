import { test, expect } from "./fixtures";
import { execFileSync, spawn } from "child_process";
import * as path from "path";

// A second dashboard, started here with a password, beside the open one the suite runs against.
const root = path.resolve(__dirname, "../..");
const bin = path.join(root, "target/release/wxpay-devices");
const port = 3117;
const base = `http://127.0.0.1:${port}`;

async function waitForServer() {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("the password-protected dashboard did not start");
}

test("signing in through the form shows the dashboard, working under its CSP", async ({ page }) => {
  const password = "e2e passphrase 2026";
  const hash = execFileSync(bin, ["hash-password"], { input: password + "\n" }).toString().trim();
  expect(hash).toMatch(/^\$argon2id\$/);
  const server = spawn(bin, [], {
    cwd: root,
    env: {
      ...process.env,
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      DASHBOARD_PASSWORD_HASH: hash,
      DATA_DIR: "target/e2e-auth-data",
      DEMO_DEVICES: "500",
      DEMO_LATENCY_MS: "0",
    },
    stdio: "ignore",
  });
  try {
    await waitForServer();
    const unauthenticated = await page.request.get(`${base}/export.csv`);
    expect(unauthenticated.status()).toBe(401);

    await page.goto(`${base}/?os=LINUX`);
    await expect(page).toHaveURL(/\/login\?next=%2F%3Fos%3DLINUX$/);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect(page).toHaveURL(`${base}/?os=LINUX`);
    await expect(page.locator("[data-hydrated]")).toHaveAttribute("data-hydrated", "true");
    await expect(page.getByTestId("row-summary")).toContainText("filtered from 500");
    // Hydrated and interactive under the policy: a filter click navigates on the client.
    await page.getByTestId("facet-status").getByRole("checkbox", { name: /Inactive/ }).click();
    await expect(page).toHaveURL(/status=INACTIVATED/);
    const csp = (await page.request.get(`${base}/`)).headers()["content-security-policy"];
    expect(csp).toContain("'nonce-");
    await page.screenshot({ path: "screenshots/signed-in.png" });

    await page.getByTestId("sign-out").click();
    await expect(page).toHaveURL(/\/login$/);
    expect((await page.request.get(`${base}/export.csv`)).status()).toBe(401);
  } finally {
    server.kill("SIGTERM");
  }
});
