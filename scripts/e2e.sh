#!/usr/bin/env bash
# The end-to-end tests, in a way that cannot pass without running them:
#  1. `cargo leptos build --release`, which fails when the server, the wasm, Tailwind or wasm-opt
#     fails (cargo-leptos' own `end-to-end` reports success when its build fails);
#  2. Playwright (end2end/playwright.config.ts starts the release server itself);
#  3. Playwright's JSON report must say that every test listed ran and passed: none failed,
#     none skipped, none flaky, and more than zero.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

cargo leptos build --release
mkdir -p end2end/screenshots
REPORT="$ROOT/target/e2e-report.json"
rm -f "$REPORT"

cd end2end
listed="$(npx playwright test --list --reporter=list | sed -n 's/^Total: \([0-9]*\) tests\? in .*/\1/p')"
[ -n "$listed" ] && [ "$listed" -gt 0 ] || { echo "e2e: Playwright lists no tests" >&2; exit 1; }

status=0
npx playwright test "$@" || status=$?

node - "$REPORT" "$listed" "$status" <<'JS'
const [report, listed, status] = process.argv.slice(2);
const fs = require("fs");
const fail = (why) => { console.error(`e2e: ${why}`); process.exit(1); };
if (!fs.existsSync(report)) fail(`no Playwright report at ${report}: the tests did not run`);
const r = JSON.parse(fs.readFileSync(report, "utf8"));
const s = r.stats ?? {};
const ran = (s.expected ?? 0) + (s.unexpected ?? 0) + (s.flaky ?? 0);
const summary = `${s.expected} passed, ${s.unexpected} failed, ${s.flaky} flaky, ${s.skipped} skipped of ${listed} listed`;
if ((r.errors ?? []).length) fail(`errors outside tests: ${r.errors.map((e) => e.message).join("; ")}`);
if (s.unexpected || s.flaky || s.skipped) fail(summary);
if (ran !== Number(listed) || s.expected !== Number(listed)) fail(`${summary}: not every listed test ran`);
if (Number(status) !== 0) fail(`Playwright exited with ${status}`);
console.log(`e2e: ${summary}`);
JS
