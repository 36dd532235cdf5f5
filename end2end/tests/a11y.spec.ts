import { test, expect, openHydrated } from "./fixtures";
import AxeBuilder from "@axe-core/playwright";

// WCAG 2 AA checks by axe-core, in both themes: contrast, labels, names, ARIA use.
for (const theme of ["light", "dark"]) {
  test(`the dashboard passes axe's WCAG AA checks in the ${theme} theme`, async ({ page, baseURL }) => {
    await page.context().addCookies([{ name: "wxd_prefs", value: `h=&c=0&t=${theme}`, url: baseURL! }]);
    await openHydrated(page, "/?group=category&status=ACTIVATED");
    // The theme under test is the one applied (else this would check the other theme twice).
    if (theme === "dark") await expect(page.locator("html")).toHaveClass(/(^|\s)dark(\s|$)/);
    else await expect(page.locator("html")).not.toHaveClass(/(^|\s)dark(\s|$)/);
    // The page's background as the screen shows it (a canvas turns any CSS color into RGB).
    const [r, g, b] = await page.locator("body").evaluate((body) => {
      const ctx = document.createElement("canvas").getContext("2d")!;
      ctx.fillStyle = getComputedStyle(body).backgroundColor;
      ctx.fillRect(0, 0, 1, 1);
      return Array.from(ctx.getImageData(0, 0, 1, 1).data.slice(0, 3));
    });
    expect((r + g + b) / 3 > 128, `background rgb(${r}, ${g}, ${b})`).toBe(theme === "light");
    await page.getByTestId("display-menu").locator("summary").click();
    const results = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa"]).analyze();
    const problems = results.violations.map(
      (v) => `${v.id}: ${v.help} (${v.nodes.length}×) e.g. ${v.nodes[0]?.target} ${v.nodes[0]?.failureSummary ?? ""}`,
    );
    expect(problems, problems.join("\n")).toEqual([]);
    await page.context().clearCookies();
  });
}
