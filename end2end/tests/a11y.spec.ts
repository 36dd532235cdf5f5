import { test, expect, openHydrated } from "./fixtures";
import AxeBuilder from "@axe-core/playwright";

// WCAG 2 AA checks by axe-core, in both themes: contrast, labels, names, ARIA use.
for (const theme of ["light", "dark"]) {
  test(`the dashboard passes axe's WCAG AA checks in the ${theme} theme`, async ({ page }) => {
    await page.context().addCookies([
      { name: "wxd_prefs", value: `h=&c=0&t=${theme}`, url: "http://127.0.0.1:3000" },
    ]);
    await openHydrated(page, "/?group=category&status=ACTIVATED");
    await page.getByTestId("display-menu").locator("summary").click();
    const results = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa"]).analyze();
    const problems = results.violations.map(
      (v) => `${v.id}: ${v.help} (${v.nodes.length}×) e.g. ${v.nodes[0]?.target} ${v.nodes[0]?.failureSummary ?? ""}`,
    );
    expect(problems, problems.join("\n")).toEqual([]);
    await page.context().clearCookies();
  });
}
