import { test, expect, startDashboard } from "./fixtures";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

// A second dashboard, started here with a password, beside the open one the suite runs against.
const root = path.resolve(__dirname, "../..");
const bin = path.join(root, "target/release/wxpay-devices");

test("signing in through the form shows the dashboard, working under its CSP; signing out ends the session", async ({ page }) => {
  const password = "e2e passphrase 2026";
  const hash = execFileSync(bin, ["hash-password"], { input: password + "\n" }).toString().trim();
  expect(hash).toMatch(/^\$argon2id\$/);
  // A data directory of its own, empty: nothing left from an earlier run or build.
  fs.rmSync(path.join(root, "target/e2e-auth-data"), { recursive: true, force: true });
  const { server, base } = await startDashboard({
    DASHBOARD_PASSWORD_HASH: hash,
    DATA_DIR: "target/e2e-auth-data",
    DEMO_DEVICES: "500",
    DEMO_LATENCY_MS: "0",
  });
  try {
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

    const session = (await page.context().cookies(base)).find((c) => c.name === "wxd_session");
    expect(session?.httpOnly).toBe(true);
    const withOldCookie = () =>
      page.request.get(`${base}/export.csv`, { headers: { cookie: `wxd_session=${session!.value}` } });
    expect((await withOldCookie()).status()).toBe(200);

    await page.getByTestId("sign-out").click();
    await expect(page).toHaveURL(/\/login$/);
    expect((await page.request.get(`${base}/export.csv`)).status()).toBe(401);
    // The cookie the browser held, replayed by anyone who copied it, is refused too.
    expect((await withOldCookie()).status()).toBe(401);
  } finally {
    server.kill("SIGTERM");
  }
});
