import { test, expect } from "@playwright/test";
import { chromiumArgs, chromiumPath } from "../chromium";

// The door, in a real browser. Not the console-error fixture: refused requests log errors.
//
// DNS rebinding: Chromium resolves evil.test to 127.0.0.1, as an attacker's DNS would after a
// page at evil.test has loaded.
test.use({
  launchOptions: {
    executablePath: chromiumPath,
    headless: true,
    args: [...chromiumArgs, "--host-resolver-rules=MAP evil.test 127.0.0.1"],
  },
});

test("a page whose name resolves to this machine cannot read the device list", async ({ page, baseURL }) => {
  const port = new URL(baseURL!).port;
  // The real dashboard answers at its own name.
  expect((await page.request.get(`${baseURL}/export.csv`)).status()).toBe(200);
  for (const path of ["/export.csv", "/", "/metrics"]) {
    const r = await page.goto(`http://evil.test:${port}${path}`);
    expect(r!.status(), path).toBe(403);
    await expect(page.locator("body")).toContainText("DASHBOARD_ALLOWED_HOSTS");
    await expect(page.locator("body")).not.toContainText("device_sn");
  }
});

test("another site's page cannot make the dashboard sync", async ({ page, baseURL }) => {
  // A page at attacker.test with a form that posts to the dashboard, as any site could.
  await page.route("http://attacker.test/", (route) =>
    route.fulfill({
      contentType: "text/html",
      body: `<form method="post" action="${baseURL}/api/refresh_now"><button>go</button></form>`,
    }),
  );
  await page.goto("http://attacker.test/");
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/api/refresh_now")),
    page.getByRole("button", { name: "go" }).click(),
  ]);
  expect(response.status()).toBe(403);
  expect(await response.text()).toContain("another site");
  const status = await (await page.request.post(`${baseURL}/api/current_sync_status`)).json();
  expect(status.running).toBe(false);
});
