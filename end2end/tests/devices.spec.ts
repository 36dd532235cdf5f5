import { test, expect, openHydrated, parseCsv } from "./fixtures";
import type { Page } from "@playwright/test";
import { readFileSync } from "fs";
import readXlsxFile from "read-excel-file/node";

/** The total of the view, from "Rows a–b of N (filtered from M)". */
async function total(page: Page): Promise<number> {
  const text = (await page.getByTestId("row-summary").textContent()) ?? "";
  const m = text.match(/of ([\d,]+)/);
  if (!m) throw new Error(`no total in ${JSON.stringify(text)}`);
  return Number(m[1].replace(/,/g, ""));
}

const firstSn = (page: Page) => page.getByTestId("device-row").first().locator("td").first();

test("the dashboard shows real device rows after hydration", async ({ page }) => {
  await openHydrated(page, "/");
  await expect(page.getByRole("heading", { level: 1 })).toContainText("Smart devices");
  await expect(page.getByTestId("demo-badge")).toBeVisible();

  const rows = page.getByTestId("device-row");
  await expect(rows).toHaveCount(50);
  await expect(firstSn(page)).toHaveText(/^(HSA1|QF2B|WXP3|SN7K)[0-9A-F]{7}\w{8}$/);
  // English means English: code-table values in English, the API's own name on hover.
  await expect(page.getByTestId("device-table")).toContainText(/Desktop checkout|Frog/);
  const cell = page.getByTestId("device-row").first().locator("td").nth(1).locator("span");
  await expect(cell).toHaveAttribute("title", /[\u4e00-\u9fff].* · \d+$/);
  await expect(page.getByTestId("row-summary")).toHaveText("Rows 1–50 of 3,000");
  await expect(page.getByTestId("status")).toContainText("data as of");
  await page.screenshot({ path: "screenshots/dashboard.png", fullPage: false });
});

test("filtering to one sub-merchant shows only its devices and the right count", async ({ page }) => {
  await openHydrated(page, "/");
  // The biggest sub-merchant is listed first in its facet.
  const option = page.getByTestId("facet-sub_mchid").getByRole("checkbox").first();
  const value = (await option.getAttribute("data-value"))!;
  const count = Number(((await option.locator("span").last().textContent()) ?? "").replace(/,/g, ""));
  expect(value).toMatch(/^\d{10}$/);
  await option.click();
  await expect(page).toHaveURL(new RegExp(`sub_mchid=${value}`));
  await expect(page.getByTestId("chips")).toContainText(value);
  await expect.poll(() => total(page)).toBe(count);
  const ids = await page.getByTestId("sub-mchid").allTextContents();
  expect(ids.length).toBe(Math.min(50, count));
  expect(new Set(ids)).toEqual(new Set([value]));

  // The search picker finds it by id prefix too.
  await page.getByTestId("sub-merchant-search").fill(value.slice(0, 7));
  const found = page.getByTestId("sub-merchant-results").locator(`[data-value="${value}"]`);
  await expect(found).toHaveAttribute("aria-checked", "true");
  await page.screenshot({ path: "screenshots/filtered.png" });
});

test("grouping by category shows group headers whose counts add up to the total", async ({ page }) => {
  await openHydrated(page, "/?per_page=200");
  await page.getByTestId("group-select").selectOption("category");
  await expect(page).toHaveURL(/group=category/);
  await expect(page.getByTestId("group-header").first()).toBeVisible();
  // Headers carry counts across all pages; walk every page and sum each group once.
  const counts = new Map<string, number>();
  for (;;) {
    for (const h of await page.getByTestId("group-header").all()) {
      counts.set((await h.getAttribute("data-group"))!, Number(await h.getAttribute("data-count")));
    }
    const next = page.getByRole("link", { name: "Next ›" });
    if ((await next.count()) === 0) break;
    const before = await page.getByTestId("page-of").textContent();
    await next.click();
    await expect(page.getByTestId("page-of")).not.toHaveText(before!);
  }
  const sum = [...counts.values()].reduce((a, b) => a + b, 0);
  expect(sum).toBe(await total(page));
  expect(counts.size).toBeGreaterThan(5);
  // Collapsing a group hides its rows, and only its rows; expanding shows them again.
  const rowsByGroup = () =>
    page.locator("tbody tr").evaluateAll((trs) => {
      let group = -1;
      const rows: { group: number; visible: boolean }[] = [];
      for (const tr of trs) {
        if (tr.getAttribute("data-testid") === "group-header") group++;
        else if (tr.getAttribute("data-testid") === "device-row")
          rows.push({ group, visible: getComputedStyle(tr).display !== "none" });
      }
      return rows;
    });
  const before = await rowsByGroup();
  expect(before.every((r) => r.visible)).toBe(true);
  expect(before.filter((r) => r.group === 0).length).toBeGreaterThan(0);
  expect(before.filter((r) => r.group === 1).length).toBeGreaterThan(0);
  const header = page.getByTestId("group-header").first();
  await header.getByRole("button").click();
  await expect(header.getByRole("button")).toHaveAttribute("aria-expanded", "false");
  await expect
    .poll(async () => (await rowsByGroup()).filter((r) => r.group === 0 && r.visible).length)
    .toBe(0);
  const after = await rowsByGroup();
  expect(after.filter((r) => r.group !== 0).every((r) => r.visible)).toBe(true);
  await page.screenshot({ path: "screenshots/grouped.png" });
  await header.getByRole("button").click();
  await expect.poll(async () => (await rowsByGroup()).every((r) => r.visible)).toBe(true);
});

test("paging forward and back, and a reloaded URL gives the same view", async ({ page }) => {
  await openHydrated(page, "/?sort=activation_time&dir=desc");
  const first = await firstSn(page).textContent();
  await page.getByRole("link", { name: "Next ›" }).click();
  await expect(page.getByTestId("row-summary")).toHaveText(/^Rows 51–100 of/);
  const second = await firstSn(page).textContent();
  expect(second).not.toEqual(first);
  await page.getByRole("link", { name: "‹ Prev" }).click();
  await expect(page.getByTestId("row-summary")).toHaveText(/^Rows 1–50 of/);
  await expect(firstSn(page)).toHaveText(first!);

  await page.getByRole("link", { name: "Last »" }).click();
  await expect(page.getByTestId("row-summary")).toHaveText(/^Rows 2,951–3,000 of 3,000$/);
  await expect(page.getByRole("link", { name: "Next ›" })).toHaveCount(0);

  await openHydrated(page, "/?sort=activation_time&dir=desc&page=2");
  await expect(page.getByTestId("row-summary")).toHaveText(/^Rows 51–100 of/);
  await expect(firstSn(page)).toHaveText(second!);
  await expect(page.locator('th[aria-sort="descending"]')).toContainText("Activated");
});

test("the back button restores the previous filter", async ({ page }) => {
  await openHydrated(page, "/");
  const all = await total(page);
  await page.getByTestId("facet-os").getByRole("checkbox", { name: /LINUX/ }).click();
  await expect(page).toHaveURL(/os=LINUX/);
  // The URL changes before the new rows arrive: wait for the filtered total.
  await expect.poll(() => total(page)).toBeLessThan(all);
  const linux = await total(page);
  await page.getByTestId("facet-status").getByRole("checkbox", { name: /Inactive/ }).click();
  await expect(page).toHaveURL(/status=INACTIVATED/);
  await expect.poll(() => total(page)).toBeLessThan(linux);
  await page.goBack();
  await expect(page).not.toHaveURL(/status=/);
  await expect.poll(() => total(page)).toBe(linux);
  await expect(page.getByTestId("facet-os").getByRole("checkbox", { name: /LINUX/ })).toHaveAttribute("aria-checked", "true");
});

test("hostile names render as text, and search narrows the grid", async ({ page }) => {
  let dialogs = 0;
  page.on("dialog", async (d) => {
    dialogs++;
    await d.dismiss();
  });
  await openHydrated(page, "/");
  await page.getByTestId("search").fill("<script>");
  await expect(page).toHaveURL(/q=%3Cscript%3E/);
  await expect(page.getByTestId("sub-name").first()).toHaveText("<script>alert('xss')</script>便利店");
  expect(await page.locator("tbody script").count()).toBe(0);
  await openHydrated(page, "/?q=" + encodeURIComponent("=HYPERLINK"));
  await expect(page.getByTestId("sub-name").first()).toContainText('=HYPERLINK("http://example.invalid","点我")');
  expect(dialogs).toBe(0);
});

test("an empty result says so and offers to clear; bad parameters are noticed", async ({ page }) => {
  await openHydrated(page, "/?q=no-such-device-anywhere&per_page=7&category=abc");
  await expect(page.getByTestId("empty")).toContainText("No device matches these filters.");
  await expect(page.getByTestId("notices")).toContainText('Ignored per_page="7"');
  await expect(page.getByTestId("notices")).toContainText('Ignored category="abc"');
  await page.getByRole("link", { name: "Clear filters" }).click();
  await expect(page.getByTestId("row-summary")).toHaveText("Rows 1–50 of 3,000");
});

test("Export downloads the current view: the grid's rows, filter and order, as CSV and XLSX", async ({ page }) => {
  await openHydrated(page, "/?os=LINUX&group=category&page=2");
  const expected = await total(page);
  expect(expected).toBeGreaterThan(50);
  expect(expected).toBeLessThan(3000);
  // The serials on screen (page 2), to find them in the file at the same place.
  const onScreen = await page.getByTestId("device-row").locator("td:first-child").allTextContents();
  await page.getByTestId("export-menu").locator("summary").click();
  await expect(page.getByTestId("export-csv")).toContainText(`${expected.toLocaleString("en-US")} rows`);
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("export-csv").click()]);
  expect(download.suggestedFilename()).toMatch(/^devices-all-\d{8}-\d{4}\.csv$/);
  const text = readFileSync((await download.path())!, "utf8");
  expect(text.charCodeAt(0)).toBe(0xfeff);
  const [header, ...rows] = parseCsv(text.slice(1));
  expect(header.join(",")).toBe(
    "device_sn,camera_sn,device_category_code,device_category,device_class_code,device_class,device_model,app_scene_code,app_scene,operating_system,activation_status,activation_time,mchid,merchant_shortname,sub_mchid,sub_merchant_shortname",
  );
  expect(rows.length).toBe(expected);
  const col = (name: string) => header.indexOf(name);
  // Every row is in the filter on screen, and the rows come grouped by category.
  expect(new Set(rows.map((r) => r[col("operating_system")]))).toEqual(new Set(["LINUX"]));
  const categories = rows.map((r) => r[col("device_category_code")]);
  const runs = categories.filter((c, i) => i === 0 || c !== categories[i - 1]);
  expect(new Set(runs).size, "each category in one run").toBe(runs.length);
  expect(new Set(rows.map((r) => r[col("device_sn")])).size).toBe(expected);
  // Page 2 of the grid is rows 51-100 of the file.
  const sns = rows.map((r) => r[col("device_sn")]);
  expect(sns.slice(50, 50 + onScreen.length)).toEqual(onScreen);

  // The menu stays open after a download. The workbook has the same rows.
  const [xlsx] = await Promise.all([page.waitForEvent("download"), page.getByTestId("export-xlsx").click()]);
  expect(xlsx.suggestedFilename()).toMatch(/^devices-all-\d{8}-\d{4}\.xlsx$/);
  const sheets = await readXlsxFile((await xlsx.path())!);
  const [xHeader, ...xRows] = sheets[0].data.map((r) => r.map((c) => (c === null ? "" : String(c))));
  expect(xHeader[0]).toContain("Device SN");
  expect(xRows.length).toBe(expected);
  expect(xRows.map((r) => r[0])).toEqual(sns);
  const os = xHeader.findIndex((h) => h.startsWith("OS"));
  expect(new Set(xRows.map((r) => r[os]))).toEqual(new Set(["LINUX"]));
  expect(sheets.map((s) => s.sheet)).toContain("View");
});

test("no key material reaches the browser", async ({ page, request }) => {
  const bodies: string[] = [];
  const pending: Promise<void>[] = [];
  page.on("response", (r) => {
    pending.push(
      r.body().then(
        (b) => void bodies.push(b.toString("latin1")),
        () => undefined, // redirects have no body
      ),
    );
  });
  await openHydrated(page, "/?group=sub_merchant");
  await page.getByTestId("sub-merchant-search").fill("16");
  await expect(page.getByTestId("sub-merchant-results")).toBeVisible();
  for (const asset of ["/pkg/wxpay-devices.wasm", "/pkg/wxpay-devices.js"]) {
    bodies.push((await (await request.get(asset)).body()).toString("latin1"));
  }
  await Promise.all(pending);
  // What was read: the page with its rows, the wasm, and the server functions' answers.
  expect(bodies.length).toBeGreaterThan(4);
  expect(bodies.some((b) => b.includes("<html") && /HSA1|QF2B|WXP3|SN7K/.test(b))).toBe(true);
  expect(bodies.some((b) => b.startsWith("\0asm"))).toBe(true);
  expect(bodies.some((b) => b.startsWith("[") && b.includes("\"value\""))).toBe(true);
  for (const b of bodies) {
    expect(b).not.toContain("PRIVATE KEY");
    expect(b).not.toMatch(/MII[A-Za-z0-9+/]{60}/);
    expect(b).not.toContain("apiv3");
  }
});

test("clicking a bar of the summary chart filters the grid to it", async ({ page }) => {
  await openHydrated(page, "/?group=os&status=ACTIVATED");
  await expect(page.getByTestId("summary-chart")).toContainText("Devices by operating system");
  const bars = page.getByTestId("chart-bar");
  const counts = await bars.evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-count"))));
  expect(counts.reduce((a, b) => a + b, 0)).toBe(await total(page));
  const bar = bars.nth(1);
  const value = (await bar.getAttribute("data-value"))!;
  const count = Number(await bar.getAttribute("data-count"));
  await bar.click();
  await expect(page).toHaveURL(new RegExp(`os=${value}`));
  await expect.poll(() => total(page)).toBe(count);
  await expect(page).toHaveURL(/status=ACTIVATED/);
  await page.screenshot({ path: "screenshots/chart.png" });
});

test("a manual refresh shows live progress, then new data, then waits a minute", async ({ page }) => {
  await openHydrated(page, "/");
  const asOf = page.getByTestId("data-as-of");
  const before = await asOf.getAttribute("data-synced-at");
  expect(before).toMatch(/^\d+$/);
  await expect(page.getByTestId("refresh")).toBeEnabled();
  await page.getByTestId("refresh").click();
  const progress = page.getByTestId("sync-progress").locator("progress");
  await expect(progress).toBeVisible();
  // Watch the bar while the sync runs (600 ms a page, 30 pages in two rate-limit windows).
  const seen: number[] = [];
  for (let i = 0; i < 100 && (await progress.count()) > 0; i++) {
    const v = await progress.getAttribute("value").catch(() => null);
    if (v !== null) seen.push(Number(v));
    await page.waitForTimeout(50);
  }
  expect(seen.some((v) => v > 0 && v < 30), `saw ${[...new Set(seen)]}`).toBe(true);
  await expect(page.getByTestId("sync-progress")).toHaveCount(0);
  await expect(asOf).not.toHaveAttribute("data-synced-at", before!);
  await expect(page.getByTestId("refresh")).toBeDisabled();
  await expect(page.getByTestId("refresh")).toHaveAttribute("title", /once a minute/);
  await expect(page.getByTestId("row-summary")).toHaveText("Rows 1–50 of 3,000");
});

test("hidden columns, density and theme are remembered across a reload", async ({ page }) => {
  await openHydrated(page, "/");
  await expect(page.locator('th[data-column="camera_sn"]')).toBeVisible();
  await page.getByTestId("display-menu").locator("summary").click();
  await page.locator('input[data-column="camera_sn"]').uncheck();
  await page.getByTestId("compact").check();
  await page.getByTestId("theme").selectOption("dark");
  await expect(page.locator('th[data-column="camera_sn"]')).toBeHidden();
  await expect(page.getByTestId("device-table")).toHaveAttribute("data-density", "compact");
  await expect(page.locator("html")).toHaveClass(/dark/);
  await openHydrated(page, "/");
  // Rendered that way by the server: no flash of the defaults.
  await expect(page.locator('th[data-column="camera_sn"]')).toBeHidden();
  await expect(page.getByTestId("device-table")).toHaveAttribute("data-density", "compact");
  await expect(page.locator("html")).toHaveClass(/dark/);
  await page.screenshot({ path: "screenshots/dark.png" });
  const html = await (await page.request.get("/")).text();
  expect(html).toContain('data-density="compact"');
  // Back to the defaults for the other tests.
  await page.context().clearCookies();
});

test("the page can be operated by keyboard alone: filter, sort, page", async ({ page }) => {
  await openHydrated(page, "/");
  async function tabTo(target: ReturnType<Page["locator"]>) {
    for (let i = 0; i < 300; i++) {
      if (await target.evaluate((el) => el === document.activeElement)) return;
      await page.keyboard.press("Tab");
    }
    throw new Error("could not reach the element with Tab");
  }
  const linux = page.getByTestId("facet-os").getByRole("checkbox", { name: /LINUX/ });
  await tabTo(linux);
  await page.keyboard.press("Space");
  await expect(page).toHaveURL(/os=LINUX/);
  await expect(page.getByTestId("facet-os").getByRole("checkbox", { name: /LINUX/ })).toHaveAttribute("aria-checked", "true");
  const sortModel = page.locator('th[data-column="device_model"] a');
  await tabTo(sortModel);
  await page.keyboard.press("Enter");
  await expect(page).toHaveURL(/sort=device_model/);
  await expect(page.locator('th[data-column="device_model"]')).toHaveAttribute("aria-sort", "ascending");
  const next = page.getByRole("link", { name: "Next ›" });
  await tabTo(next);
  await page.keyboard.press("Enter");
  await expect(page.getByTestId("row-summary")).toHaveText(/^Rows 51–100 of/);
});

test("on a phone the filters are a drawer", async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await openHydrated(page, "/");
  await expect(page.locator("#filters")).toBeHidden();
  await page.getByTestId("filters-toggle").click();
  await expect(page.locator("#filters")).toBeVisible();
  await expect(page.getByTestId("filters-toggle")).toHaveAttribute("aria-expanded", "true");
  await page.screenshot({ path: "screenshots/phone.png", fullPage: false });
});

test("switching language changes the labels and survives a reload", async ({ page }) => {
  await openHydrated(page, "/");
  await expect(page.getByRole("heading", { level: 1 })).toContainText("Smart devices");
  await expect(page.locator("html")).toHaveAttribute("lang", "en");
  await page.getByTestId("display-menu").locator("summary").click();
  await page.getByTestId("language").selectOption("zh-CN");
  await expect(page.locator("html")).toHaveAttribute("lang", "zh-CN");
  await expect(page.locator("[data-hydrated]")).toHaveAttribute("data-hydrated", "true");
  await expect(page.getByRole("heading", { level: 1 })).toContainText("智能设备");
  await expect(page.getByTestId("row-summary")).toHaveText("第 1–50 行，共 3,000 行");
  await expect(page.locator('th[data-column="device_sn"]')).toContainText("设备序列号");
  await expect(page.getByTestId("facet-status")).toContainText("未激活");
  await openHydrated(page, "/?group=sub_merchant&per_page=10&page=400");
  await expect(page.getByRole("heading", { level: 1 })).toContainText("智能设备");
  await expect(page.getByTestId("group-header").last()).toContainText("商户自有设备");
  await openHydrated(page, "/");
  await page.screenshot({ path: "screenshots/zh-light.png" });
  await page.getByTestId("display-menu").locator("summary").click();
  await page.getByTestId("theme").selectOption("dark");
  await page.screenshot({ path: "screenshots/zh-dark.png" });
  await page.getByTestId("language").selectOption("en");
  await expect(page.getByRole("heading", { level: 1 })).toContainText("Smart devices");
  await page.screenshot({ path: "screenshots/en-dark.png" });
  await page.context().clearCookies();
});
