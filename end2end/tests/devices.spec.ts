import { test, expect, openHydrated } from "./fixtures";

test("the dashboard shows real device rows after hydration", async ({ page }) => {
  await openHydrated(page, "/");
  await expect(page.getByRole("heading", { level: 1 })).toContainText("智能设备");
  await expect(page.getByText("Demo: simulated data")).toBeVisible();

  const rows = page.getByTestId("device-row");
  await expect(rows).toHaveCount(50);
  // Real values from the server function: serials, category names from the code tables, status.
  const first = rows.first();
  await expect(first.locator("td").first()).toHaveText(/^(HSA1|QF2B|WXP3|SN7K)[0-9A-F]{7}\w{8}$/);
  await expect(page.getByTestId("device-table")).toContainText(/桌面收银设备|青蛙设备/);
  await expect(page.getByTestId("device-table")).toContainText("Activated");
  await expect(page.getByTestId("row-summary")).toHaveText(/^Rows 1–50 of 3,?000$/);

  await page.screenshot({ path: "screenshots/dashboard.png", fullPage: false });
});

test("paging links move through the list and work as plain links", async ({ page }) => {
  await openHydrated(page, "/");
  const firstSn = await page.getByTestId("device-row").first().locator("td").first().textContent();
  await page.getByRole("link", { name: "Next ›" }).click();
  await expect(page).toHaveURL(/page=2/);
  await expect(page.getByTestId("row-summary")).toHaveText(/^Rows 51–100 of/);
  const secondSn = await page.getByTestId("device-row").first().locator("td").first().textContent();
  expect(secondSn).not.toEqual(firstSn);

  await page.getByRole("link", { name: "Last »" }).click();
  await expect(page.getByTestId("row-summary")).toHaveText(/^Rows 2,?951–3,?000 of 3,?000$/);
  await expect(page.getByRole("link", { name: "Next ›" })).toHaveCount(0);

  // A pasted URL gives the same view, server-rendered.
  await openHydrated(page, "/?page=2&per_page=50");
  await expect(page.getByTestId("row-summary")).toHaveText(/^Rows 51–100 of/);
  await expect(page.getByTestId("device-row").first().locator("td").first()).toHaveText(secondSn!);
});
