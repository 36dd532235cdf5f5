import { test as base, expect, Page } from "@playwright/test";
import { spawn, ChildProcess } from "child_process";
import * as path from "path";

// Every test fails on a console error, an uncaught exception or a hydration warning.
export const test = base.extend<{ consoleProblems: string[] }>({
  consoleProblems: [
    async ({ page }, use) => {
      const problems: string[] = [];
      page.on("console", (msg) => {
        const text = msg.text();
        if (msg.type() === "error" || /hydrat/i.test(text)) problems.push(`${msg.type()}: ${text}`);
      });
      page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
      await use(problems);
      expect(problems, "console errors or hydration warnings").toEqual([]);
    },
    { auto: true },
  ],
});

export { expect };

/**
 * Opens a path and waits until the wasm has hydrated the page, and (on the grid) until the
 * first sync has ended: the tests count the whole list, not the devices fetched so far.
 */
export async function openHydrated(page: Page, where: string) {
  await page.goto(where);
  await expect(page.locator("[data-hydrated]")).toHaveAttribute("data-hydrated", "true");
  await expect(page.getByTestId("partial")).toHaveCount(0);
}

const root = path.resolve(__dirname, "../..");

/**
 * Starts another dashboard (the release binary) with `env`, on a port of its choosing;
 * resolves with the process and its base URL.
 */
export function startDashboard(env: Record<string, string>): Promise<{ server: ChildProcess; base: string }> {
  const server = spawn(path.join(root, "target/release/wxpay-devices"), [], {
    cwd: root,
    env: { ...process.env, ...env, LEPTOS_SITE_ADDR: "127.0.0.1:0", LOG_FORMAT: "text" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => reject(new Error(`no listening line within 60 s:\n${seen}`)), 60_000);
    server.stderr!.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      const m = seen.replace(/\x1b\[[0-9;]*m/g, "").match(/dashboard listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ server, base: m[1] });
      }
    });
    server.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the dashboard exited (${code}):\n${seen}`));
    });
  });
}

/** Parses RFC 4180 CSV (quoted cells may hold commas, quotes and line breaks); CRLF or LF. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(cell);
      cell = "";
    } else if (c === "\r" && text[i + 1] === "\n") {
      // the \n ends the record
    } else if (c === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else cell += c;
  }
  if (cell !== "" || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}
