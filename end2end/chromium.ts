// How Playwright starts Debian's Chromium on these machines (never a downloaded browser: these
// machines cannot download one). Without the background-networking flags, Chromium's own
// connections are refused by the closed network, many at a time.
export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export const chromiumArgs = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
