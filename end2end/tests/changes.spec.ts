import { test, expect, openHydrated, parseCsv } from "./fixtures";
import type { Page } from "@playwright/test";

// The change history, against the second server of playwright.config.ts: a demo merchant of 300
// devices that changes 10 devices a second, synced every few seconds.
test.use({ baseURL: `http://127.0.0.1:${process.env.E2E_HISTORY_PORT}` });

/** Opens /changes (with `query`) until the history holds changes; returns how many. */
async function openWithChanges(page: Page, query = ""): Promise<number> {
  const deadline = Date.now() + 45_000;
  for (;;) {
    await openHydrated(page, `/changes${query}`);
    const text = (await page.getByTestId("changes-total").textContent()) ?? "";
    const n = Number(text.replace(/[^0-9]/g, ""));
    if (n > 0) return n;
    expect(Date.now(), "a second sync with changes within 45 s").toBeLessThan(deadline);
    await page.waitForTimeout(1_000);
  }
}

test("the Changes page shows what changed, filters it in the URL and exports it", async ({ page }) => {
  await openWithChanges(page);
  await expect(page.locator("h1")).toHaveText("Device changes");
  await expect(page.getByTestId("nav-changes")).toHaveAttribute("aria-current", "page");
  // The chart: 30 days, today's bar holds what the syncs found.
  const days = page.getByTestId("chart-day");
  await expect(days).toHaveCount(30);
  const today = days.last();
  const found =
    Number(await today.getAttribute("data-added")) +
    Number(await today.getAttribute("data-removed")) +
    Number(await today.getAttribute("data-changed"));
  expect(found).toBeGreaterThan(0);
  // The baseline and at least one sync after it.
  const syncs = page.getByTestId("recent-sync");
  expect(await syncs.count()).toBeGreaterThanOrEqual(2);
  await expect(syncs.last()).toContainText("baseline");

  // Kind and field filters live in the URL; every row shown matches them.
  await page.getByTestId("kind-changed").click();
  await expect(page).toHaveURL(/\/changes\?kind=changed$/);
  await expect(page.getByTestId("kind-changed")).toHaveAttribute("aria-pressed", "true");
  const rows = page.getByTestId("change-row");
  await expect(rows.first()).toBeVisible();
  for (const kind of await rows.evaluateAll((rs) => rs.map((r) => r.getAttribute("data-kind")))) {
    expect(kind).toBe("changed");
  }
  await page.getByTestId("changes-field").selectOption("sub_mchid");
  await page.getByTestId("changes-apply").click();
  await expect(page).toHaveURL(/kind=changed/);
  await expect(page).toHaveURL(/field=sub_mchid/);
  await expect(page.getByTestId("changes-field")).toHaveValue("sub_mchid");
  const total = Number(
    ((await page.getByTestId("changes-total").textContent()) ?? "").replace(/[^0-9]/g, ""),
  );
  const fields = await page.getByTestId("event-field").allTextContents();
  expect(fields.length).toBe(Math.min(total, 50));
  for (const f of fields) expect(f).toBe("Sub-merchant id");
  // Each changed row says old → new.
  for (const c of await page.getByTestId("event-change").allTextContents()) expect(c).toContain("→");

  // The export holds exactly these events: the header of the contract, then one row each.
  const href = await page.getByTestId("changes-csv").getAttribute("href");
  expect(href).toMatch(/^\/changes\.csv\?/);
  const response = await page.request.get(href!);
  expect(response.status()).toBe(200);
  const csv = parseCsv((await response.text()).replace(/^\uFEFF/, ""));
  expect(csv[0]).toEqual([
    "time",
    "kind",
    "device_sn",
    "field",
    "old_value",
    "new_value",
    "sub_mchid",
    "sub_merchant_shortname",
  ]);
  const events = csv.slice(1);
  // Syncs go on while the test runs: the file has at least what the page counted.
  expect(events.length).toBeGreaterThanOrEqual(total);
  for (const e of events) {
    expect(e[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/);
    expect(e[1]).toBe("changed");
    expect(e[3]).toBe("sub_mchid");
    expect(e[6]).toBe(e[5]);
  }
  // Newest first.
  const times = events.map((e) => e[0]);
  expect([...times].sort().reverse()).toEqual(times);

  // The sub-merchant filter, from the form.
  const sub = events[0][6];
  await page.getByTestId("changes-sub").fill(sub);
  await page.getByTestId("changes-apply").click();
  await expect(page).toHaveURL(new RegExp(`sub_mchid=${sub}`));
  // The URL changes before the filtered rows arrive: wait for them (every row that sub-merchant's).
  await expect
    .poll(async () => {
      const cells = await page.getByTestId("change-row").evaluateAll((rs) =>
        rs.map((r) => r.lastElementChild?.textContent ?? ""),
      );
      return cells.length > 0 && cells.every((s) => s.startsWith(sub));
    })
    .toBe(true);

  // Back: the previous filters again.
  await page.goBack();
  await expect(page).toHaveURL(/field=sub_mchid/);
  await expect(page).not.toHaveURL(/sub_mchid=\d/);
  // Clearing shows everything again.
  await page.getByTestId("changes-clear").click();
  await expect(page).toHaveURL(/\/changes\?$|\/changes$/);
  await expect(page.getByTestId("kind-changed")).toHaveAttribute("aria-pressed", "false");
});

test("a device's page: its fields and its timeline, from the changes and from the grid, in Chinese", async ({
  page,
  context,
  baseURL,
}) => {
  await context.addCookies([{ name: "wxd_lang", value: "zh", url: baseURL! }]);
  await openWithChanges(page, "?kind=changed");
  await expect(page.locator("h1")).toHaveText("设备变更记录");
  await expect(page.getByTestId("kind-changed")).toHaveText("变更");
  const link = page.getByTestId("event-device").first();
  const sn = (await link.textContent())!.trim();
  await link.click();
  await expect(page).toHaveURL(new RegExp(`/devices/${sn}$`));
  await expect(page.locator("[data-hydrated]")).toHaveAttribute("data-hydrated", "true");
  await expect(page.getByTestId("device-sn")).toHaveText(sn);
  await expect(page.locator("h1")).toContainText("设备详情");
  // Its changes, oldest first, each with a kind.
  const events = page.getByTestId("timeline-event");
  expect(await events.count()).toBeGreaterThan(0);
  await expect(events.first()).toHaveAttribute("data-kind", /added|changed|removed/);
  // Present now: its 16 fields with their Chinese labels; gone: a note saying so.
  if (await page.getByTestId("device-missing").isVisible()) {
    await expect(page.getByTestId("device-missing")).toHaveText("该设备现在不在列表中。");
  } else {
    await expect(page.getByTestId("device-fields").locator("[data-field]")).toHaveCount(16);
    await expect(page.locator('[data-field="device_sn"] dt')).toHaveText("设备序列号");
    await expect(page.locator('[data-field="device_sn"] dd')).toHaveText(sn);
  }

  // From the grid: a row's serial links to its page, which has all 16 fields.
  await openHydrated(page, "/");
  // The status bar's count links to the last sync's changes (and any since).
  await expect(page.getByTestId("last-changes")).toBeVisible();
  await expect(page.getByTestId("last-changes")).toHaveAttribute(
    "href",
    /^\/changes\?since=\d{4}-\d\d-\d\dT\d\d%3A\d\d%3A\d\d%2B08%3A00$/,
  );
  const row = page.getByTestId("device-link").first();
  const rowSn = (await row.textContent())!.trim();
  await row.click();
  await expect(page.getByTestId("device-sn")).toHaveText(rowSn);
  await expect(page.getByTestId("device-fields").locator("[data-field]")).toHaveCount(16);
  // A device that was there from the start says so, or lists how it came.
  const start = page.getByTestId("timeline-start");
  const added = page.locator('[data-testid="timeline-event"][data-kind="added"]');
  expect((await start.count()) + (await added.count())).toBe(1);
  // The header's link leads back to the changes.
  await page.getByTestId("nav-changes").click();
  await expect(page).toHaveURL(/\/changes$/);
  await expect(page.locator("h1")).toHaveText("设备变更记录");
});

test("an unknown device and a bad address are said plainly", async ({ page, consoleProblems }) => {
  await openHydrated(page, "/devices/NO-SUCH-DEVICE");
  await expect(page.getByTestId("device-missing")).toHaveText("There is no record of this device.");
  // A bad address: the page says which parameter, with status 400 (which the browser logs).
  const bad = await page.goto("/changes?kind=moved");
  expect(bad?.status()).toBe(400);
  await expect(page.getByTestId("load-error")).toContainText('kind="moved"');
  await expect(page.locator("[data-hydrated]")).toHaveAttribute("data-hydrated", "true");
  const logged = consoleProblems.findIndex((p) => p.includes("status of 400"));
  expect(logged).toBeGreaterThanOrEqual(0);
  consoleProblems.splice(logged, 1);
  const r = await page.request.get("/changes.csv?since=yesterday");
  expect(r.status()).toBe(400);
});
